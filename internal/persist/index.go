package persist

// index maps a shard's keys to their slots: an open-addressing hash table
// with linear probing, whose cells are 8 bytes: the low 32 bits of the key
// (its "tag") and the slot number plus one (0 marks an empty cell). Keys
// are already uniform hashes, so the low bits of the key are its home
// cell, and the tag both tells most non-matching cells apart without
// reading their slot and gives a cell's home when entries shift on
// deletion (backward-shift deletion, so there are no tombstones). The
// table doubles when it is three-quarters full, which keeps probes short
// and costs 11-21 bytes per entry instead of the ~40 of a Go map.
//
// Not safe for concurrent use; the shard's mutex guards it.
type index struct {
	cells []uint64
	mask  uint64
	used  int
}

// minCells is the size of a new index.
const minCells = 16

func cell(key uint64, slot int32) uint64 { return key<<32 | uint64(uint32(slot)+1) }
func cellTag(c uint64) uint32            { return uint32(c >> 32) }
func cellSlot(c uint64) int32            { return int32(uint32(c) - 1) }

// find returns the slot of key; slots is where keys are checked in full.
func (x *index) find(key uint64, slots []slot) (int32, bool) {
	if x.used == 0 {
		return 0, false
	}
	tag := uint32(key)
	for pos := key & x.mask; ; pos = (pos + 1) & x.mask {
		c := x.cells[pos]
		if c == 0 {
			return 0, false
		}
		if cellTag(c) == tag {
			if i := cellSlot(c); slots[i].key == key {
				return i, true
			}
		}
	}
}

// insert adds key (which must be absent) at slot i.
func (x *index) insert(key uint64, i int32) {
	if (x.used+1)*4 > len(x.cells)*3 {
		x.grow()
	}
	pos := key & x.mask
	for x.cells[pos] != 0 {
		pos = (pos + 1) & x.mask
	}
	x.cells[pos] = cell(key, i)
	x.used++
}

// delete removes key, which is at slot i.
func (x *index) delete(key uint64, i int32) {
	want := cell(key, i)
	pos := key & x.mask
	for x.cells[pos] != want {
		if x.cells[pos] == 0 {
			return // not indexed
		}
		pos = (pos + 1) & x.mask
	}
	// Backward shift: move later entries of the run into the hole unless
	// their home lies cyclically after the hole.
	hole := pos
	for j := (hole + 1) & x.mask; x.cells[j] != 0; j = (j + 1) & x.mask {
		home := uint64(cellTag(x.cells[j])) & x.mask
		if (j-home)&x.mask >= (j-hole)&x.mask {
			x.cells[hole] = x.cells[j]
			hole = j
		}
	}
	x.cells[hole] = 0
	x.used--
}

// grow doubles the table (or makes the first one).
func (x *index) grow() {
	n := max(len(x.cells)*2, minCells)
	old := x.cells
	x.cells = make([]uint64, n)
	x.mask = uint64(n - 1)
	for _, c := range old {
		if c == 0 {
			continue
		}
		pos := uint64(cellTag(c)) & x.mask
		for x.cells[pos] != 0 {
			pos = (pos + 1) & x.mask
		}
		x.cells[pos] = c
	}
}
