// Package admin is the security core of Fulcrum's admin plane: users and
// their roles, password hashing, login with brute-force lockout, browser
// sessions with CSRF protection, API keys, the audit trail of every
// security-relevant event, and the admin plane's TLS certificate.
//
// A Service keeps lockout counters, login budgets and sessions in memory
// only; users, API keys and audit entries live in a Backend (the store).
// The Service starts no goroutines of its own: expired entries are dropped
// lazily, and a timer writes the aggregated audit entry of repeated
// failures when its minute ends (see auditFailure). It is safe for use by
// many goroutines at once.
package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Backend is the persistence the admin plane needs; *store.Store
// implements it.
type Backend interface {
	// Users returns every user.
	Users() ([]config.User, error)
	// User returns one user, or an error for which Options.IsNotFound is
	// true when there is no such user.
	User(name string) (config.User, error)
	// PutUser creates or replaces a user.
	PutUser(u config.User) error
	// DeleteUser removes a user.
	DeleteUser(name string) error
	// APIKeys returns every API key, hashes included.
	APIKeys() ([]config.APIKey, error)
	// PutAPIKey creates or replaces an API key.
	PutAPIKey(k config.APIKey) error
	// DeleteAPIKey removes an API key.
	DeleteAPIKey(id string) error
	// AppendAudit appends an entry to the audit trail and returns it with
	// its sequence number.
	AppendAudit(e store.AuditEntry) (store.AuditEntry, error)
}

// DefaultBcryptCost is the bcrypt cost of password hashes in production.
const DefaultBcryptCost = 12

// Bounds of the in-memory state.
const (
	// MaxLockoutEntries bounds the number of lockout counters kept.
	MaxLockoutEntries = 100_000
	// MaxSessions bounds the number of browser sessions; when a new one
	// would exceed it, the oldest is dropped.
	MaxSessions = 10_000
	// MaxAPIKeysPerUser is the number of API keys a user may hold, as on a
	// LoadMaster; creating one more deletes the oldest.
	MaxAPIKeysPerUser = 16
)

// Options configure a Service. The zero value is usable.
type Options struct {
	// Policy returns the current lockout, session and password policy (from
	// the live configuration). Nil means config.DefaultLockout(); zero
	// fields of the result take their defaults too.
	Policy func() config.Lockout
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives errors that cannot be returned, such as a failure to
	// write the audit trail. Nil means slog.Default().
	Logger *slog.Logger
	// BcryptCost is the cost of new password hashes; 0 means
	// DefaultBcryptCost. Tests use a low cost to run fast.
	BcryptCost int
	// IsNotFound reports whether an error of Backend.User means that the
	// user does not exist. Nil means errors.Is with store.ErrNotFound or
	// ErrNoSuchUser.
	IsNotFound func(error) bool
	// OnAudit, when set, is called with every audit entry written
	// (aggregated failures once per entry, as stored), after the write
	// and whether or not it succeeded. It must not block; it may be
	// called from several goroutines at once.
	OnAudit func(store.AuditEntry)
}

// Service is the admin plane's security core. Create it with New.
type Service struct {
	b          Backend
	policyFn   func() config.Lockout
	nowFn      func() time.Time
	log        *slog.Logger
	cost       int
	isNotFound func(error) bool
	onAudit    func(store.AuditEntry)

	// usersMu serialises read-modify-write changes of users and keys so
	// that checks such as "not the last admin" hold when the change is
	// written.
	usersMu sync.Mutex

	dummyOnce sync.Once
	dummy     []byte // bcrypt hash compared against when a user is unknown

	locks    limiter
	budgets  accountBudgets
	keys     keyBudget
	agg      auditAggregator
	sessions sessionTable
}

// New returns a Service that keeps users, keys and the audit trail in b.
func New(b Backend, o Options) *Service {
	s := &Service{
		b:          b,
		policyFn:   o.Policy,
		nowFn:      o.Now,
		log:        o.Logger,
		cost:       o.BcryptCost,
		isNotFound: o.IsNotFound,
		onAudit:    o.OnAudit,
	}
	if s.nowFn == nil {
		s.nowFn = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cost == 0 {
		s.cost = DefaultBcryptCost
	}
	if s.isNotFound == nil {
		s.isNotFound = func(err error) bool {
			return errors.Is(err, ErrNoSuchUser) || (store.ErrNotFound != nil && errors.Is(err, store.ErrNotFound))
		}
	}
	s.locks.entries = map[lockKey]*lockEntry{}
	s.budgets.m = map[string]*accountBudget{}
	s.agg.windows = map[auditKind]*auditWindow{}
	s.sessions.m = map[[32]byte]*session{}
	return s
}

func (s *Service) now() time.Time { return s.nowFn() }

// policy returns the current policy with defaults for unset fields.
func (s *Service) policy() config.Lockout {
	var p config.Lockout
	if s.policyFn != nil {
		p = s.policyFn()
	}
	d := config.DefaultLockout()
	def := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&p.Attempts, d.Attempts)
	def(&p.CoolDown, d.CoolDown)
	def(&p.SessionIdle, d.SessionIdle)
	def(&p.SessionMax, d.SessionMax)
	def(&p.MinPassword, d.MinPassword)
	return p
}

// Errors returned by the Service. Validation problems are returned as
// config.Errors (see config.IsErrors), wrapped.
var (
	// ErrNoCredentials means a request carried no credentials at all.
	ErrNoCredentials = errors.New("authentication required")
	// ErrBadCredentials means the user name, password or API key is wrong,
	// or the credentials are malformed. It never says which.
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrSessionExpired means the request's session cookie names no valid
	// session: it expired, was logged out or revoked.
	ErrSessionExpired = errors.New("session expired or invalid")
	// ErrCSRF means a cookie-authenticated state-changing request lacked
	// the right X-CSRF-Token header or came from a foreign origin.
	ErrCSRF = errors.New("cross-site request refused: missing or wrong CSRF token or foreign origin")
	// ErrLocked is matched by errors.Is for every *LockedError.
	ErrLocked = errors.New("locked out")
	// ErrForbidden means the principal's role does not allow the action.
	ErrForbidden = errors.New("permission denied")
	// ErrNoSuchUser means the named user does not exist.
	ErrNoSuchUser = errors.New("no such user")
	// ErrUserExists means a user of that name already exists.
	ErrUserExists = errors.New("user already exists")
	// ErrLastAdmin means the change would leave no user with the admin
	// role.
	ErrLastAdmin = errors.New("refused: this is the last admin user")
	// ErrNoSuchKey means the named API key does not exist.
	ErrNoSuchKey = errors.New("no such API key")
	// ErrWrongPassword means the old password given to SetPassword is
	// wrong.
	ErrWrongPassword = errors.New("the old password is wrong")
)

// LockedError is returned while an account (or, for API keys, a source
// address) is in its cool-down after too many failed attempts, while an
// account is slowed or locked after too many failures from many sources,
// and while API keys are refused after too many failures from all sources.
type LockedError struct {
	// Until is when the cool-down or delay ends; for a lock that only the
	// console lifts (Console), a time to try again (an hour on).
	Until time.Time
	// Console is set when the account is locked for password logins from
	// this source until an administrator lifts the lock at the console
	// (fulcrum passwd) or with UnlockAccount.
	Console bool
}

// Error implements error.
func (e *LockedError) Error() string {
	if e.Console {
		return fmt.Sprintf("too many failed logins for this account from many addresses: it is locked for logins from new addresses "+
			"until an administrator lifts the lock at the console (fulcrum passwd); at least %d failures in %v",
			AccountLockAfter, AccountLockWindow)
	}
	return fmt.Sprintf("too many failed attempts: locked until %s", e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLocked) true for a *LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// RetryAfter returns the whole number of seconds, at least 1, from now
// until the cool-down ends.
func (e *LockedError) RetryAfter(now time.Time) int {
	d := e.Until.Sub(now)
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return secs
}
