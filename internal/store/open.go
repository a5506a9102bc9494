package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What marks a data directory as holding an install.
//
// Open writes the install marker, MarkerName, next to the store file when
// it creates the store (and when it opens a store of an older Fulcrum that
// has none): a small JSON file with the install's ID, which the store keeps
// too (in its meta bucket), and the time the install was made. The marker,
// or the admin plane's certificate or key that the first start makes, is
// evidence that the directory holds an install: there, a missing or empty
// store file is a lost store, not a new installation, and Open refuses it
// (ErrNoStore) instead of starting afresh — unless told to with
// Options.Reinitialise.
const (
	// MarkerName is the install marker's file name in the data directory.
	MarkerName   = "fulcrum-install.json"
	markerFormat = "fulcrum-install"
)

// installFiles are the files whose presence shows that a data directory
// holds an install: the marker and the admin plane's certificate and key
// (admin.CertFile and admin.KeyFile, which this package cannot import).
var installFiles = []string{MarkerName, "admin-cert.pem", "admin-key.pem"}

// InstallFiles returns the names of the files whose presence in a data
// directory shows that it holds an install.
func InstallFiles() []string { return append([]string(nil), installFiles...) }

// keyInstallID is the install's ID in the meta bucket.
var keyInstallID = []byte("installID")

// DefaultCheckTime is how long Open spends at most checking an existing
// store file (Options.CheckTime).
const DefaultCheckTime = 10 * time.Second

// ErrNoStore is wrapped by the error Open returns (a *MissingError) when
// the data directory holds an install but its store file is missing or
// empty.
var ErrNoStore = errors.New("the store file of an existing install is missing or empty")

// MissingError is returned by Open when the data directory holds an
// install (see MarkerName) but its store file is missing or empty. It wraps
// ErrNoStore.
type MissingError struct {
	// Path is the store file.
	Path string
	// Empty is true if the file exists but is empty.
	Empty bool
	// Evidence names the files that show the directory holds an install.
	Evidence []string
}

// Error says what is wrong and the two ways out.
func (e *MissingError) Error() string {
	dir := filepath.Dir(e.Path)
	state := "missing"
	if e.Empty {
		state = "empty"
	}
	return fmt.Sprintf("the store file %s is %s, but the data directory %s holds a Fulcrum install (it has %s): "+
		"starting afresh would lose its configuration, users, API keys, history and audit log, so Fulcrum will not. "+
		"Put the store file back (a copy of it, or one made by `fulcrum store salvage`), or start afresh on purpose with "+
		"`fulcrum serve --data-dir %s --reinitialise` (which keeps any old store file aside) and then restore a backup "+
		"(POST /api/v1/restore)", e.Path, state, dir, strings.Join(e.Evidence, ", "), dir)
}

// Unwrap returns ErrNoStore.
func (e *MissingError) Unwrap() error { return ErrNoStore }

// DamageError is returned by Open when the store file is damaged. It wraps
// ErrDamaged. Open has not changed the file.
type DamageError struct {
	// Path is the store file.
	Path string
	// Problems says what is wrong, most fundamental first.
	Problems []string
	// More counts the problems not listed.
	More int
}

// Error names the file, the first problems and what to do.
func (e *DamageError) Error() string {
	dir := filepath.Dir(e.Path)
	shown := e.Problems[:min(len(e.Problems), 3)]
	what := strings.Join(shown, "; ")
	if n := len(e.Problems) - len(shown) + e.More; n > 0 {
		what += fmt.Sprintf("; and %d more", n)
	}
	return fmt.Sprintf("the store file %s is damaged: %s. Fulcrum has not changed it. "+
		"See everything that is wrong with `fulcrum store check --data-dir %s`; "+
		"copy every readable revision, user, API key and audit entry into a new store file with "+
		"`fulcrum store salvage --data-dir %s --out FILE` and put that file in its place; "+
		"or start afresh with `fulcrum serve --data-dir %s --reinitialise` (which keeps the damaged file aside) "+
		"and restore a backup (POST /api/v1/restore)", e.Path, what, dir, dir, dir)
}

// Unwrap returns ErrDamaged.
func (e *DamageError) Unwrap() error { return ErrDamaged }

// Open opens the store in dir, creating dir (mode 0700) and the database
// file dir/fulcrum.db (mode 0600) if they do not exist. If another process
// holds the file, Open waits up to opts.LockTimeout and then returns an
// error wrapping ErrLocked.
//
// An existing file is checked before bbolt reads it: its meta pages, its
// freelist and every page of its trees (read without bbolt, which panics or
// faults on damaged pages), then bbolt's consistency check and the records
// (the change and the configuration checksum of every revision, users, API
// keys, audit entries), for at most opts.CheckTime; Store.Report says how
// far it got. A damaged file is refused with a *DamageError (wrapping
// ErrDamaged) and left unchanged. In a directory that holds an install (see
// MarkerName), a missing or empty file is refused with a *MissingError
// (wrapping ErrNoStore). With opts.Reinitialise, either is moved aside
// (renamed fulcrum.db.damaged-<UTC time>, never deleted) and a new store
// is made; a healthy file is opened as it is.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if dir == "" {
		return nil, errors.New("open store: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	s, err := open(dir, path, opts, false)
	if !opts.Reinitialise || (err != nil && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNoStore)) {
		return s, err
	}
	if err == nil {
		return s, nil // a healthy store is not reinitialised
	}
	aside, err := setAside(path, opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("reinitialise store %s: %w", path, err)
	}
	s, err = open(dir, path, opts, true)
	if err != nil {
		return nil, err
	}
	s.report.Reinitialised, s.report.SetAside = true, aside
	detail := "store started afresh (reinitialise): there was no store file"
	if aside != "" {
		detail = fmt.Sprintf("store started afresh (reinitialise): the previous store file was kept as %s", filepath.Base(aside))
	}
	if _, err := s.AppendAudit(AuditEntry{Source: "system", Action: "reinitialise", Detail: detail, Success: true}); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// open opens the store file path in dir; fresh allows a new file even in a
// directory that holds an install.
func open(dir, path string, opts Options, fresh bool) (_ *Store, err error) {
	start := time.Now()
	deadline := start.Add(opts.CheckTime)
	evidence := installEvidence(dir)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(evidence) > 0 && !fresh {
			return nil, &MissingError{Path: path, Evidence: evidence}
		}
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open store %s: not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	owned := true // f is ours to close until bbolt takes it
	defer func() {
		if owned {
			_ = f.Close()
		}
	}()
	if err := lockFile(f, true, opts.LockTimeout); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("open store %s: %w (waited %v)", path, ErrLocked, opts.LockTimeout)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	size := fi.Size()
	report := &Report{Path: path, Complete: true}
	if size == 0 && len(evidence) > 0 && !fresh {
		return nil, &MissingError{Path: path, Empty: true, Evidence: evidence}
	}
	if size > 0 {
		ex, err := examine(f, size, deadline, false)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		if len(ex.problems) > 0 {
			return nil, &DamageError{Path: path, Problems: ex.problems, More: ex.more}
		}
		report = ex.report(path)
	}
	var db *bolt.DB
	owned = false
	err = catch(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.noSync,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return f, nil }})
		return err
	})
	if err != nil {
		_ = f.Close() // bbolt closed it unless it panicked
		if errors.Is(err, ErrDamaged) {
			return nil, &DamageError{Path: path, Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: opts, report: report, bgWait: func() {}}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if size > 0 && report.Complete {
		problems, complete, wait := boltCheck(db, deadline)
		s.bgWait = wait
		if len(problems) > 0 {
			return nil, &DamageError{Path: path, Problems: problems}
		}
		report.Complete = complete
	}
	marker := readMarker(dir)
	id, err := s.init(marker.InstallID)
	if err != nil {
		if errors.Is(err, ErrDamaged) {
			return nil, &DamageError{Path: path, Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	report.InstallID = id
	switch {
	case marker.InstallID == "":
		if err := writeMarker(dir, id); err != nil {
			return nil, fmt.Errorf("open store %s: install marker: %w", path, err)
		}
	case marker.InstallID != id:
		report.Notes = append(report.Notes, fmt.Sprintf("the store belongs to install %s but %s names install %s (a store file from another install?)", id, MarkerName, marker.InstallID))
	}
	if !report.Complete {
		report.Notes = append(report.Notes, fmt.Sprintf("the start-up check of the store file stopped at its time limit of %v after %d of %d pages; run `fulcrum store check` to check all of it", opts.CheckTime, report.PagesChecked, report.PagesInUse))
	}
	report.Elapsed = time.Since(start)
	return s, nil
}

// Report returns what Open found when it checked the store file.
func (s *Store) Report() Report {
	r := *s.report
	r.Problems = append([]string(nil), r.Problems...)
	r.Notes = append([]string(nil), r.Notes...)
	return r
}

// installEvidence returns the install files present in dir.
func installEvidence(dir string) []string {
	var out []string
	for _, name := range installFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			out = append(out, name)
		}
	}
	return out
}

// installMarker is the content of the install marker file.
type installMarker struct {
	Format    string    `json:"format"`
	InstallID string    `json:"installID"`
	Created   time.Time `json:"created"`
}

// readMarker reads the install marker in dir; the zero value if there is
// none or it cannot be read.
func readMarker(dir string) installMarker {
	var m installMarker
	b, err := os.ReadFile(filepath.Join(dir, MarkerName))
	if err != nil || json.Unmarshal(b, &m) != nil || m.Format != markerFormat {
		return installMarker{}
	}
	return m
}

// writeMarker writes the install marker of install id into dir, replacing
// the file atomically.
func writeMarker(dir, id string) error {
	doc, err := json.MarshalIndent(installMarker{Format: markerFormat, InstallID: id, Created: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, MarkerName), append(doc, '\n'))
}

// writeFileAtomic writes b to path (mode 0600) through a temporary file
// and a rename, with fsyncs, so that path holds either its old content or
// all of b.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the creation and renaming of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// newInstallID returns a new random install ID: 32 hex digits.
func newInstallID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// lockFile takes an advisory lock (flock) on f, as bbolt does: exclusive
// for a writer, shared for a reader. It waits up to timeout and then
// returns ErrLocked.
func lockFile(f *os.File, exclusive bool, timeout time.Duration) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setAside moves the store file at path out of the way, to
// path.damaged-<UTC time>, and returns the new name ("" if there was no
// file). It never replaces another file, and it waits for (and then
// refuses, with ErrLocked) a process that holds the file.
func setAside(path string, lockTimeout time.Duration) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := lockFile(f, true, lockTimeout); err != nil {
		return "", err
	}
	base := path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	aside := base
	for i := 2; ; i++ {
		err := os.Link(path, aside)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("keep the old store file: %w", err)
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("keep the old store file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("keep the old store file: %w", err)
	}
	return aside, nil
}
