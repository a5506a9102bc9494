package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// pageSet is a set of page ids below a high water mark.
type pageSet []uint64

func newPageSet(n uint64) pageSet    { return make(pageSet, (n+63)/64) }
func (s pageSet) has(id uint64) bool { return s[id/64]&(1<<(id%64)) != 0 }
func (s pageSet) add(id uint64)      { s[id/64] |= 1 << (id % 64) }

// walker visits the page trees of a store file from a root bucket with
// plain reads, checking every page it reaches before it reads what the
// page points to. It never panics on a damaged file: what is wrong goes
// into problems, and the subtree of a bad page is skipped.
type walker struct {
	r        io.ReaderAt
	pageSize int
	hwm      uint64
	deadline time.Time // zero: no limit

	seen, free pageSet
	pagesRead  uint64
	// stopped is set when the deadline passed; the walk is incomplete.
	stopped bool

	problems []string
	more     int // problems not kept

	// value, if set, is called with each key and value of a bucket
	// (path holds the bucket names from the top); the slices are only
	// valid during the call.
	value func(path [][]byte, k, v []byte)
	// bucket, if set, is called with each bucket and its sequence.
	bucket func(path [][]byte, seq uint64)
	// lost, if set, is called for each part of a bucket the walk could not
	// read: the keys from lo up to (not including) hi, either nil when
	// unknown.
	lost func(path [][]byte, lo, hi []byte, why string)
}

func newWalker(r io.ReaderAt, l fileLayout, m *metaPage, deadline time.Time) *walker {
	hwm := m.hwm
	if pages := uint64(l.size / int64(l.pageSize)); hwm > pages {
		hwm = pages // a truncated file: pages beyond its end are unreadable
	}
	w := &walker{r: r, pageSize: l.pageSize, hwm: hwm, deadline: deadline,
		seen: newPageSet(max(hwm, 2)), free: newPageSet(max(hwm, 2))}
	w.seen.add(0)
	w.seen.add(1)
	return w
}

func (w *walker) problem(format string, args ...any) {
	if len(w.problems) >= maxProblems {
		w.more++
		return
	}
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

// timeUp reports whether the deadline has passed, checking the clock every
// 64 pages.
func (w *walker) timeUp() bool {
	if w.stopped {
		return true
	}
	if !w.deadline.IsZero() && w.pagesRead%64 == 0 && time.Now().After(w.deadline) {
		w.stopped = true
	}
	return w.stopped
}

// readRun reads page id with its overflow pages after checking that they
// lie in the pages in use. want is the page type expected.
func (w *walker) readRun(id uint64, want uint16, what string) ([]byte, pageHeader, error) {
	if id < 2 || id >= w.hwm {
		return nil, pageHeader{}, fmt.Errorf("%s page %d is outside the %d pages in use", what, id, w.hwm)
	}
	var hb [pageHeaderSize]byte
	if _, err := w.r.ReadAt(hb[:], int64(id)*int64(w.pageSize)); err != nil {
		return nil, pageHeader{}, fmt.Errorf("%s page %d: %w", what, id, err)
	}
	h := parsePageHeader(hb[:])
	if h.id != id {
		return nil, h, fmt.Errorf("%s page %d: its header says page %d", what, id, h.id)
	}
	if h.flags != want && !(want == flagBranch|flagLeaf && (h.flags == flagBranch || h.flags == flagLeaf)) {
		return nil, h, fmt.Errorf("%s page %d: page type %#x, want %s", what, id, h.flags, pageType(want))
	}
	last := id + uint64(h.overflow)
	if last < id || last >= w.hwm {
		return nil, h, fmt.Errorf("%s page %d: its %d overflow pages run past the %d pages in use", what, id, h.overflow, w.hwm)
	}
	n := (uint64(h.overflow) + 1) * uint64(w.pageSize)
	if n > maxRunBytes {
		return nil, h, fmt.Errorf("%s page %d: %d overflow pages, too many", what, id, h.overflow)
	}
	for p := id; p <= last; p++ {
		switch {
		case w.seen.has(p):
			return nil, h, fmt.Errorf("%s page %d: page %d is used twice", what, id, p)
		case w.free.has(p):
			return nil, h, fmt.Errorf("%s page %d: page %d is in use and listed as free", what, id, p)
		}
	}
	for p := id; p <= last; p++ {
		w.seen.add(p)
	}
	buf := make([]byte, n)
	if _, err := w.r.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
		return nil, h, fmt.Errorf("%s page %d: %w", what, id, err)
	}
	w.pagesRead += uint64(h.overflow) + 1
	return buf, h, nil
}

func pageType(flags uint16) string {
	switch flags {
	case flagBranch:
		return "branch"
	case flagLeaf:
		return "leaf"
	case flagBranch | flagLeaf:
		return "branch or leaf"
	case flagMeta:
		return "meta"
	case flagFreelist:
		return "freelist"
	}
	return fmt.Sprintf("%#x", flags)
}

// readFreelist reads the freelist at page id into w.free.
func (w *walker) readFreelist(id uint64) {
	buf, h, err := w.readRun(id, flagFreelist, "freelist")
	if err != nil {
		w.problem("%v", err)
		return
	}
	body := buf[pageHeaderSize:]
	count, first := uint64(h.count), uint64(0)
	if h.count == 0xFFFF {
		if len(body) < 8 {
			w.problem("freelist page %d: no room for its count", id)
			return
		}
		count, first = ne.Uint64(body), 1
	}
	if room := uint64(len(body)/8) - first; count > room {
		w.problem("freelist page %d: lists %d pages but has room for %d", id, count, room)
		return
	}
	bad, twice := 0, 0
	for i := range count {
		p := ne.Uint64(body[(first+i)*8:])
		switch {
		case p < 2 || p >= w.hwm || w.seen.has(p):
			bad++
		case w.free.has(p):
			twice++
		default:
			w.free.add(p)
		}
	}
	if bad > 0 {
		w.problem("freelist page %d: %d of its %d pages are outside the pages in use or in use by the freelist", id, bad, count)
	}
	if twice > 0 {
		w.problem("freelist page %d: %d pages are listed twice", id, twice)
	}
}

// walkBucket walks the bucket whose header is hdr (its value in the parent).
func (w *walker) walkBucket(path [][]byte, hdr []byte, depth int) {
	if len(hdr) < 16 {
		w.lostAll(path, "bucket header cut short")
		return
	}
	root, seq := ne.Uint64(hdr), ne.Uint64(hdr[8:])
	if w.bucket != nil {
		w.bucket(path, seq)
	}
	if root != 0 {
		w.walkPage(path, root, nil, nil, 0, depth)
		return
	}
	inline := hdr[16:]
	if len(inline) < pageHeaderSize {
		w.lostAll(path, "inline bucket cut short")
		return
	}
	h := parsePageHeader(inline)
	if h.flags != flagLeaf {
		w.lostAll(path, fmt.Sprintf("inline bucket page type %#x, want leaf", h.flags))
		return
	}
	w.leaf(path, inline, h, nil, nil, "inline", depth)
}

func (w *walker) lostAll(path [][]byte, why string) {
	w.problem("%s: %s", pathString(path), why)
	if w.lost != nil {
		w.lost(path, nil, nil, why)
	}
}

// walkPage walks the page tree at id, whose keys should lie from lo up to
// hi (either nil when unbounded).
func (w *walker) walkPage(path [][]byte, id uint64, lo, hi []byte, level, depth int) {
	if w.timeUp() {
		return
	}
	if level > maxDepth {
		w.problem("%s: page %d: the page tree is more than %d levels deep", pathString(path), id, maxDepth)
		return
	}
	buf, h, err := w.readRun(id, flagBranch|flagLeaf, pathString(path)+":")
	if err != nil {
		w.problem("%v%s", err, keyRange(path, lo, hi))
		if w.lost != nil {
			w.lost(path, lo, hi, err.Error())
		}
		return
	}
	if h.flags == flagLeaf {
		w.leaf(path, buf, h, lo, hi, fmt.Sprintf("page %d", id), depth)
		return
	}
	where := fmt.Sprintf("%s: branch page %d", pathString(path), id)
	if h.count == 0 || pageHeaderSize+int(h.count)*elementSize > len(buf) {
		w.problem("%s: %d elements do not fit%s", where, h.count, keyRange(path, lo, hi))
		if w.lost != nil {
			w.lost(path, lo, hi, where+": bad element count")
		}
		return
	}
	keys := make([][]byte, h.count)
	for i := range int(h.count) {
		e := pageHeaderSize + i*elementSize
		k, ok := slice(buf, e, ne.Uint32(buf[e:]), ne.Uint32(buf[e+4:]), 0)
		if !ok {
			w.problem("%s: element %d points outside the page", where, i)
			if w.lost != nil {
				w.lost(path, lo, hi, where+": element outside the page")
			}
			return
		}
		keys[i] = k
	}
	ordered := true
	for i := range keys {
		child := ne.Uint64(buf[pageHeaderSize+i*elementSize+8:])
		childLo, childHi := keys[i], hi
		if i == 0 {
			childLo = lo
		}
		if i+1 < len(keys) {
			childHi = keys[i+1]
			if ordered && bytes.Compare(keys[i], keys[i+1]) >= 0 {
				w.problem("%s: keys out of order at element %d", where, i+1)
				ordered = false
			}
		}
		w.walkPage(path, child, childLo, childHi, level+1, depth)
	}
}

// leaf visits the elements of a leaf page (or inline bucket) b.
func (w *walker) leaf(path [][]byte, b []byte, h pageHeader, lo, hi []byte, name string, depth int) {
	where := fmt.Sprintf("%s: leaf %s", pathString(path), name)
	if pageHeaderSize+int(h.count)*elementSize > len(b) {
		w.problem("%s: %d elements do not fit%s", where, h.count, keyRange(path, lo, hi))
		if w.lost != nil {
			w.lost(path, lo, hi, where+": bad element count")
		}
		return
	}
	// Check every element before following any, so that the page's own
	// damage is reported first.
	type element struct {
		k, v   []byte
		bucket bool
	}
	elems := make([]element, 0, h.count)
	var prev []byte
	ordered := true
	for i := range int(h.count) {
		e := pageHeaderSize + i*elementSize
		flags, pos := ne.Uint32(b[e:]), ne.Uint32(b[e+4:])
		ksize, vsize := ne.Uint32(b[e+8:]), ne.Uint32(b[e+12:])
		kv, ok := slice(b, e, pos, ksize, vsize)
		if !ok {
			w.problem("%s: element %d points outside the page", where, i)
			if w.lost != nil {
				w.lost(path, prev, hi, where+": element outside the page")
			}
			break
		}
		k := kv[:ksize]
		if ordered && prev != nil && bytes.Compare(prev, k) >= 0 {
			w.problem("%s: keys out of order at element %d", where, i)
			ordered = false
		}
		prev = k
		elems = append(elems, element{k: k, v: kv[ksize:], bucket: flags&bucketEntryFlag != 0})
	}
	for _, e := range elems {
		switch {
		case !e.bucket:
			if w.value != nil {
				w.value(path, e.k, e.v)
			}
		case depth >= maxDepth:
			w.problem("%s: buckets nested more than %d deep", where, maxDepth)
		default:
			w.walkBucket(append(path[:len(path):len(path)], e.k), e.v, depth+1)
		}
	}
}

// slice returns the ksize+vsize bytes that lie pos bytes after offset e of
// b, or false if they are not all inside b.
func slice(b []byte, e int, pos, ksize, vsize uint32) ([]byte, bool) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(ksize) + uint64(vsize)
	if end > uint64(len(b)) {
		return nil, false
	}
	return b[start:end], true
}

// unusedPages counts the pages below the high water mark that are neither
// reached nor free, and returns the first of them.
func (w *walker) unusedPages() (n int, first uint64) {
	for id := uint64(2); id < w.hwm; id++ {
		if !w.seen.has(id) && !w.free.has(id) {
			if n == 0 {
				first = id
			}
			n++
		}
	}
	return n, first
}

// pathString names a bucket for messages: `bucket "configs"`, or "the
// root bucket" (the one that lists the others).
func pathString(path [][]byte) string {
	if len(path) == 0 {
		return "the root bucket"
	}
	var sb bytes.Buffer
	sb.WriteString("bucket ")
	for i, p := range path {
		if i > 0 {
			sb.WriteByte('/')
		}
		fmt.Fprintf(&sb, "%q", p)
	}
	return sb.String()
}

// keyRange describes the keys from lo up to hi of the bucket at path: as
// numbers in the buckets keyed by number (revisions, audit entries).
func keyRange(path [][]byte, lo, hi []byte) string {
	if lo == nil && hi == nil {
		return ""
	}
	name := "keys"
	numeric := len(path) == 1 && (bytes.Equal(path[0], bucketChanges) || bytes.Equal(path[0], bucketConfigs) || bytes.Equal(path[0], bucketAudit))
	if numeric {
		name = "revisions"
		if bytes.Equal(path[0], bucketAudit) {
			name = "audit entries"
		}
	}
	show := func(k []byte) string {
		if numeric && len(k) == 8 {
			return fmt.Sprint(binary.BigEndian.Uint64(k))
		}
		return fmt.Sprintf("%q", k)
	}
	switch {
	case hi == nil:
		return fmt.Sprintf(" (%s from %s on)", name, show(lo))
	case lo == nil:
		return fmt.Sprintf(" (%s before %s)", name, show(hi))
	}
	return fmt.Sprintf(" (%s from %s up to %s)", name, show(lo), show(hi))
}
