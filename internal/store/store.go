// Package store is Fulcrum's persistent state: the revisioned configuration
// with its change history, the admin-plane users and API keys, the audit log
// and the installation secrets, kept in one bbolt file.
//
// Every change is one bbolt transaction, written with bbolt's default fsync,
// so after a crash at any moment the store opens with the state of the last
// committed transaction: never a half-written revision, never a revision
// without its change record. Only one process may open the store at a time;
// a second one gets an error wrapping ErrLocked.
//
// A Store is safe for concurrent use. Configurations handed to Commit are
// stored as given (callers validate them); configurations returned are
// decoded afresh from the file, so callers may modify them freely.
package store

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// FileName is the name of the database file inside the store directory.
const FileName = "fulcrum.db"

// layoutVersion is the version of the bucket layout, kept in the meta bucket.
// Layout 1 stored each revision's configuration as indented JSON; layout 2
// stores it as gzip-compressed JSON (see packConfig), about 35 times
// smaller for a large configuration, which keeps the 1,000 revisions of a
// configuration of 1,000 services in tens of megabytes instead of
// gigabytes, and the fsync of a commit short. Revisions written under
// layout 1 stay readable, and a layout-1 file is marked layout 2 when it is
// opened, so that an older Fulcrum refuses it rather than misreading it.
const layoutVersion = 2

// Default values of Options.
const (
	DefaultLockTimeout  = time.Second
	DefaultMaxRevisions = 1000
	DefaultMaxAudit     = 100000
)

var (
	// ErrNotFound is returned (wrapped) when a revision, user, API key or
	// audit entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned (wrapped) by Open when another process, or
	// another Store in this process, holds the database file.
	ErrLocked = errors.New("store is locked by another process")
)

// Bucket names.
var (
	bucketMeta    = []byte("meta")
	bucketChanges = []byte("changes") // revision → Change JSON
	bucketConfigs = []byte("configs") // revision → packed config (packConfig)
	bucketUsers   = []byte("users")   // name → config.User JSON
	bucketAPIKeys = []byte("apiKeys") // id → config.APIKey JSON
	bucketAudit   = []byte("audit")   // seq → AuditEntry JSON
	bucketSecrets = []byte("secrets") // name → random bytes
	allBuckets    = [][]byte{bucketMeta, bucketChanges, bucketConfigs, bucketUsers, bucketAPIKeys, bucketAudit, bucketSecrets}
	keyLayout     = []byte("layout") // in meta: layoutVersion
)

// Errors of a damaged store file.
var (
	errNoTxBucket   = fmt.Errorf("%w: it lacks a bucket", ErrDamaged)
	errCorruptValue = fmt.Errorf("%w: it holds a malformed record", ErrDamaged)
)

// Change describes one committed revision.
type Change struct {
	// Revision is the number of the revision, counting from 1; 0 is the
	// built-in default configuration of a new installation.
	Revision uint64 `json:"revision"`
	// Time is when the revision was committed.
	Time time.Time `json:"time"`
	// User is the name of the user who made the change.
	User string `json:"user"`
	// Source is where the change came from: "wui", "api", "kemp-api",
	// "cli", "template" or "system".
	Source string `json:"source"`
	// RemoteAddr is the client address the change was made from, if any.
	RemoteAddr string `json:"remoteAddr"`
	// Summary says in a line what changed.
	Summary string `json:"summary"`
}

// Revision is one stored generation of the configuration with the change
// that made it.
type Revision struct {
	Change
	// Config is the configuration of this revision.
	Config *config.Config
}

// ConflictError is returned by Commit when the change was prepared against
// a revision that is no longer the current one.
type ConflictError struct {
	// Base is the revision the change was based on.
	Base uint64
	// Current is the current revision.
	Current uint64
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("revision conflict: change based on revision %d, current is %d", e.Base, e.Current)
}

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another holder of the database
	// file to let go; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxRevisions is the number of newest revisions kept; older ones are
	// pruned on commit. 0 (or less) means DefaultMaxRevisions.
	MaxRevisions int
	// MaxAudit is the number of newest audit entries kept; 0 (or less) means
	// DefaultMaxAudit.
	MaxAudit int
	// CheckTime bounds the check of an existing file by Open; 0 (or less)
	// means DefaultCheckTime. A check cut short says so in Store.Report.
	CheckTime time.Duration
	// Reinitialise makes Open start a new store when the file is missing,
	// empty or damaged, moving a damaged file aside instead of refusing
	// it. A healthy file is opened as usual.
	Reinitialise bool

	noSync bool // tests: no fsync
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxRevisions <= 0 {
		o.MaxRevisions = DefaultMaxRevisions
	}
	if o.MaxAudit <= 0 {
		o.MaxAudit = DefaultMaxAudit
	}
	if o.CheckTime <= 0 {
		o.CheckTime = DefaultCheckTime
	}
	return o
}

// Store is Fulcrum's persistent state in one bbolt database file.
type Store struct {
	db     *bolt.DB
	path   string
	opts   Options
	report *Report
	// bgWait waits for a start-up check still running.
	bgWait func()
	// broken holds the damage met while serving, after which writes are
	// refused: bbolt would build new pages on the damaged ones.
	broken atomic.Pointer[error]
}

// init creates the buckets of a new file, checks the layout version of an
// existing one, and records the install's ID if the store has none:
// markerID (the install marker's) if not empty, else a new one. It returns
// the store's install ID.
func (s *Store) init(markerID string) (id string, err error) {
	err = catch(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			meta := tx.Bucket(bucketMeta)
			if v := meta.Get(keyInstallID); v != nil {
				id = string(v)
			} else {
				id = markerID
				if id == "" {
					id = newInstallID()
				}
				if err := meta.Put(keyInstallID, []byte(id)); err != nil {
					return err
				}
			}
			v := meta.Get(keyLayout)
			if v == nil {
				return meta.Put(keyLayout, u64(layoutVersion))
			}
			if len(v) == 8 && binary.BigEndian.Uint64(v) == 1 {
				return meta.Put(keyLayout, u64(layoutVersion)) // layout-1 revisions stay readable
			}
			if len(v) != 8 || binary.BigEndian.Uint64(v) != layoutVersion {
				return fmt.Errorf("unsupported store layout %x (this version reads layouts 1 and %d)", v, layoutVersion)
			}
			return nil
		})
	})
	return id, classifyWriteError(err)
}

// Close closes the database file. Calls made after Close fail.
func (s *Store) Close() error {
	s.bgWait() // a start-up check still running in the background
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

// Current returns the current revision. On a new store that is revision 0
// with config.Default().
func (s *Store) Current() (Revision, error) {
	var r Revision
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = currentRevision(tx)
		return err
	})
	if err != nil {
		return Revision{}, fmt.Errorf("read current revision: %w", err)
	}
	return r, nil
}

// Revision returns revision n, or an error wrapping ErrNotFound if it never
// existed or has been pruned. Revision 0, the default configuration, exists
// only while no revision has been committed.
func (s *Store) Revision(n uint64) (Revision, error) {
	var r Revision
	err := s.view(func(tx *bolt.Tx) error {
		cur := currentNumber(tx)
		if n == 0 && cur == 0 {
			var err error
			r, err = currentRevision(tx)
			return err
		}
		if n == 0 || n > cur {
			return ErrNotFound
		}
		var err error
		r, err = readRevision(tx, n)
		return err
	})
	if err != nil {
		return Revision{}, fmt.Errorf("read revision %d: %w", n, err)
	}
	return r, nil
}

// Commit stores cfg as the next revision with the change ch, in one
// transaction. base is the revision the change was prepared against; if it
// is no longer the current one, Commit returns a *ConflictError and changes
// nothing. ch.Revision is ignored and ch.Time, if zero, is set to now.
// Revisions beyond Options.MaxRevisions are pruned, oldest first. Commit
// does not validate cfg. A conflict is returned as a bare *ConflictError.
func (s *Store) Commit(base uint64, ch Change, cfg *config.Config) (Revision, error) {
	p, err := s.Prepare(cfg)
	if err != nil {
		return Revision{}, fmt.Errorf("commit: %w", err)
	}
	rev, err := s.CommitPrepared(base, ch, p)
	if err != nil {
		return Revision{}, err
	}
	rev.Config = cfg.Clone()
	return rev, nil
}

// Prepared is a configuration encoded for CommitPrepared.
type Prepared struct {
	cfg *config.Config
	doc []byte
}

// Prepare encodes cfg for CommitPrepared. It reads cfg only and takes no
// lock, so a caller may prepare a large configuration while doing other
// work (the controller does it while the data plane compiles); cfg must
// not be modified until the commit.
func (s *Store) Prepare(cfg *config.Config) (*Prepared, error) {
	if cfg == nil {
		return nil, errors.New("no configuration")
	}
	doc, err := packConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Prepared{cfg: cfg, doc: doc}, nil
}

// CommitPrepared is Commit of a prepared configuration, except that the
// Revision it returns has no Config: the caller holds it.
func (s *Store) CommitPrepared(base uint64, ch Change, p *Prepared) (Revision, error) {
	if p == nil || p.cfg == nil {
		return Revision{}, errors.New("commit: no configuration")
	}
	var out Revision
	err := s.update(func(tx *bolt.Tx) error {
		cur := currentNumber(tx)
		if cur != base {
			return &ConflictError{Base: base, Current: cur}
		}
		var err error
		out, err = s.putRevision(tx, ch, p.cfg, p.doc)
		return err
	})
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return Revision{}, conflict
	}
	if err != nil {
		return Revision{}, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// putRevision stores doc, cfg packed by packConfig, as revision current+1
// with ch and prunes old revisions. It returns the new revision without
// its Config.
func (s *Store) putRevision(tx *bolt.Tx, ch Change, cfg *config.Config, doc []byte) (Revision, error) {
	n := currentNumber(tx) + 1
	ch.Revision = n
	if ch.Time.IsZero() {
		ch.Time = time.Now().UTC()
	}
	chDoc, err := json.Marshal(ch)
	if err != nil {
		return Revision{}, fmt.Errorf("encode change: %w", err)
	}
	if err := tx.Bucket(bucketChanges).Put(u64(n), chDoc); err != nil {
		return Revision{}, fmt.Errorf("store change %d: %w", n, err)
	}
	if err := tx.Bucket(bucketConfigs).Put(u64(n), doc); err != nil {
		return Revision{}, fmt.Errorf("store configuration %d: %w", n, err)
	}
	if n > uint64(s.opts.MaxRevisions) {
		keep := n - uint64(s.opts.MaxRevisions) + 1 // oldest revision kept
		for _, name := range [][]byte{bucketChanges, bucketConfigs} {
			if err := deleteBelow(tx.Bucket(name), keep); err != nil {
				return Revision{}, fmt.Errorf("prune revisions: %w", err)
			}
		}
	}
	if err := raiseHighWater(tx, cfg); err != nil {
		return Revision{}, err
	}
	return Revision{Change: ch}, nil
}

// History returns the changes of the stored revisions older than before,
// newest first, at most limit of them. before 0 means from the newest;
// limit <= 0 means 100.
func (s *Store) History(before uint64, limit int) ([]Change, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []Change{}
	err := s.view(func(tx *bolt.Tx) error {
		return walkBack(tx.Bucket(bucketChanges), before, func(k, v []byte) (bool, error) {
			var ch Change
			if err := json.Unmarshal(v, &ch); err != nil {
				return false, fmt.Errorf("change %d: %w: %v", binary.BigEndian.Uint64(k), errCorruptValue, err)
			}
			out = append(out, ch)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return out, nil
}

// view runs fn in a read transaction after checking the buckets exist. A
// panic of bbolt on a damaged page (or a fault on its memory map) becomes
// an error wrapping ErrDamaged, and later writes are refused.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := catch(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			if err := checkBuckets(tx); err != nil {
				return err
			}
			return fn(tx)
		})
	})
	s.noteDamage(err)
	return err
}

// update runs fn in a write transaction after checking the buckets exist.
// Like view it turns a panic into an error wrapping ErrDamaged; it refuses
// to write once damage was met, and a write that failed for want of disk
// space returns an error wrapping ErrNoSpace (without the file's path).
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if p := s.broken.Load(); p != nil {
		return fmt.Errorf("writes are refused since a damaged page was met (%w); stop Fulcrum and run `fulcrum store check`", *p)
	}
	err := catch(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			if err := checkBuckets(tx); err != nil {
				return err
			}
			return fn(tx)
		})
	})
	s.noteDamage(err)
	return classifyWriteError(err)
}

// noteDamage remembers a panic turned into err, so that writes stop.
func (s *Store) noteDamage(err error) {
	var pe *panicError
	if errors.As(err, &pe) {
		s.broken.CompareAndSwap(nil, &err)
	}
}

func checkBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w %q", errNoTxBucket, name)
		}
	}
	return nil
}

// currentNumber returns the newest stored revision, 0 if there is none.
// Pruning never removes the newest revision, so it is the current one.
func currentNumber(tx *bolt.Tx) uint64 {
	k, _ := tx.Bucket(bucketChanges).Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

func currentRevision(tx *bolt.Tx) (Revision, error) {
	n := currentNumber(tx)
	if n == 0 {
		return Revision{Config: config.Default()}, nil
	}
	return readRevision(tx, n)
}

func readRevision(tx *bolt.Tx, n uint64) (Revision, error) {
	chDoc := tx.Bucket(bucketChanges).Get(u64(n))
	doc := tx.Bucket(bucketConfigs).Get(u64(n))
	if chDoc == nil || doc == nil {
		return Revision{}, ErrNotFound
	}
	var ch Change
	if err := json.Unmarshal(chDoc, &ch); err != nil {
		return Revision{}, fmt.Errorf("change %d: %w: %v", n, errCorruptValue, err)
	}
	cfg, err := decodeConfig(doc)
	if err != nil {
		return Revision{}, fmt.Errorf("revision %d: %w", n, err)
	}
	return Revision{Change: ch, Config: cfg}, nil
}

// packConfig encodes cfg as stored in the configs bucket: its JSON,
// gzip-compressed at the fastest level (a configuration is repetitive, so
// even that level makes it 20 to 40 times smaller).
func packConfig(cfg *config.Config) ([]byte, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(js)/16 + 64)
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		if zw, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed); err != nil {
			return nil, fmt.Errorf("compress configuration: %w", err)
		}
	} else {
		zw.Reset(&buf)
	}
	defer gzipWriters.Put(zw)
	if _, err := zw.Write(js); err != nil {
		return nil, fmt.Errorf("compress configuration: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// gzipWriters keeps compressors for packConfig: each holds about a
// megabyte of tables, which a change would otherwise allocate afresh.
var gzipWriters sync.Pool // *gzip.Writer at gzip.BestSpeed

// maxConfigSize bounds the JSON a stored configuration unpacks to, so that
// a damaged file cannot make the process exhaust its memory.
const maxConfigSize = 1 << 30

// unpackConfig returns the JSON of a stored configuration: gzip-compressed
// (layout 2) or plain (revisions written under layout 1). The result does
// not alias stored, which may belong to bbolt's memory map.
func unpackConfig(stored []byte) ([]byte, error) {
	if !compressed(stored) {
		return bytes.Clone(stored), nil // layout 1: JSON as is
	}
	zr, err := gzip.NewReader(bytes.NewReader(stored))
	if err != nil {
		return nil, fmt.Errorf("configuration: %w: %v", errCorruptValue, err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxConfigSize+1))
	if err == nil && len(js) > maxConfigSize {
		err = errors.New("too large")
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w: %v", errCorruptValue, err)
	}
	return js, nil
}

// compressed reports whether a stored configuration is gzip-compressed
// (layout 2) rather than plain JSON (layout 1).
func compressed(stored []byte) bool {
	return len(stored) >= 2 && stored[0] == 0x1f && stored[1] == 0x8b
}

// decodeConfig decodes a stored configuration (see unpackConfig).
func decodeConfig(stored []byte) (*config.Config, error) {
	doc, err := unpackConfig(stored)
	if err != nil {
		return nil, err
	}
	c := &config.Config{}
	if err := json.Unmarshal(doc, c); err != nil {
		return nil, fmt.Errorf("configuration: %w: %v", errCorruptValue, err)
	}
	return c, nil
}

// walkBack calls fn for the entries of b with 8-byte keys below before (all
// of them if before is 0), newest first, until fn returns false.
func walkBack(b *bolt.Bucket, before uint64, fn func(k, v []byte) (bool, error)) error {
	c := b.Cursor()
	var k, v []byte
	if before == 0 {
		k, v = c.Last()
	} else if next, _ := c.Seek(u64(before)); next == nil {
		k, v = c.Last() // everything is below before
	} else {
		k, v = c.Prev()
	}
	for ; k != nil; k, v = c.Prev() {
		if before != 0 && bytes.Compare(k, u64(before)) >= 0 {
			continue // defensive: never return entries at or after before
		}
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// deleteBelow deletes the entries of b whose 8-byte key is below min.
func deleteBelow(b *bolt.Bucket, min uint64) error {
	var keys [][]byte
	c := b.Cursor()
	limit := u64(min)
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// u64 encodes n as a big-endian key, so keys sort in numeric order.
func u64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}
