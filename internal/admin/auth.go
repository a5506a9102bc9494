package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Authentication methods, the values of Principal.Method.
const (
	// MethodBasic is HTTP Basic authentication with user name and password.
	MethodBasic = "basic"
	// MethodAPIKey is "Authorization: Bearer" with an API key.
	MethodAPIKey = "apikey"
	// MethodSession is a browser session cookie.
	MethodSession = "session"
	// MethodConsole is the local console (fulcrum passwd and friends).
	MethodConsole = "console"
)

// Principal is an authenticated caller. Its JSON form, for the API to
// describe the caller, never holds the session ID: the session cookie is
// HttpOnly and must stay out of reach of scripts.
type Principal struct {
	// User is the user name.
	User string `json:"user"`
	// Role is the user's current role.
	Role string `json:"role"`
	// Method is how the caller authenticated: "basic", "apikey", "session"
	// or "console".
	Method string `json:"method"`
	// SessionID is the browser session's ID when Method is "session".
	SessionID string `json:"-"`
	// KeyID is the API key's ID when Method is "apikey".
	KeyID string `json:"keyId,omitempty"`
	// CSRFToken is the session's CSRF token when Method is "session"; the
	// browser must send it in the X-CSRF-Token header of state-changing
	// requests.
	CSRFToken string `json:"csrfToken,omitempty"`
}

// Permission is something a role may be allowed to do.
type Permission int

// The permissions. An admin has all of them, an operator PermRead and
// PermOperate, a read-only user PermRead.
const (
	// PermRead allows reading configuration and status, without secrets.
	PermRead Permission = iota + 1
	// PermReadSecrets allows reading secrets such as private keys.
	PermReadSecrets
	// PermOperate allows enabling, disabling and draining real servers.
	PermOperate
	// PermWrite allows changing the configuration.
	PermWrite
	// PermUsers allows managing other users and their API keys.
	PermUsers
)

// String returns the permission's name.
func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermReadSecrets:
		return "read-secrets"
	case PermOperate:
		return "operate"
	case PermWrite:
		return "write"
	case PermUsers:
		return "users"
	}
	return "permission(" + strconv.Itoa(int(p)) + ")"
}

// Can reports whether the principal's role grants perm. Unknown roles and
// the zero Principal grant nothing.
func (p Principal) Can(perm Permission) bool {
	switch p.Role {
	case config.RoleAdmin:
		return perm >= PermRead && perm <= PermUsers
	case config.RoleOperator:
		return perm == PermRead || perm == PermOperate
	case config.RoleReadOnly:
		return perm == PermRead
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored by Middleware or
// WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// methodSystem marks actions Fulcrum takes on its own, such as creating
// the first admin at first start.
const methodSystem = "system"

// source returns the audit source (the store's vocabulary: "wui", "api",
// "cli", "system") of an authentication method.
func source(method string) string {
	switch method {
	case MethodSession:
		return "wui"
	case MethodBasic, MethodAPIKey:
		return "api"
	case MethodConsole:
		return "cli"
	}
	return method
}

// dummyHash returns a bcrypt hash, at the service's cost, of a password
// nobody knows, compared against when a user does not exist so that the
// answer takes as long as for a real user.
func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(randomToken(24)), s.cost)
		if err != nil { // only for an invalid cost
			h, _ = bcrypt.GenerateFromPassword([]byte(randomToken(24)), bcrypt.DefaultCost)
		}
		s.dummy = h
	})
	return s.dummy
}

// checkPassword compares pw with u's hash in constant time; when u is nil
// or has no hash it still spends one comparison.
func (s *Service) checkPassword(u *config.User, pw string) bool {
	if u == nil || u.PasswordHash == "" || len(pw) > 72 {
		// bcrypt ignores bytes past the 72nd, so such a password would match
		// its prefix's hash: refuse it, after the same amount of work.
		if len(pw) > 72 {
			pw = pw[:72]
		}
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) == nil
}

// hashPassword returns the bcrypt hash of pw.
func (s *Service) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// passwordAuth checks a user name and password from remote, with lockout
// and audit. method is "session" for Login and "basic" for Basic auth.
//
// Three budgets bound guessing: the account from one source (the policy's
// Attempts, then CoolDown), one source for any account (ten times that),
// and the account from all sources that are not known for it (slowed
// after AccountSlowAfter failures in AccountSlowWindow, locked after
// AccountLockAfter in AccountLockWindow until the console lifts it; see
// accountBudgets). Every attempt is counted when it starts, so that
// parallel guesses cannot exceed a budget while their hashes are compared.
func (s *Service) passwordAuth(name, pw, remote, method string) (config.User, error) {
	now := s.now()
	p := s.policy()
	src := sourceOf(remote)
	k := userLockKey(name, src)
	who := Principal{User: name, Method: method}
	how := "method " + method
	if method == MethodSession {
		how = "method password"
	}
	sk, sp := sourceLockKey(src), sourcePolicy(p)
	if r, locked := s.locks.begin(sk, now, sp); locked {
		why := "login refused: source locked (" + how + ")"
		s.auditFailure(who, remote, "login", anySubject, "", why, why, false)
		return config.User{}, &LockedError{Until: r.until}
	}
	if r, locked := s.locks.begin(k, now, p); locked {
		s.locks.cancel(sk)
		why := "login refused: locked (" + how + ")"
		s.auditFailure(who, remote, "login", name, "", why, why, false)
		return config.User{}, &LockedError{Until: r.until}
	}
	d := s.budgets.begin(name, src, now)
	if d.refused {
		s.locks.cancel(sk)
		s.locks.cancel(k)
		why := "login refused: account slowed after failures from many sources (" + how + ")"
		if d.locked {
			why = "login refused: account locked for new sources until lifted at the console (" + how + ")"
		}
		s.auditFailure(who, remote, "login", name, "", why, why, false)
		return config.User{}, &LockedError{Until: d.until, Console: d.locked}
	}
	var found *config.User
	if name != "" {
		u, err := s.b.User(name)
		switch {
		case err == nil:
			found = &u
			s.budgets.markExists(name)
		case !s.isNotFound(err):
			s.locks.cancel(k)
			s.locks.cancel(sk)
			s.budgets.cancel(name, d)
			return config.User{}, fmt.Errorf("look up user %q: %w", name, err)
		}
	}
	if s.checkPassword(found, pw) {
		// The source's counter is not cleared: a valid account of the
		// attacker's own must not reset the budget for guessing others.
		s.locks.cancel(sk)
		s.locks.succeed(k)
		s.budgets.succeed(name, src, d, s.now())
		s.keys.remember(src, s.now())
		return *found, nil
	}
	if found == nil {
		why := "unknown user (" + how + ")"
		s.auditFailure(who, remote, "login", anySubject, name, why, why, false)
	} else {
		why := "wrong password (" + how + ")"
		s.auditFailure(who, remote, "login", name, "", why, why, false)
	}
	if until, lockedNow := s.locks.fail(k, s.now(), p); lockedNow {
		s.auditFailure(who, remote, "lockout", name, "",
			fmt.Sprintf("%d failed attempts from one source: locked for %d s", p.Attempts, p.CoolDown),
			fmt.Sprintf("%d failed attempts from %s: locked until %s", p.Attempts, src, until.UTC().Format(time.RFC3339)), true)
	}
	if until, lockedNow := s.locks.fail(sk, s.now(), sp); lockedNow {
		s.auditFailure(Principal{Method: method}, remote, "lockout", anySubject, "",
			fmt.Sprintf("%d failed attempts for any account from one source: source locked for %d s", sp.Attempts, sp.CoolDown),
			fmt.Sprintf("%d failed attempts for any account from %s: source locked until %s",
				sp.Attempts, src, until.UTC().Format(time.RFC3339)), true)
	}
	switch lockedNow, slowedNow := s.budgets.fail(name, d, s.now()); {
	case lockedNow:
		msg := fmt.Sprintf("%d failed logins in %v from sources not known for the account: locked for logins from new sources "+
			"until lifted at the console (fulcrum passwd)", AccountLockAfter, AccountLockWindow)
		s.auditFailure(who, remote, "lockout", name, "", msg, msg, true)
		s.log.Warn("admin: account locked for logins from new sources", "user", truncate(name, 64), "failures", AccountLockAfter,
			"window", AccountLockWindow, "lift", "fulcrum passwd --user "+truncate(name, 64))
	case slowedNow:
		msg := fmt.Sprintf("%d failed logins in %v from sources not known for the account: each further attempt from a new source waits",
			AccountSlowAfter, AccountSlowWindow)
		s.auditFailure(who, remote, "lockout", name, "", msg, msg, true)
	}
	return config.User{}, ErrBadCredentials
}

// Login checks a user name and password given to the web login form from
// remote and opens a browser session. It returns the principal, with its
// CSRF token, and the session cookie to set. Errors are ErrBadCredentials,
// *LockedError or a wrapped backend error.
func (s *Service) Login(user, password, remote string) (Principal, *http.Cookie, error) {
	u, err := s.passwordAuth(user, password, remote, MethodSession)
	if err != nil {
		return Principal{}, nil, err
	}
	id, csrf := s.newSession(u.Name, s.now())
	s.Audit(Principal{User: u.Name, Role: u.Role, Method: MethodSession}, remote, "login", "session opened (method password)", true)
	return Principal{User: u.Name, Role: u.Role, Method: MethodSession, SessionID: id, CSRFToken: csrf},
		sessionCookie(id), nil
}

// Authenticate identifies the caller of r. It tries, in order, the session
// cookie (with CSRF checks on state-changing methods), an API key in
// "Authorization: Bearer", and HTTP Basic. It returns ErrNoCredentials when
// the request carries none, ErrSessionExpired for a stale cookie alone,
// ErrBadCredentials, ErrCSRF, *LockedError, or a wrapped backend error.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	var sessErr error
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		p, err := s.sessionAuth(c.Value)
		switch {
		case err == nil:
			if !unsafeMethod(r.Method) {
				return p, nil
			}
			tok := r.Header.Get(CSRFHeader)
			if subtle.ConstantTimeCompare([]byte(tok), []byte(p.CSRFToken)) != 1 || !sameOrigin(r) {
				return Principal{}, ErrCSRF
			}
			return p, nil
		case errors.Is(err, ErrSessionExpired):
			sessErr = err
		default:
			return Principal{}, err
		}
	}
	auths := r.Header.Values("Authorization")
	if len(auths) > 1 {
		return Principal{}, fmt.Errorf("%w: more than one Authorization header", ErrBadCredentials)
	}
	if len(auths) == 1 {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(auths[0]), " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			return s.apiKeyAuth(strings.TrimSpace(rest), r.RemoteAddr)
		case strings.EqualFold(scheme, "Basic"):
			user, pw, ok := r.BasicAuth()
			if !ok {
				return Principal{}, fmt.Errorf("%w: malformed Basic credentials", ErrBadCredentials)
			}
			// Browsers resend Basic credentials on their own, like cookies.
			if unsafeMethod(r.Method) && !sameOrigin(r) {
				return Principal{}, ErrCSRF
			}
			u, err := s.passwordAuth(user, pw, r.RemoteAddr, MethodBasic)
			if err != nil {
				return Principal{}, err
			}
			return Principal{User: u.Name, Role: u.Role, Method: MethodBasic}, nil
		default:
			return Principal{}, fmt.Errorf("%w: unsupported authorization scheme", ErrBadCredentials)
		}
	}
	if sessErr != nil {
		return Principal{}, sessErr
	}
	return Principal{}, ErrNoCredentials
}

// sessionAuth returns the principal of a live session.
func (s *Service) sessionAuth(id string) (Principal, error) {
	now := s.now()
	ss, ok := s.lookupSession(id, now)
	if !ok {
		return Principal{}, ErrSessionExpired
	}
	u, err := s.b.User(ss.user)
	if err != nil {
		if s.isNotFound(err) {
			s.dropSession(id)
			return Principal{}, ErrSessionExpired
		}
		return Principal{}, fmt.Errorf("look up user %q: %w", ss.user, err)
	}
	if u.PasswordChanged.After(ss.created) {
		s.dropSession(id)
		return Principal{}, ErrSessionExpired
	}
	s.touchSession(id, now)
	return Principal{User: u.Name, Role: u.Role, Method: MethodSession, SessionID: id, CSRFToken: ss.csrf}, nil
}

// unsafeMethod reports whether a request method may change state; only
// GET, HEAD and OPTIONS are considered safe.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Middleware authenticates every request and passes it to next with the
// Principal in its context (see PrincipalFrom). On failure it answers
// {"error": "...", "status": N}: 401 with a Basic challenge for missing or
// bad credentials, 403 for a CSRF failure, 429 with Retry-After while
// locked out, 500 when the backend fails.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Authenticate(r)
		if err == nil {
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		}
		var le *LockedError
		switch {
		case errors.As(err, &le):
			w.Header().Set("Retry-After", strconv.Itoa(le.RetryAfter(s.now())))
			writeError(w, http.StatusTooManyRequests, le.Error())
		case errors.Is(err, ErrCSRF):
			writeError(w, http.StatusForbidden, ErrCSRF.Error())
		case errors.Is(err, ErrSessionExpired):
			// No Basic challenge: the web UI should show its own login page
			// rather than the browser's password dialog.
			writeError(w, http.StatusUnauthorized, ErrSessionExpired.Error())
		case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrBadCredentials):
			w.Header().Set("WWW-Authenticate", `Basic realm="Fulcrum", charset="UTF-8"`)
			msg := ErrBadCredentials.Error()
			if errors.Is(err, ErrNoCredentials) {
				msg = ErrNoCredentials.Error()
			}
			writeError(w, http.StatusUnauthorized, msg)
		default:
			s.log.Error("admin: authentication failed", "err", err, "remote", r.RemoteAddr)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, status})
}
