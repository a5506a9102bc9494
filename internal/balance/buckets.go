package balance

// buckets is the index of lc (and of wlc when all weights are equal) for
// large pools: the servers grouped by their load key, an integer (active+1),
// each group a dense list. The smallest non-empty group holds the least
// loaded servers, and a uniform draw over its list breaks the tie: a pick
// and an update are O(1) (a server moves from one list to the next with a
// swap-remove and an append; the minimum moves by one step).
//
// Not safe for concurrent use; lc guards it with its mutex.
type buckets struct {
	lists [][]int32 // by key: the servers with that key
	key   []int64   // per server: its key, or -1 when excluded
	pos   []int32   // per server: its index in lists[key]
	min   int64     // smallest key with a non-empty list, when n > 0
	n     int       // servers included
}

func newBuckets(n int) *buckets {
	b := &buckets{key: make([]int64, n), pos: make([]int32, n)}
	for i := range b.key {
		b.key[i] = -1
	}
	return b
}

// set gives server j the key num (den must be 1) or, with num < 0,
// excludes it.
func (b *buckets) set(j int32, num, _ int64) {
	old := b.key[j]
	if old == num {
		return
	}
	if old >= 0 {
		l := b.lists[old]
		last := l[len(l)-1]
		l[b.pos[j]] = last
		b.pos[last] = b.pos[j]
		b.lists[old] = l[:len(l)-1]
		b.n--
	}
	b.key[j] = num
	if num >= 0 {
		for int64(len(b.lists)) <= num {
			b.lists = append(b.lists, nil)
		}
		b.pos[j] = int32(len(b.lists[num]))
		b.lists[num] = append(b.lists[num], j)
		b.n++
		if b.n == 1 || num < b.min {
			b.min = num
		}
	}
	if b.n > 0 {
		for len(b.lists[b.min]) == 0 {
			b.min++
		}
	}
}

// leaf returns server j's key, and false if it is excluded.
func (b *buckets) leaf(j int32) (num, den int64, ok bool) {
	return b.key[j], 1, b.key[j] >= 0
}

// minKey returns the smallest key (meaningless when none is included).
func (b *buckets) minKey() (num, den int64) { return b.min, 1 }

// pick returns a server with the smallest key, uniformly at random among
// the tied ones, or false if every server is excluded.
func (b *buckets) pick(randN func(int) int) (int32, bool) {
	if b.n == 0 {
		return 0, false
	}
	l := b.lists[b.min]
	if len(l) == 1 {
		return l[0], true
	}
	return l[randN(len(l))], true
}
