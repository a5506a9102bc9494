package store

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Report says what a check of a store file found: by Open (see
// Store.Report), by Check, and of the file Salvage writes.
type Report struct {
	// Path is the store file.
	Path string
	// Size is its size in bytes.
	Size int64
	// PageSize is its page size; PagesInUse the pages the store uses
	// (the file may be longer) and PagesChecked those read.
	PageSize     int
	PagesInUse   uint64
	PagesChecked uint64
	// Transaction is the number of the last committed transaction.
	Transaction uint64
	// Revisions is the number of stored revisions, from OldestRevision
	// to NewestRevision.
	Revisions                      int
	OldestRevision, NewestRevision uint64
	// Users, APIKeys, AuditEntries and Templates count those records.
	Users, APIKeys, AuditEntries, Templates int
	// NetworkRevisions counts the node's network revisions.
	NetworkRevisions int
	// InstallID is the ID of the install the store belongs to, if known.
	InstallID string
	// Problems lists the damage found, most fundamental first; empty for
	// a healthy file. MoreProblems counts those not listed.
	Problems     []string
	MoreProblems int
	// Notes are observations that are not damage (a check cut short by
	// its time limit, an install marker that names another install).
	Notes []string
	// Complete is true when every page and record was checked.
	Complete bool
	// Elapsed is how long the check took.
	Elapsed time.Duration
	// Reinitialised is true when Open, told to with
	// Options.Reinitialise, made a new store because the file was missing,
	// empty or damaged; SetAside is then where the old file was moved (""
	// if there was none).
	Reinitialised bool
	SetAside      string
}

// Damaged reports whether the check found damage.
func (r *Report) Damaged() bool { return len(r.Problems) > 0 }

// CheckOptions tune Check.
type CheckOptions struct {
	// Timeout bounds the check; 0 means no limit. A check cut short says
	// so (Report.Complete is false).
	Timeout time.Duration
	// LockTimeout is how long Check waits for a process holding the file;
	// 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Check examines the store file at path without changing it: the layout
// of its pages (read without bbolt, so that damage cannot crash the
// check), bbolt's own consistency check, and every record (each revision's
// change and configuration, users, API keys, audit entries). Damage is
// reported in the Report; the error is for a check that could not run:
// the file is missing or unreadable, or a running Fulcrum holds it
// (ErrLocked).
func Check(path string, opts CheckOptions) (*Report, error) {
	return check(path, opts, true)
}

// check is Check; thorough checks configurations as JSON too.
func check(path string, opts CheckOptions, thorough bool) (*Report, error) {
	start := time.Now()
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	defer f.Close()
	if err := lockFile(f, false, opts.LockTimeout); err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("check %s: not a regular file", path)
	}
	var deadline time.Time
	if opts.Timeout > 0 {
		deadline = start.Add(opts.Timeout)
	}
	ex, err := examine(f, fi.Size(), deadline, thorough)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	r := ex.report(path)
	if !r.Damaged() && ex.complete {
		problems, complete, err := readOnlyBoltCheck(f, path, deadline)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", path, err)
		}
		r.Problems = append(r.Problems, problems...)
		r.Complete = complete
	}
	if !r.Complete {
		r.Notes = append(r.Notes, fmt.Sprintf("the check stopped at its time limit of %v after %d of %d pages: what it did not reach was not checked", opts.Timeout, r.PagesChecked, r.PagesInUse))
	}
	if id := readMarker(filepath.Dir(path)).InstallID; id != "" && r.InstallID != "" && id != r.InstallID {
		r.Notes = append(r.Notes, fmt.Sprintf("the store belongs to install %s but %s in its directory names install %s (a store file from another install?)", r.InstallID, MarkerName, id))
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// readOnlyBoltCheck runs bbolt's consistency check on the file f (already
// locked and examined) opened read-only.
func readOnlyBoltCheck(f *os.File, path string, deadline time.Time) (problems []string, complete bool, err error) {
	dup, err := os.Open(path) // bbolt closes the file it is given
	if err != nil {
		return nil, false, err
	}
	if err := sameFile(f, dup); err != nil {
		_ = dup.Close()
		return nil, false, err
	}
	var db *bolt.DB
	err = catch(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return dup, nil }})
		return err
	})
	if err != nil {
		_ = dup.Close()
		return []string{fmt.Sprintf("bbolt cannot open the file: %v", err)}, true, nil
	}
	problems, complete, wait := boltCheck(db, deadline)
	wait()
	if err := db.Close(); err != nil {
		return nil, false, err
	}
	return problems, complete, nil
}

// sameFile fails if a and b are not the same file (the path was replaced
// meanwhile).
func sameFile(a, b *os.File) error {
	fa, err := a.Stat()
	if err != nil {
		return err
	}
	fb, err := b.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(fa, fb) {
		return errors.New("the file was replaced while it was being opened")
	}
	return nil
}

// boltCheck runs bbolt's consistency check in a read transaction until
// deadline (zero: no limit). If the deadline passes first, the check goes
// on in the background: wait waits for it to end (the store must not be
// closed before).
func boltCheck(db *bolt.DB, deadline time.Time) (problems []string, complete bool, wait func()) {
	wait = func() {}
	var tx *bolt.Tx
	if err := catch(func() error {
		var err error
		tx, err = db.Begin(false)
		return err
	}); err != nil {
		return []string{fmt.Sprintf("bbolt check: %v", err)}, true, wait
	}
	ch := tx.Check()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	more := 0
	for {
		select {
		case err, ok := <-ch:
			if !ok {
				_ = tx.Rollback()
				if more > 0 {
					problems = append(problems, fmt.Sprintf("bbolt check: %d more problems", more))
				}
				return problems, true, wait
			}
			if len(problems) < maxProblems {
				problems = append(problems, "bbolt check: "+err.Error())
			} else {
				more++
			}
		case <-timeout:
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range ch { // the check cannot be stopped; let it end
				}
				_ = tx.Rollback()
			}()
			return problems, false, func() { <-done }
		}
	}
}

// examination is what examine found.
type examination struct {
	layout   fileLayout
	problems []string
	more     int
	complete bool
	walker   *walker
	records  *recordCheck
}

// examine reads the store file r of the given size without bbolt and
// checks its layout, its pages and its records, until deadline (zero: no
// limit). Configurations are checked by their checksum (gzip's CRC-32),
// and with thorough also as JSON (see checkConfig). The error is for a
// failed read.
func examine(r io.ReaderAt, size int64, deadline time.Time, thorough bool) (*examination, error) {
	ex := &examination{}
	var err error
	ex.layout, ex.problems, err = readLayout(r, size)
	if err != nil {
		return nil, err
	}
	m := ex.layout.cur
	if m == nil {
		return ex, nil
	}
	w := newWalker(r, ex.layout, m, deadline)
	ex.walker = w
	rc := &recordCheck{thorough: thorough, changes: map[uint64]bool{}, configs: map[uint64]bool{}, problem: w.problem}
	ex.records = rc
	w.value = rc.value
	w.readFreelist(m.freelist)
	w.walkPage(nil, m.root, nil, nil, 0, 0)
	ex.complete = !w.stopped
	if ex.complete && len(w.problems) == 0 && len(ex.problems) == 0 {
		if n, first := w.unusedPages(); n > 0 {
			w.problem("%d pages (the first is page %d) are neither in use nor free", n, first)
		}
		rc.finish()
	}
	ex.problems = append(ex.problems, w.problems...)
	ex.more = w.more
	return ex, nil
}

// report turns the examination of the file at path into a Report.
func (ex *examination) report(path string) *Report {
	r := &Report{Path: path, Size: ex.layout.size, PageSize: ex.layout.pageSize, Problems: ex.problems,
		MoreProblems: ex.more, Complete: ex.complete}
	if m := ex.layout.cur; m != nil {
		r.PagesInUse, r.Transaction = m.hwm, m.txid
	}
	if ex.walker != nil {
		r.PagesChecked = ex.walker.pagesRead
	}
	if rc := ex.records; rc != nil {
		r.Revisions, r.OldestRevision, r.NewestRevision = len(rc.configs), rc.oldest, rc.newest
		r.Users, r.APIKeys, r.AuditEntries, r.Templates = rc.users, rc.keys, rc.audit, rc.templates
		r.NetworkRevisions = rc.network
		r.InstallID = rc.installID
	}
	return r
}

// recordCheck checks the records of the store's buckets as the walker
// reaches them.
type recordCheck struct {
	thorough bool
	problem  func(format string, args ...any)

	changes, configs              map[uint64]bool
	oldest, newest                uint64
	users, keys, audit, templates int
	network                       int
	installID                     string
}

func (rc *recordCheck) value(path [][]byte, k, v []byte) {
	if len(path) != 1 {
		return
	}
	num := func(what string) (uint64, bool) {
		if len(k) != 8 {
			rc.problem("%s: a key of %d bytes, not 8", what, len(k))
			return 0, false
		}
		return binary.BigEndian.Uint64(k), true
	}
	switch b := path[0]; {
	case bytes.Equal(b, bucketChanges):
		n, ok := num("change records")
		if !ok {
			return
		}
		var ch Change
		if err := json.Unmarshal(v, &ch); err != nil {
			rc.problem("revision %d: its change record is damaged: %v", n, err)
			return
		}
		if ch.Revision != n {
			rc.problem("revision %d: its change record says revision %d", n, ch.Revision)
			return
		}
		rc.changes[n] = true
	case bytes.Equal(b, bucketConfigs):
		n, ok := num("configurations")
		if !ok {
			return
		}
		if err := checkConfig(v, rc.thorough); err != nil {
			rc.problem("revision %d: its configuration is damaged: %v", n, err)
			return
		}
		rc.configs[n] = true
		if rc.oldest == 0 || n < rc.oldest {
			rc.oldest = n
		}
		rc.newest = max(rc.newest, n)
	case bytes.Equal(b, bucketUsers):
		var u config.User
		if err := json.Unmarshal(v, &u); err != nil || u.Name != string(k) {
			rc.problem("user %q: its record is damaged", k)
			return
		}
		rc.users++
	case bytes.Equal(b, bucketAPIKeys):
		var key config.APIKey
		if err := json.Unmarshal(v, &key); err != nil || key.ID != string(k) {
			rc.problem("API key %q: its record is damaged", k)
			return
		}
		rc.keys++
	case bytes.Equal(b, bucketAudit):
		n, ok := num("audit entries")
		if !ok {
			return
		}
		var e AuditEntry
		if err := json.Unmarshal(v, &e); err != nil || e.Seq != n {
			rc.problem("audit entry %d: its record is damaged", n)
			return
		}
		rc.audit++
	case bytes.Equal(b, bucketTemplates):
		rc.templates++
	case bytes.Equal(b, bucketNetwork):
		if _, ok := num("network revisions"); !ok {
			return
		}
		if _, err := decodeNetRevision(k, v); err != nil {
			rc.problem("%v", err)
			return
		}
		rc.network++
	case bytes.Equal(b, bucketMeta):
		if bytes.Equal(k, keyInstallID) {
			rc.installID = string(v)
		}
	}
}

// finish reports revisions with only one of their two records.
func (rc *recordCheck) finish() {
	for n := range rc.changes {
		if !rc.configs[n] {
			rc.problem("revision %d: its configuration is missing", n)
		}
	}
	for n := range rc.configs {
		if !rc.changes[n] {
			rc.problem("revision %d: its change record is missing", n)
		}
	}
}

// checkConfig checks a stored configuration: its gzip checksum (CRC-32),
// and with thorough (or for an uncompressed layout-1 document) that it is
// JSON. The checksum proves the bytes are those written, which were the
// JSON encoding of a configuration; decoding them all would take a minute
// for a thousand large revisions.
func checkConfig(stored []byte, thorough bool) error {
	if !compressed(stored) {
		if !json.Valid(stored) {
			return fmt.Errorf("%w: not valid JSON", errCorruptValue)
		}
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(stored))
	if err != nil {
		return fmt.Errorf("%w: %v", errCorruptValue, err)
	}
	if !thorough {
		if _, err := io.Copy(io.Discard, io.LimitReader(zr, maxConfigSize+1)); err != nil {
			return fmt.Errorf("%w: %v", errCorruptValue, err)
		}
		return nil
	}
	doc, err := io.ReadAll(io.LimitReader(zr, maxConfigSize+1))
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", errCorruptValue, err)
	case len(doc) > maxConfigSize:
		return fmt.Errorf("%w: too large", errCorruptValue)
	case !json.Valid(doc):
		return fmt.Errorf("%w: not valid JSON", errCorruptValue)
	}
	return nil
}
