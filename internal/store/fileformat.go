package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
	"unicode/utf8"
)

// This file reads a store file the way bbolt lays it out (file format
// version 2 of go.etcd.io/bbolt), with plain reads instead of bbolt's
// memory map, so that a damaged file is examined without the risk of a
// panic or a fault: bbolt trusts its file and panics ("assertion failed",
// "invalid freelist page") or faults on pages that are not what it
// expects. Open uses it to refuse a damaged file before bbolt reads it,
// Check to report what is wrong, and Salvage to copy what is readable.
//
// The layout, as bbolt writes it (integers in the machine's byte order):
//
//	page:      id u64, flags u16, count u16, overflow u32, then the body;
//	           a page and its overflow pages are overflow+1 pages in a row
//	meta:      (pages 0 and 1, body) magic u32, version u32, pageSize u32,
//	           flags u32, root bucket {root page u64, sequence u64},
//	           freelist page u64, high water page u64, txid u64,
//	           checksum u64 (FNV-64a of the fields before it)
//	branch:    count elements {pos u32, ksize u32, child page u64}
//	leaf:      count elements {flags u32, pos u32, ksize u32, vsize u32};
//	           key and value lie pos bytes after the element's own start
//	bucket:    a leaf value with flag 1: {root page u64, sequence u64},
//	           and when root is 0 an inline leaf page follows
//	freelist:  count page ids u64 (count 0xFFFF: the first u64 is the count)
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	elementSize    = 16
	metaFieldsSize = 64 // up to and including the checksum
	metaSumSize    = 56 // the fields the checksum covers

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10

	bucketEntryFlag = 0x01
	noFreelist      = ^uint64(0)

	minPageSize = 512
	maxPageSize = 64 << 10
	// maxRunBytes bounds one page with its overflow pages, read at once.
	maxRunBytes = 1 << 30
	// maxDepth bounds the depth of a page tree and of nested buckets.
	maxDepth = 64
	// maxProblems bounds the problems listed; the rest are counted.
	maxProblems = 40
)

var ne = binary.NativeEndian

// pageHeader is the header of a page.
type pageHeader struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func parsePageHeader(b []byte) pageHeader {
	return pageHeader{id: ne.Uint64(b), flags: ne.Uint16(b[8:]), count: ne.Uint16(b[10:]), overflow: ne.Uint32(b[12:])}
}

// metaPage is a decoded meta page.
type metaPage struct {
	page     uint64 // 0 or 1
	pageSize uint32
	root     uint64 // root bucket's root page
	freelist uint64
	hwm      uint64 // pages in use: ids below it
	txid     uint64
	// problem says why the page is not a valid meta page, "" if it is.
	problem string
}

// parseMeta decodes the meta page at the start of b (header included).
func parseMeta(b []byte, page uint64) metaPage {
	m := metaPage{page: page}
	if len(b) < pageHeaderSize+metaFieldsSize {
		m.problem = "cut short"
		return m
	}
	h := parsePageHeader(b)
	f := b[pageHeaderSize:]
	magic, version := ne.Uint32(f), ne.Uint32(f[4:])
	m.pageSize = ne.Uint32(f[8:])
	m.root = ne.Uint64(f[16:])
	m.freelist = ne.Uint64(f[32:])
	m.hwm = ne.Uint64(f[40:])
	m.txid = ne.Uint64(f[48:])
	sum := fnv.New64a()
	_, _ = sum.Write(f[:metaSumSize])
	switch {
	case magic != boltMagic:
		m.problem = "not a meta page (no bbolt magic number)"
	case version != boltVersion:
		m.problem = fmt.Sprintf("file format version %d, not %d", version, boltVersion)
	case sum.Sum64() != ne.Uint64(f[metaSumSize:]):
		m.problem = "checksum mismatch"
	case h.flags != flagMeta || h.id != page || m.txid%2 != page:
		m.problem = fmt.Sprintf("page header says page %d, flags %#x, transaction %d", h.id, h.flags, m.txid)
	case m.pageSize < minPageSize || m.pageSize > maxPageSize || bits.OnesCount32(m.pageSize) != 1:
		m.problem = fmt.Sprintf("page size %d", m.pageSize)
	}
	return m
}

// fileLayout is what the meta pages of a store file say.
type fileLayout struct {
	size     int64
	pageSize int
	metas    [2]metaPage
	// cur is the meta page bbolt would use (the valid one with the
	// higher transaction), nil if neither is valid.
	cur *metaPage
}

// readLayout reads the meta pages of the file. It fails only when the
// file cannot be read; what is wrong with the file is in the problems.
func readLayout(r io.ReaderAt, size int64) (fileLayout, []string, error) {
	l := fileLayout{size: size}
	head := make([]byte, min(size, 2*maxPageSize))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return l, nil, fmt.Errorf("read: %w", err)
	}
	if size == 0 {
		return l, []string{"the file is empty"}, nil
	}
	l.metas[0] = parseMeta(head, 0)
	if l.metas[0].problem == "" {
		l.pageSize = int(l.metas[0].pageSize)
		l.metas[1] = parseMeta(at(head, l.pageSize), 1)
	} else {
		// Meta page 0 is damaged: find page 1 at each possible page size.
		l.metas[1] = metaPage{page: 1, problem: "not found"}
		for ps := 4096; ps <= maxPageSize; ps *= 2 {
			if m := parseMeta(at(head, ps), 1); m.problem == "" && int(m.pageSize) == ps {
				l.pageSize, l.metas[1] = ps, m
				break
			}
		}
		for ps := 2048; ps >= minPageSize && l.pageSize == 0; ps /= 2 {
			if m := parseMeta(at(head, ps), 1); m.problem == "" && int(m.pageSize) == ps {
				l.pageSize, l.metas[1] = ps, m
			}
		}
	}
	for i := range l.metas {
		if l.metas[i].problem == "" && (l.cur == nil || l.metas[i].txid > l.cur.txid) {
			l.cur = &l.metas[i]
		}
	}
	if l.cur == nil {
		return l, []string{"not a store file: " + describeContent(head)}, nil
	}
	var problems []string
	ps := int64(l.pageSize)
	if size%ps != 0 {
		problems = append(problems, fmt.Sprintf("its size, %d bytes, is not a whole number of %d-byte pages: the file was cut short or added to", size, ps))
	}
	if size < 4*ps {
		problems = append(problems, fmt.Sprintf("it is %d bytes long, shorter than the 4 pages of an empty store", size))
	}
	for _, m := range l.metas {
		if m.problem != "" {
			problems = append(problems, fmt.Sprintf("meta page %d is damaged (%s); meta page %d (transaction %d) is intact", m.page, m.problem, 1-m.page, l.cur.txid))
		}
	}
	m := l.cur
	pages := uint64(size / ps)
	switch {
	case m.hwm < 4 || m.hwm > pages:
		problems = append(problems, fmt.Sprintf("the store uses %d pages but the file holds %d: the file was cut short", m.hwm, pages))
	case m.root < 2 || m.root >= m.hwm:
		problems = append(problems, fmt.Sprintf("the root page %d is outside the %d pages in use", m.root, m.hwm))
	case m.freelist == noFreelist:
		problems = append(problems, "the file has no freelist (Fulcrum always writes one)")
	case m.freelist < 2 || m.freelist >= m.hwm:
		problems = append(problems, fmt.Sprintf("the freelist page %d is outside the %d pages in use", m.freelist, m.hwm))
	}
	return l, problems, nil
}

// at returns b from off, or nil if b is shorter.
func at(b []byte, off int) []byte {
	if off > len(b) {
		return nil
	}
	return b[off:]
}

// describeContent says what a file that is not a store file seems to hold.
func describeContent(head []byte) string {
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return "it holds gzip-compressed data (a Fulcrum backup? restore a backup through the API, POST /api/v1/restore)"
	case bytes.Count(head, []byte{0}) == len(head):
		return "it holds only zero bytes"
	case isText(head):
		return "it holds text"
	default:
		return "it holds no valid bbolt meta page"
	}
}

// isText reports whether b is UTF-8 text without NUL bytes (a rune may be
// cut at the end).
func isText(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	for cut := 0; cut < utf8.UTFMax && cut <= len(b); cut++ {
		if utf8.Valid(b[:len(b)-cut]) {
			return true
		}
	}
	return false
}
