package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
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

// salvageSet is what is written to the new store.
type salvageSet struct {
	buckets map[string]map[string][]byte
	seqs    map[string]uint64
	// idsUpTo is the newest revision of the tree the meta bucket came
	// from: its highest IDs cover the revisions up to it.
	idsUpTo uint64
}

// immutableBuckets hold records that never change once written.
var immutableBuckets = [][]byte{bucketChanges, bucketConfigs, bucketAudit}

// mergeSources merges the trees read (newest first) and the records found
// by scanning, and checks every record, keeping those that decode.
func mergeSources(sources []*salvageSource, scanned *salvageSource) (*salvageSet, *SalvageReport) {
	r := &SalvageReport{}
	primary := scanned
	if len(sources) > 0 {
		primary = sources[0]
		r.Transaction = primary.txid
	} else {
		r.Lost = append(r.Lost, "no tree of the store could be read: users, API keys, templates and secrets are lost")
	}
	set := &salvageSet{buckets: map[string]map[string][]byte{}, seqs: map[string]uint64{}}
	names := map[string]bool{}
	for _, s := range sources {
		for name := range s.buckets {
			names[name] = true
		}
	}
	if len(primary.damaged[""]) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the list of buckets of %s is damaged: %s", primary.label, describe(primary.damaged[""])))
	}
	for name := range names {
		immutable := slices.ContainsFunc(immutableBuckets, func(b []byte) bool { return string(b) == name })
		merged := map[string][]byte{}
		var seq uint64
		if immutable {
			for i, s := range sources {
				added := 0
				for k, v := range s.buckets[name] {
					if _, ok := merged[k]; !ok {
						merged[k] = v
						added++
					}
				}
				seq = max(seq, s.seqs[name])
				if i > 0 && added > 0 {
					r.Notes = append(r.Notes, fmt.Sprintf("bucket %q: %d records taken from %s (the newest tree lacks them)", name, added, s.label))
				}
			}
		} else {
			// The newest readable, undamaged copy of the bucket.
			from := primary
			for _, s := range sources {
				if _, ok := s.buckets[name]; ok && len(s.damaged[name]) == 0 {
					from = s
					break
				}
			}
			if from.guessed && (name == string(bucketUsers) || name == string(bucketAPIKeys)) {
				r.Lost = append(r.Lost, fmt.Sprintf("bucket %q: found only in %s, of unknown age, so not copied (a user or key deleted since must not come back)", name, from.label))
				continue
			}
			if _, ok := primary.buckets[name]; !ok || len(primary.damaged[name]) > 0 {
				if from != primary {
					r.Notes = append(r.Notes, fmt.Sprintf("bucket %q: taken from %s, as the newest copy is damaged or missing", name, from.label))
				}
			}
			merged, seq = from.buckets[name], from.seqs[name]
			if name == string(bucketMeta) && len(from.damaged[name]) == 0 {
				for k := range from.buckets[string(bucketChanges)] {
					set.idsUpTo = max(set.idsUpTo, readU64([]byte(k)))
				}
			}
			if len(from.damaged[name]) > 0 {
				r.Lost = append(r.Lost, fmt.Sprintf("bucket %q is damaged: %s", name, describe(from.damaged[name])))
			}
		}
		set.buckets[name], set.seqs[name] = merged, seq
	}
	for _, p := range primary.pages {
		if len(r.Notes) < maxProblems {
			r.Notes = append(r.Notes, "unreadable: "+p)
		}
	}
	addScanned(set, r, scanned)
	checkSalvaged(set, r, primary)
	if len(sources) == 0 {
		r.Lost = append(r.Lost, fmt.Sprintf("revisions after %d may be lost: without a readable tree, the newest revisions are those found on pages", r.NewestRevision))
	}
	return set, r
}

// addScanned adds the revisions and audit entries found by scanning pages
// that the trees lack: a revision only with both its records (the change
// naming its number) and an audit entry only if it names its own number,
// and only from the oldest one the trees hold on, so that records the
// store had pruned do not come back.
func addScanned(set *salvageSet, r *SalvageReport, scanned *salvageSource) {
	bucket := func(name []byte) map[string][]byte {
		b := set.buckets[string(name)]
		if b == nil {
			b = map[string][]byte{}
			set.buckets[string(name)] = b
		}
		return b
	}
	changes, configs, audit := bucket(bucketChanges), bucket(bucketConfigs), bucket(bucketAudit)
	oldest := func(b map[string][]byte) uint64 {
		var lo uint64
		for k := range b {
			if n := readU64([]byte(k)); n != 0 && (lo == 0 || n < lo) {
				lo = n
			}
		}
		return lo
	}
	fromRev, fromSeq := oldest(changes), oldest(audit)
	revs, entries := 0, 0
	for k, chDoc := range scanned.buckets[string(bucketChanges)] {
		n := readU64([]byte(k))
		cfgDoc := scanned.buckets[string(bucketConfigs)][k]
		var ch Change
		if cfgDoc == nil || n < fromRev || (changes[k] != nil && configs[k] != nil) ||
			json.Unmarshal(chDoc, &ch) != nil || ch.Revision != n {
			continue
		}
		if checkConfig(cfgDoc, true) != nil {
			continue
		}
		changes[k], configs[k] = chDoc, cfgDoc
		revs++
	}
	for k, doc := range scanned.buckets[string(bucketAudit)] {
		n := readU64([]byte(k))
		var e AuditEntry
		if n < fromSeq || audit[k] != nil || json.Unmarshal(doc, &e) != nil || e.Seq != n || e.Action == "" {
			continue
		}
		audit[k] = doc
		entries++
	}
	if revs+entries > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d revisions and %d audit entries taken from %s", revs, entries, scanned.label))
	}
}

// checkSalvaged keeps the records that decode and reports the others and
// the gaps.
func checkSalvaged(set *salvageSet, r *SalvageReport, primary *salvageSource) {
	changes, configs := set.buckets[string(bucketChanges)], set.buckets[string(bucketConfigs)]
	revs := map[uint64]bool{}
	for _, b := range []map[string][]byte{changes, configs} {
		for k := range b {
			if len(k) == 8 {
				revs[binary.BigEndian.Uint64([]byte(k))] = true
			}
		}
	}
	var kept, lost []uint64
	var vs, rs int
	for _, n := range slices.Sorted(maps.Keys(revs)) {
		k := string(u64(n))
		var ch Change
		chDoc, cfgDoc := changes[k], configs[k]
		var err error
		switch {
		case chDoc == nil:
			err = errors.New("its change record is missing")
		case cfgDoc == nil:
			err = errors.New("its configuration is missing")
		case json.Unmarshal(chDoc, &ch) != nil || ch.Revision != n:
			err = errors.New("its change record is damaged")
		default:
			if err = checkConfig(cfgDoc, true); err != nil {
				err = fmt.Errorf("its configuration is damaged: %w", err)
			}
		}
		if err == nil && n > set.idsUpTo {
			// Newer than the highest IDs recorded: raise them to its own.
			var cfg *config.Config
			if cfg, err = decodeConfig(cfgDoc); err != nil {
				err = fmt.Errorf("its configuration is damaged: %w", err)
			} else {
				cfg.Walk(func(v, _ *config.VirtualService) {
					vs = max(vs, v.ID)
					for _, s := range v.RealServers {
						rs = max(rs, s.ID)
					}
				})
			}
		}
		if err != nil {
			r.Lost = append(r.Lost, fmt.Sprintf("revision %d: %v", n, err))
			lost = append(lost, n)
			delete(changes, k)
			delete(configs, k)
			continue
		}
		kept = append(kept, n)
	}
	// Drop records whose key is not a revision number.
	for _, b := range []map[string][]byte{changes, configs} {
		for k := range b {
			if len(k) != 8 {
				delete(b, k)
			}
		}
	}
	r.Revisions = len(kept)
	if len(kept) > 0 {
		r.OldestRevision, r.NewestRevision = kept[0], kept[len(kept)-1]
		// Revision numbers are consecutive: a gap is a loss.
		if gaps := ranges(slices.Sorted(slices.Values(append(kept, lost...)))); gaps != "" {
			r.Lost = append(r.Lost, "revisions "+gaps+" could not be read")
		}
	}
	r.Lost = append(r.Lost, openEnded(primary, "revisions", kept, bucketChanges, bucketConfigs)...)
	meta := set.buckets[string(bucketMeta)]
	if meta == nil {
		meta = map[string][]byte{}
		set.buckets[string(bucketMeta)] = meta
	}
	meta[string(keyLayout)] = u64(layoutVersion)
	meta[string(keyMaxVSID)] = u64(max(readU64(meta[string(keyMaxVSID)]), uint64(vs)))
	meta[string(keyMaxRSID)] = u64(max(readU64(meta[string(keyMaxRSID)]), uint64(rs)))

	users := set.buckets[string(bucketUsers)]
	for k, v := range users {
		var u config.User
		if err := json.Unmarshal(v, &u); err != nil || u.Name != k {
			r.Lost = append(r.Lost, fmt.Sprintf("user %q: its record is damaged", k))
			delete(users, k)
		}
	}
	r.Users = len(users)
	keys := set.buckets[string(bucketAPIKeys)]
	for k, v := range keys {
		var key config.APIKey
		switch err := json.Unmarshal(v, &key); {
		case err != nil || key.ID != k:
			r.Lost = append(r.Lost, fmt.Sprintf("API key %q: its record is damaged", k))
			delete(keys, k)
		case users[key.User] == nil:
			r.Lost = append(r.Lost, fmt.Sprintf("API key %q: its user %q was not salvaged", k, key.User))
			delete(keys, k)
		}
	}
	r.APIKeys = len(keys)
	audit := set.buckets[string(bucketAudit)]
	var seqs []uint64
	for k, v := range audit {
		var e AuditEntry
		if len(k) != 8 || json.Unmarshal(v, &e) != nil || e.Seq != binary.BigEndian.Uint64([]byte(k)) {
			if len(k) == 8 {
				r.Lost = append(r.Lost, fmt.Sprintf("audit entry %d: its record is damaged", binary.BigEndian.Uint64([]byte(k))))
			}
			delete(audit, k)
			continue
		}
		seqs = append(seqs, e.Seq)
	}
	slices.Sort(seqs)
	if gaps := ranges(seqs); gaps != "" {
		r.Lost = append(r.Lost, "audit entries "+gaps+" could not be read")
	}
	r.Lost = append(r.Lost, openEnded(primary, "audit entries", seqs, bucketAudit)...)
	if len(seqs) > 0 {
		set.seqs[string(bucketAudit)] = max(set.seqs[string(bucketAudit)], seqs[len(seqs)-1])
	}
	r.AuditEntries = len(audit)
	r.Templates = len(set.buckets[string(bucketTemplates)])
	r.Secrets = len(set.buckets[string(bucketSecrets)])
	if r.Users == 0 {
		r.Lost = append(r.Lost, "no user could be read: the next start creates the administrator \"bal\" with a new password")
	}
	if _, ok := set.buckets[string(bucketSecrets)]; !ok || len(primary.damaged[string(bucketSecrets)]) > 0 {
		r.Lost = append(r.Lost, "the installation secrets could not all be read: new ones are made, so sessions end and backups signed before may not be recognised as this install's")
	}
	slices.Sort(r.Lost)
}

// openEnded reports the unreadable parts of the numbered buckets of the
// newest tree that lie beyond the records kept (the sorted numbers kept):
// the gaps between them are reported apart, but records after the newest
// or before the oldest kept may be missing without a trace.
func openEnded(primary *salvageSource, what string, kept []uint64, buckets ...[]byte) []string {
	var out []string
	num := func(k []byte) uint64 {
		if len(k) != 8 {
			return 0
		}
		return binary.BigEndian.Uint64(k)
	}
	for _, b := range buckets {
		for _, p := range primary.damaged[string(b)] {
			switch {
			case len(kept) == 0:
				out = append(out, fmt.Sprintf("no %s could be read (%s)", what, p.why))
			case p.hi == nil && (p.lo == nil || num(p.lo) >= kept[len(kept)-1]):
				out = append(out, fmt.Sprintf("%s after %d may be lost (%s)", what, kept[len(kept)-1], p.why))
			case p.lo == nil && p.hi != nil && num(p.hi) <= kept[0]:
				out = append(out, fmt.Sprintf("%s before %d may be lost (%s)", what, kept[0], p.why))
			}
		}
	}
	return out
}

// ranges describes the numbers missing between the first and the last of
// the sorted ns, as "3, 7-9".
func ranges(ns []uint64) string {
	var parts []string
	for i := 1; i < len(ns) && len(parts) < 20; i++ {
		if lo, hi := ns[i-1]+1, ns[i]-1; lo == hi {
			parts = append(parts, fmt.Sprint(lo))
		} else if lo < hi {
			parts = append(parts, fmt.Sprintf("%d-%d", lo, hi))
		}
	}
	return strings.Join(parts, ", ")
}

// writeSalvaged writes set as a new store file at out, with an audit entry
// saying what was salvaged, through a temporary file that is checked
// before it is renamed to out.
func writeSalvaged(set *salvageSet, r *SalvageReport, out string) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".salvage-tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly after the rename
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("store salvaged from %s (%s): %d revisions (%d-%d), %d users, %d API keys, %d audit entries",
		r.Source, "transaction "+fmt.Sprint(r.Transaction), r.Revisions, r.OldestRevision, r.NewestRevision, r.Users, r.APIKeys, r.AuditEntries)
	if len(r.Lost) > 0 {
		detail += "; not readable: " + strings.Join(r.Lost, "; ")
	}
	if len(detail) > 2000 {
		detail = detail[:2000] + "…"
	}
	err = db.Update(func(tx *bolt.Tx) error {
		names := slices.Sorted(maps.Keys(set.buckets))
		for _, b := range allBuckets {
			if !slices.Contains(names, string(b)) {
				names = append(names, string(b))
			}
		}
		for _, name := range names {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return fmt.Errorf("bucket %q: %w", name, err)
			}
			b.FillPercent = 0.9 // written in key order, read mostly
			for _, k := range slices.Sorted(maps.Keys(set.buckets[name])) {
				if err := b.Put([]byte(k), set.buckets[name][k]); err != nil {
					return fmt.Errorf("bucket %q: %w", name, err)
				}
			}
			if err := b.SetSequence(set.seqs[name]); err != nil {
				return err
			}
		}
		audit := tx.Bucket(bucketAudit)
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		doc, err := json.Marshal(AuditEntry{Seq: seq, Time: time.Now().UTC(), Source: "cli", Action: "salvage",
			Detail: detail, Success: true})
		if err != nil {
			return err
		}
		return audit.Put(u64(seq), doc)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rep, err := check(tmp, CheckOptions{}, false) // the records were checked already
	if err != nil {
		return fmt.Errorf("check the new file: %w", err)
	}
	if rep.Damaged() {
		return fmt.Errorf("the new file does not pass its check: %s", strings.Join(rep.Problems, "; "))
	}
	if err := os.Link(tmp, out); err != nil { // fails if out appeared meanwhile
		return err
	}
	return syncDir(filepath.Dir(out))
}
