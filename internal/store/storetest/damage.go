// Package storetest damages store files the ways a failing disk, a full
// disk or a careless operator does, for the tests of Fulcrum's start-up
// path (store.Open, appliance.Start, `fulcrum serve`).
//
// It reads the bbolt file format only as far as it needs to find the pages
// to damage: the meta pages, the root page of the root bucket, the freelist
// page and a leaf page of the "configs" bucket (a page of stored revisions).
package storetest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
)

// Damage is one kind of damage done to a store file.
type Damage struct {
	// Name says what is done, e.g. "zeroed root page".
	Name string
	// Apply damages the store file at path in place.
	Apply func(path string) error
}

// Damages returns the 13 kinds of damage of issue 15: three truncations, an
// empty file, two files of the wrong type, and zeroed or random pages at
// the root, the freelist, each meta page and a data page. Random bytes come
// from a generator seeded with seed, so a test is reproducible.
func Damages(seed uint64) []Damage {
	rng := rand.New(rand.NewPCG(seed, 0xda3a6e))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	zero := func(n int) []byte { return make([]byte, n) }
	page := func(which func(Layout) uint64, fill func(int) []byte) func(string) error {
		return func(path string) error {
			l, err := ReadLayout(path)
			if err != nil {
				return err
			}
			return overwrite(path, int64(which(l))*int64(l.PageSize), fill(l.PageSize))
		}
	}
	truncate := func(size func(fileSize int64, l Layout) int64) func(string) error {
		return func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			l, err := ReadLayout(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, size(fi.Size(), l))
		}
	}
	replace := func(content func() ([]byte, error)) func(string) error {
		return func(path string) error {
			b, err := content()
			if err != nil {
				return err
			}
			return os.WriteFile(path, b, 0o600)
		}
	}
	root := func(l Layout) uint64 { return l.Root }
	freelist := func(l Layout) uint64 { return l.Freelist }
	data := func(l Layout) uint64 { return l.DataPage }
	return []Damage{
		{"truncated to 50%", truncate(func(size int64, l Layout) int64 {
			return size / 2 / int64(l.PageSize) * int64(l.PageSize)
		})},
		{"truncated to 1 page", truncate(func(_ int64, l Layout) int64 { return int64(l.PageSize) })},
		{"truncated to a size that is not a multiple of the page size", truncate(func(size int64, _ Layout) int64 { return size - 1000 })},
		{"empty file", replace(func() ([]byte, error) { return nil, nil })},
		{"a gzip file (a backup) in its place", replace(func() ([]byte, error) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if _, err := zw.Write([]byte(`{"format":"fulcrum-backup","version":1}`)); err != nil {
				return nil, err
			}
			err := zw.Close()
			return buf.Bytes(), err
		})},
		{"a text file in its place", replace(func() ([]byte, error) {
			return bytes.Repeat([]byte("virtualServices: []\n"), 2000), nil
		})},
		{"zeroed root page", page(root, zero)},
		{"random bytes on the root page", page(root, random)},
		{"random bytes on the freelist page", page(freelist, random)},
		{"zeroed meta page 0", page(func(Layout) uint64 { return 0 }, zero)},
		{"random bytes on meta page 1", page(func(Layout) uint64 { return 1 }, random)},
		{"zeroed data page", page(data, zero)},
		{"random bytes on a data page", page(data, random)},
	}
}

// Layout is where a store file keeps what Damages damages.
type Layout struct {
	// PageSize is the file's page size in bytes.
	PageSize int
	// Root is the page of the root bucket (it lists the buckets).
	Root uint64
	// Freelist is the first page of the freelist.
	Freelist uint64
	// HighWater is the number of pages in use (the file may be longer).
	HighWater uint64
	// TxID is the newest transaction.
	TxID uint64
	// DataPage is a leaf page of the "configs" bucket: not its first
	// page when the bucket has more than one, so that damaging it loses
	// some revisions but not all.
	DataPage uint64
}

const (
	metaMagic  = 0xED0CDAED
	flagBranch = 0x01
	flagLeaf   = 0x02
	headerSize = 16
)

// ReadLayout reads the layout of the bbolt file at path from its newer
// valid-looking meta page (magic and version; the checksum is not checked).
func ReadLayout(path string) (Layout, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Layout{}, err
	}
	var best *Layout
	for _, off := range []int{0, 4096} {
		if len(b) < off+headerSize+64 {
			continue
		}
		m := b[off+headerSize:]
		le := binary.LittleEndian
		if le.Uint32(m[0:]) != metaMagic || le.Uint32(m[4:]) != 2 {
			continue
		}
		l := Layout{PageSize: int(le.Uint32(m[8:])), Root: le.Uint64(m[16:]), Freelist: le.Uint64(m[32:]),
			HighWater: le.Uint64(m[40:]), TxID: le.Uint64(m[48:])}
		if best == nil || l.TxID > best.TxID {
			best = &l
		}
	}
	if best == nil {
		return Layout{}, errors.New("no meta page")
	}
	l := *best
	if l.PageSize < 512 || l.HighWater*uint64(l.PageSize) > uint64(len(b)) {
		return Layout{}, fmt.Errorf("meta page: page size %d, %d pages in use, file %d bytes", l.PageSize, l.HighWater, len(b))
	}
	pg := func(id uint64) []byte { return b[id*uint64(l.PageSize) : (id+1)*uint64(l.PageSize)] }
	// The root bucket's page lists the buckets; find "configs".
	rootPage := pg(l.Root)
	if binary.LittleEndian.Uint16(rootPage[8:]) != flagLeaf {
		return Layout{}, errors.New("root bucket page is not a leaf")
	}
	var configs uint64
	for i := range int(binary.LittleEndian.Uint16(rootPage[10:])) {
		e := rootPage[headerSize+i*16:]
		pos, ksize := int(binary.LittleEndian.Uint32(e[4:])), int(binary.LittleEndian.Uint32(e[8:]))
		at := headerSize + i*16 + pos
		if string(rootPage[at:at+ksize]) == "configs" {
			configs = binary.LittleEndian.Uint64(rootPage[at+ksize:])
		}
	}
	if configs == 0 {
		return Layout{}, errors.New(`the "configs" bucket has no page of its own (too few revisions)`)
	}
	l.DataPage = configs
	if p := pg(configs); binary.LittleEndian.Uint16(p[8:]) == flagBranch && binary.LittleEndian.Uint16(p[10:]) > 1 {
		l.DataPage = binary.LittleEndian.Uint64(p[headerSize+16+8:]) // the second child
	}
	return l, nil
}

// overwrite writes b at off in the file at path.
func overwrite(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
