package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// SalvageOptions tune Salvage.
type SalvageOptions struct {
	// LockTimeout is how long Salvage waits for a process holding the
	// damaged file; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// SalvageReport says what Salvage copied and what it could not read.
type SalvageReport struct {
	// Source is the damaged file; Out the new store file.
	Source, Out string
	// Transaction is the transaction whose tree was read first (0 if no
	// meta page was readable and the tree was found by scanning pages).
	Transaction uint64
	// Revisions counts the revisions copied, from OldestRevision to
	// NewestRevision.
	Revisions                      int
	OldestRevision, NewestRevision uint64
	// Users, APIKeys, AuditEntries, Templates and Secrets count the
	// records copied.
	Users, APIKeys, AuditEntries, Templates, Secrets int
	// NetworkRevisions counts the node's network revisions copied.
	NetworkRevisions int
	// Lost says what could not be read, or may be missing.
	Lost []string
	// Notes say where things came from and which pages were unreadable.
	Notes []string
}

// salvageSource is one tree of the damaged file: that of a meta page, or
// a root bucket found by scanning.
type salvageSource struct {
	txid  uint64
	label string
	// guessed is true for a tree found by scanning for a root bucket, of
	// unknown age: its users and API keys are not copied, so that a user
	// or key deleted since cannot come back.
	guessed bool
	buckets map[string]map[string][]byte // bucket → key → value
	seqs    map[string]uint64            // bucket → sequence
	damaged map[string][]lostPart        // bucket → what could not be read ("" is the root)
	pages   []string                     // page problems
}

// lostPart is a part of a bucket that could not be read: the keys from lo
// up to hi (nil: unbounded).
type lostPart struct {
	lo, hi []byte
	why    string
}

// describe joins the reasons of parts.
func describe(parts []lostPart) string {
	var out []string
	for _, p := range parts {
		out = append(out, p.why)
	}
	return strings.Join(out, "; ")
}

// Salvage copies every readable revision, user, API key, audit entry,
// template and secret of the store file src, damaged or not, into a new
// store file out, and reports what it could not read. It reads src with
// plain reads (never through bbolt, which would panic or fault on damaged
// pages) and never changes it. out must not exist; it is written through a
// temporary file, checked, and then renamed, so it is complete or absent.
//
// The file is read from the tree of its newest valid meta page and then
// from the previous transaction's tree, whose pages a crash-safe store
// keeps: revisions and audit entries never change once written, so those
// missing from the newest tree are taken from the older one; users, API
// keys, templates, secrets and the meta bucket are taken from the older
// tree only when the newest copy of the bucket is damaged (and the report
// says so). With both meta pages unreadable, Salvage looks for the root
// bucket among the pages.
//
// The error is for a salvage that could not be done (src unreadable or
// held by a running Fulcrum, out existing, nothing readable); out is then
// not written.
func Salvage(src, out string, opts SalvageOptions) (*SalvageReport, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("salvage: %s exists; give the name of a new file", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("salvage: %w", err)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("salvage: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, false, opts.LockTimeout); err != nil {
		return nil, fmt.Errorf("salvage %s: %w", src, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("salvage %s: not a regular file", src)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("salvage %s: the file is empty: there is nothing to salvage", src)
	}
	sources, pageSize, err := salvageSources(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", src, err)
	}
	scanned, err := scanLeaves(f, pageSize, uint64(fi.Size()/int64(pageSize)))
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", src, err)
	}
	if len(sources) == 0 && len(scanned.buckets[string(bucketChanges)]) == 0 {
		return nil, fmt.Errorf("salvage %s: no part of the file is readable as a store", src)
	}
	set, r := mergeSources(sources, scanned)
	r.Source, r.Out = src, out
	if r.Revisions == 0 && r.Users == 0 && r.AuditEntries == 0 {
		return nil, fmt.Errorf("salvage %s: nothing could be read (%s)", src, strings.Join(r.Lost, "; "))
	}
	if err := writeSalvaged(set, r, out); err != nil {
		return nil, fmt.Errorf("salvage %s: write %s: %w", src, out, err)
	}
	return r, nil
}

// salvageSources reads the trees of the file: those of its valid meta
// pages, newest first, or root buckets found by scanning. It returns them
// with the file's page size.
func salvageSources(r io.ReaderAt, size int64) ([]*salvageSource, int, error) {
	l, _, err := readLayout(r, size)
	if err != nil {
		return nil, 0, err
	}
	var metas []metaPage
	for _, m := range l.metas {
		if m.problem == "" {
			metas = append(metas, m)
		}
	}
	slices.SortFunc(metas, func(a, b metaPage) int { return cmp.Compare(b.txid, a.txid) })
	if l.pageSize == 0 {
		l.pageSize = 4096 // both meta pages are lost: bbolt's usual page size
	}
	pages := uint64(size / int64(l.pageSize))
	var out []*salvageSource
	for _, m := range metas {
		if src := readSource(r, l, m, fmt.Sprintf("transaction %d", m.txid)); src != nil {
			out = append(out, src)
		}
	}
	if len(out) == 0 {
		// No meta page leads to a readable tree: look for root buckets.
		for _, root := range scanForRoots(r, l.pageSize, pages) {
			m := metaPage{root: root, hwm: pages, freelist: noFreelist}
			if src := readSource(r, l, m, fmt.Sprintf("the root bucket found on page %d", root)); src != nil {
				src.guessed = true
				out = append(out, src)
			}
		}
	}
	return out, l.pageSize, nil
}

// scanLeaves reads every leaf page of the file, in use or not, for the
// records that never change once written and prove what they are:
// revisions (a change record naming its number, and a configuration) and
// audit entries (naming their sequence number). Pages of a truncated or
// damaged tree are found this way; mergeSources decides what to take.
func scanLeaves(r io.ReaderAt, pageSize int, pages uint64) (*salvageSource, error) {
	src := &salvageSource{label: "pages outside the store's tree", buckets: map[string]map[string][]byte{
		string(bucketChanges): {}, string(bucketConfigs): {}, string(bucketAudit): {}}}
	var hb [pageHeaderSize]byte
	for id := uint64(2); id < pages; id++ {
		if _, err := r.ReadAt(hb[:], int64(id)*int64(pageSize)); err != nil {
			return nil, err
		}
		h := parsePageHeader(hb[:])
		n := (uint64(h.overflow) + 1) * uint64(pageSize)
		if h.id != id || h.flags != flagLeaf || id+uint64(h.overflow) >= pages || n > maxRunBytes {
			continue
		}
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, int64(id)*int64(pageSize)); err != nil {
			return nil, err
		}
		if pageHeaderSize+int(h.count)*elementSize > len(buf) {
			continue
		}
		for i := range int(h.count) {
			e := pageHeaderSize + i*elementSize
			ksize := ne.Uint32(buf[e+8:])
			kv, ok := slice(buf, e, ne.Uint32(buf[e+4:]), ksize, ne.Uint32(buf[e+12:]))
			if !ok || ne.Uint32(buf[e:])&bucketEntryFlag != 0 || ksize != 8 {
				continue
			}
			k, v := string(kv[:8]), kv[8:]
			if b := src.buckets[classify(v)]; b != nil {
				if _, seen := b[k]; !seen {
					b[k] = bytes.Clone(v)
				}
			}
		}
	}
	return src, nil
}

// classify names the bucket a record found on a page belongs to, by its
// content; "" if none.
func classify(v []byte) string {
	if compressed(v) {
		return string(bucketConfigs)
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(v, &probe) != nil {
		return ""
	}
	has := func(names ...string) bool {
		for _, n := range names {
			if _, ok := probe[n]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("revision", "summary", "network", "confirmed"):
		return "" // a network revision, which changes (confirmed): not taken from stray pages
	case has("revision", "summary"):
		return string(bucketChanges)
	case has("seq", "action"):
		return string(bucketAudit)
	case has("virtualServices", "options"):
		return string(bucketConfigs) // layout 1
	}
	return ""
}

// scanForRoots returns the pages that look like the root bucket of a
// store: leaf pages of bucket entries among which "changes" and "configs".
func scanForRoots(r io.ReaderAt, pageSize int, pages uint64) []uint64 {
	var out []uint64
	buf := make([]byte, pageSize)
	for id := uint64(2); id < pages && len(out) < 8; id++ {
		if _, err := r.ReadAt(buf, int64(id)*int64(pageSize)); err != nil {
			break
		}
		h := parsePageHeader(buf)
		if h.id != id || h.flags != flagLeaf || pageHeaderSize+int(h.count)*elementSize > len(buf) {
			continue
		}
		found := 0
		for i := range int(h.count) {
			e := pageHeaderSize + i*elementSize
			kv, ok := slice(buf, e, ne.Uint32(buf[e+4:]), ne.Uint32(buf[e+8:]), 0)
			if ok && ne.Uint32(buf[e:])&bucketEntryFlag != 0 && (bytes.Equal(kv, bucketChanges) || bytes.Equal(kv, bucketConfigs)) {
				found++
			}
		}
		if found == 2 {
			out = append(out, id)
		}
	}
	return out
}

// readSource reads the tree of meta page m, tolerating damage; nil if not
// even its root bucket is readable.
func readSource(r io.ReaderAt, l fileLayout, m metaPage, label string) *salvageSource {
	src := &salvageSource{txid: m.txid, label: label, buckets: map[string]map[string][]byte{}, seqs: map[string]uint64{},
		damaged: map[string][]lostPart{}}
	w := newWalker(r, l, &m, time.Time{})
	w.value = func(path [][]byte, k, v []byte) {
		if len(path) != 1 {
			return // Fulcrum's buckets hold no buckets
		}
		b := src.buckets[string(path[0])]
		if b == nil {
			b = map[string][]byte{}
			src.buckets[string(path[0])] = b
		}
		b[string(k)] = bytes.Clone(v)
	}
	w.bucket = func(path [][]byte, seq uint64) {
		if len(path) == 1 {
			src.seqs[string(path[0])] = seq
			if src.buckets[string(path[0])] == nil {
				src.buckets[string(path[0])] = map[string][]byte{}
			}
		}
	}
	w.lost = func(path [][]byte, lo, hi []byte, why string) {
		name := ""
		if len(path) > 0 {
			name = string(path[0])
		}
		src.damaged[name] = append(src.damaged[name], lostPart{lo: bytes.Clone(lo), hi: bytes.Clone(hi), why: why + keyRange(path, lo, hi)})
	}
	w.walkPage(nil, m.root, nil, nil, 0, 0)
	src.pages = w.problems
	if len(src.buckets) == 0 {
		return nil
	}
	return src
}
