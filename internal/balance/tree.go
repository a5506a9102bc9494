package balance

// tree is a tournament tree over the load keys of a picker's servers,
// used by lc and wlc for large pools. Leaf j holds server j's key, the
// fraction num/den (lc: (active+1)/1; wlc: (active+1)/weight), or is
// excluded (unavailable or full). Every inner node holds the smallest key
// of its subtree, a leaf that has it, and the number of leaves sharing it,
// so the root names the least loaded server and how many tie with it, and
// one random draw walks down to any of the tied leaves with equal
// probability. Changing a leaf updates its path to the root: O(log n), and
// usually less, since the walk stops where nothing changes. Nodes are
// stored in one array in heap order, each with its key, so a walk touches
// one small struct per level.
//
// The tree is not safe for concurrent use; lc guards it with its mutex.
type tree struct {
	size  int    // leaves, a power of two
	nodes []node // 1..2size-1; leaf j is nodes[size+j]
}

// node is one node of a tree.
type node struct {
	num, den int64 // the smallest key of the subtree; meaningless if best < 0
	best     int32 // a leaf with that key, or -1 if every leaf is excluded
	cnt      int32 // leaves with that key
}

func newTree(n int) *tree {
	size := 1
	for size < n {
		size <<= 1
	}
	t := &tree{size: size, nodes: make([]node, 2*size)}
	for i := range t.nodes {
		t.nodes[i] = node{den: 1, best: -1}
	}
	return t
}

// cmpKey compares two keys exactly, by cross multiplication.
func cmpKey(an, ad, bn, bd int64) int {
	l, r := an*bd, bn*ad
	switch {
	case l < r:
		return -1
	case l > r:
		return 1
	}
	return 0
}

// pull recomputes node i from its children.
func (t *tree) pull(i int) {
	l, r := &t.nodes[2*i], &t.nodes[2*i+1]
	switch {
	case l.best < 0:
		t.nodes[i] = *r
	case r.best < 0:
		t.nodes[i] = *l
	default:
		switch cmpKey(l.num, l.den, r.num, r.den) {
		case -1:
			t.nodes[i] = *l
		case 1:
			t.nodes[i] = *r
		default:
			t.nodes[i] = node{num: l.num, den: l.den, best: l.best, cnt: l.cnt + r.cnt}
		}
	}
}

// set gives leaf j the key num/den (num ≥ 0) or, with num < 0, excludes it.
func (t *tree) set(j int32, num, den int64) {
	i := t.size + int(j)
	if num < 0 {
		t.nodes[i] = node{den: 1, best: -1}
	} else {
		t.nodes[i] = node{num: num, den: den, best: j, cnt: 1}
	}
	for i >>= 1; i >= 1; i >>= 1 {
		old := t.nodes[i]
		t.pull(i)
		// Above a node whose minimum did not change, nothing changes.
		if t.nodes[i] == old {
			return
		}
	}
}

// leaf returns leaf j's key, and false if it is excluded.
func (t *tree) leaf(j int32) (num, den int64, ok bool) {
	n := &t.nodes[t.size+int(j)]
	return n.num, n.den, n.best >= 0
}

// minKey returns the smallest key (meaningless when every leaf is
// excluded).
func (t *tree) minKey() (num, den int64) { return t.nodes[1].num, t.nodes[1].den }

// pick returns a leaf with the smallest key, chosen uniformly at random
// among all tied leaves with one draw of randN, or false if every leaf is
// excluded.
func (t *tree) pick(randN func(int) int) (int32, bool) {
	root := &t.nodes[1]
	if root.best < 0 {
		return 0, false
	}
	if root.cnt == 1 {
		return root.best, true
	}
	k := int32(randN(int(root.cnt)))
	i := 1
	for i < t.size {
		l := &t.nodes[2*i]
		if l.best >= 0 && l.num*root.den == root.num*l.den {
			if k < l.cnt {
				i = 2 * i
				continue
			}
			k -= l.cnt
		}
		i = 2*i + 1
	}
	return int32(i - t.size), true
}
