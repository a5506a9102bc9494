package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const adminPW = "admin-password-1"

type env struct {
	s     *Service
	b     *memBackend
	clk   *fakeClock
	admin Principal
}

// newEnv returns a service with the default policy, a fake clock and the
// first admin "bal" with password adminPW.
func newEnv(t *testing.T) *env {
	t.Helper()
	b := newMemBackend()
	clk := &fakeClock{t: t0}
	s := New(b, Options{Now: clk.Now, BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	if _, err := s.Bootstrap(adminPW); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	return &env{s: s, b: b, clk: clk, admin: Principal{User: config.FirstAdmin, Role: config.RoleAdmin, Method: MethodSession}}
}

// pw returns the password addUser gives a user.
func pw(name string) string { return name + "-password-12" }

// addUser creates a user whose password is pw(name).
func (e *env) addUser(t *testing.T, name, role string) Principal {
	t.Helper()
	if err := e.s.AddUser(e.admin, "192.0.2.1:1000", name, role, pw(name)); err != nil {
		t.Fatalf("AddUser(%s): %v", name, err)
	}
	return Principal{User: name, Role: role, Method: MethodSession}
}

// findAudit returns the first entry with the action and success whose
// detail contains sub.
func findAudit(entries []store.AuditEntry, action string, success bool, sub string) (store.AuditEntry, bool) {
	for _, a := range entries {
		if a.Action == action && a.Success == success && strings.Contains(a.Detail, sub) {
			return a, true
		}
	}
	return store.AuditEntry{}, false
}

func wantAudit(t *testing.T, entries []store.AuditEntry, action string, success bool, sub string) store.AuditEntry {
	t.Helper()
	a, ok := findAudit(entries, action, success, sub)
	if !ok {
		t.Fatalf("no audit entry %s success=%v detail~%q in:\n%s", action, success, sub, dumpAudit(entries))
	}
	return a
}

func dumpAudit(entries []store.AuditEntry) string {
	var sb strings.Builder
	for _, a := range entries {
		b, _ := json.Marshal(a)
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func newRequest(method, remote string) *http.Request {
	r := httptest.NewRequest(method, "https://lb.example/api/v1/things", nil)
	r.RemoteAddr = remote
	return r
}

func withCookie(r *http.Request, c *http.Cookie) *http.Request {
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return r
}

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name     string
		password string
		wantErr  bool
		wantGen  bool
	}{
		{name: "given", password: "a-good-long-password"},
		{name: "generated", password: "", wantGen: true},
		{name: "too short", password: "short", wantErr: true},
		{name: "too long", password: strings.Repeat("x", 73), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBackend()
			s := New(b, Options{BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
			gen, err := s.Bootstrap(tt.password)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Bootstrap accepted a bad password")
				}
				if _, ok := config.IsErrors(err); !ok {
					t.Errorf("error %v holds no config.Errors", err)
				}
				if users, _ := b.Users(); len(users) != 0 {
					t.Errorf("users created despite the error: %v", users)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bootstrap: %v", err)
			}
			pw := tt.password
			if tt.wantGen {
				if len(gen) < 20 {
					t.Fatalf("generated password %q is shorter than 20", gen)
				}
				for _, c := range gen {
					if !strings.ContainsRune(passwordAlphabet, c) || strings.ContainsRune("0O1lI", c) {
						t.Fatalf("generated password %q has unreadable character %q", gen, c)
					}
				}
				pw = gen
			} else if gen != "" {
				t.Fatalf("Bootstrap returned a generated password %q for a given one", gen)
			}
			u, err := b.User(config.FirstAdmin)
			if err != nil {
				t.Fatalf("first admin missing: %v", err)
			}
			if u.Role != config.RoleAdmin || !strings.HasPrefix(u.PasswordHash, "$2") || u.Created.IsZero() {
				t.Fatalf("first admin = %+v", u)
			}
			if p, _, err := s.Login(config.FirstAdmin, pw, "127.0.0.1:5000"); err != nil || p.Role != config.RoleAdmin {
				t.Fatalf("Login with bootstrap password: %v %+v", err, p)
			}
			wantAudit(t, b.auditLog(), "bootstrap", true, config.FirstAdmin)

			// Idempotent: a second call changes nothing.
			gen2, err := s.Bootstrap("")
			if err != nil || gen2 != "" {
				t.Fatalf("second Bootstrap = %q, %v; want \"\", nil", gen2, err)
			}
			if u2, _ := b.User(config.FirstAdmin); u2.PasswordHash != u.PasswordHash {
				t.Fatal("second Bootstrap changed the password")
			}
		})
	}
}

func TestGeneratePasswordUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := GeneratePassword()
		if len(p) != GeneratedPasswordLen || seen[p] {
			t.Fatalf("bad or repeated password %q", p)
		}
		seen[p] = true
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", config.RoleOperator)
	tests := []struct {
		name, user, pw string
		wantErr        error
		auditDetail    string
	}{
		{name: "ok", user: "alice", pw: pw("alice"), auditDetail: "session opened"},
		{name: "wrong password", user: "alice", pw: "nope-nope-nope", wantErr: ErrBadCredentials, auditDetail: "wrong password"},
		{name: "unknown user", user: "mallory", pw: "whatever-whatever", wantErr: ErrBadCredentials, auditDetail: "unknown user"},
		{name: "empty user", user: "", pw: "x", wantErr: ErrBadCredentials, auditDetail: "unknown user"},
		{name: "right prefix, too long", user: "alice", pw: pw("alice") + strings.Repeat("z", 80), wantErr: ErrBadCredentials, auditDetail: "wrong password"},
		{name: "huge user name", user: strings.Repeat("u", 1<<16), pw: "x", wantErr: ErrBadCredentials, auditDetail: "unknown user"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh source per case keeps the lockout out of the way.
			remote := "198.51.100." + strconv.Itoa(i+1) + ":4000"
			n := len(e.b.auditLog())
			p, cookie, err := e.s.Login(tt.user, tt.pw, remote)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Login error = %v, want %v", err, tt.wantErr)
				}
				if cookie != nil || p != (Principal{}) {
					t.Fatalf("failed Login returned %+v, %v", p, cookie)
				}
				a := wantAudit(t, e.b.auditSince(n), "login", false, tt.auditDetail)
				if a.RemoteAddr != remote[:strings.LastIndex(remote, ":")] || a.Source != "wui" {
					t.Errorf("audit entry %+v: want remote host and source wui", a)
				}
				return
			}
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			if p.User != "alice" || p.Role != config.RoleOperator || p.Method != MethodSession || p.SessionID == "" || p.CSRFToken == "" || p.CSRFToken == p.SessionID {
				t.Fatalf("principal = %+v", p)
			}
			if cookie.Name != SessionCookie || cookie.Value != p.SessionID || cookie.Path != "/" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
				t.Fatalf("cookie = %+v", cookie)
			}
			if len(cookie.Value) != 43 || len(p.CSRFToken) != 43 { // 32 bytes, base64url
				t.Errorf("token lengths %d, %d; want 43", len(cookie.Value), len(p.CSRFToken))
			}
			wantAudit(t, e.b.auditSince(n), "login", true, tt.auditDetail)
		})
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", config.RoleAdmin)
	const attacker, other = "203.0.113.9:1111", "203.0.113.10:2222"
	n := len(e.b.auditLog())
	for i := range 3 {
		if _, _, err := e.s.Login("alice", "wrong-password", attacker); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v, want ErrBadCredentials", i+1, err)
		}
	}
	lock := wantAudit(t, e.b.auditSince(n), "lockout", true, "locked until")
	if lock.User != "alice" || lock.RemoteAddr != "203.0.113.9" {
		t.Errorf("lockout audit = %+v", lock)
	}
	// Even the right password is refused now.
	n = len(e.b.auditLog())
	_, _, err := e.s.Login("alice", pw("alice"), attacker)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("locked Login = %v, want *LockedError", err)
	}
	if want := t0.Add(600 * time.Second); !le.Until.Equal(want) {
		t.Errorf("Until = %v, want %v", le.Until, want)
	}
	wantAudit(t, e.b.auditSince(n), "login", false, "login refused: locked")
	// Another source is not affected, nor is another account from the
	// same source.
	if _, _, err := e.s.Login("alice", pw("alice"), other); err != nil {
		t.Fatalf("Login from another source: %v", err)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, attacker); err != nil {
		t.Fatalf("Login of another account: %v", err)
	}
	// Still locked just before the cool-down ends, free after.
	e.clk.Advance(599 * time.Second)
	if _, _, err := e.s.Login("alice", pw("alice"), attacker); !errors.As(err, &le) {
		t.Fatalf("Login at 599 s = %v, want locked", err)
	}
	if got := le.RetryAfter(e.clk.Now()); got != 1 {
		t.Errorf("RetryAfter = %d, want 1", got)
	}
	e.clk.Advance(time.Second)
	if _, _, err := e.s.Login("alice", pw("alice"), attacker); err != nil {
		t.Fatalf("Login after the cool-down: %v", err)
	}
}

func TestLockoutSuccessResets(t *testing.T) {
	e := newEnv(t)
	const src = "203.0.113.1:1"
	for round := range 3 {
		for range 2 {
			if _, _, err := e.s.Login(config.FirstAdmin, "wrong-password", src); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if _, _, err := e.s.Login(config.FirstAdmin, adminPW, src); err != nil {
			t.Fatalf("round %d: success refused: %v", round, err)
		}
	}
}

func TestLockoutFailuresDecay(t *testing.T) {
	e := newEnv(t)
	const src = "203.0.113.1:1"
	for range 2 {
		e.s.Login(config.FirstAdmin, "wrong-password", src)
	}
	e.clk.Advance(601 * time.Second) // older than one cool-down: forgotten
	for range 2 {
		e.s.Login(config.FirstAdmin, "wrong-password", src)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, src); err != nil {
		t.Fatalf("Login = %v; old failures should have been forgotten", err)
	}
}

func TestLockoutPolicy(t *testing.T) {
	b := newMemBackend()
	clk := &fakeClock{t: t0}
	pol := config.Lockout{Attempts: 1, CoolDown: 30} // other fields default
	s := New(b, Options{Now: clk.Now, BcryptCost: bcrypt.MinCost, Policy: func() config.Lockout { return pol }})
	if _, err := s.Bootstrap(adminPW); err != nil {
		t.Fatal(err)
	}
	s.Login(config.FirstAdmin, "wrong-password", "10.1.1.1")
	var le *LockedError
	if _, _, err := s.Login(config.FirstAdmin, adminPW, "10.1.1.1"); !errors.As(err, &le) || !le.Until.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("Login = %v, want locked for 30 s", err)
	}
}

func TestLockoutIPv6Prefix(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		remote := "[2001:db8:1:2::" + strconv.Itoa(i+1) + "]:443"
		e.s.Login(config.FirstAdmin, "wrong-password", remote)
	}
	// Another address of the same /64 is the same source.
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "[2001:db8:1:2::ffff]:443"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Login from the same /64 = %v, want locked", err)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "[2001:db8:1:3::1]:443"); err != nil {
		t.Fatalf("Login from another /64 = %v", err)
	}
}

func TestConcurrentGuessesStayWithinBudget(t *testing.T) {
	e := newEnv(t)
	n := len(e.b.auditLog())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { e.s.Login(config.FirstAdmin, "wrong-password", "10.9.9.9:1") })
	}
	wg.Wait()
	compared := 0
	for _, a := range e.b.auditSince(n) {
		if a.Action == "login" && strings.Contains(a.Detail, "wrong password") {
			compared++
		}
	}
	if compared > 3 {
		t.Fatalf("%d passwords were tried in parallel, want at most 3", compared)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "10.9.9.9:1"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Login after parallel guesses = %v, want locked", err)
	}
}

func TestLimiterBounded(t *testing.T) {
	var l limiter
	l.entries = map[lockKey]*lockEntry{}
	p := config.DefaultLockout()
	// One locked entry that must survive eviction of plain counters.
	locked := userLockKey("victim", "10.0.0.1")
	for range p.Attempts {
		l.begin(locked, t0, p)
		l.fail(locked, t0, p)
	}
	for i := range MaxLockoutEntries + 10 {
		k := userLockKey("u"+strconv.Itoa(i), "10.0.0.2")
		l.begin(k, t0.Add(time.Duration(i)), p)
		l.fail(k, t0.Add(time.Duration(i)), p)
	}
	if n := l.len(); n > MaxLockoutEntries {
		t.Fatalf("%d entries, want at most %d", n, MaxLockoutEntries)
	}
	if _, isLocked := l.begin(locked, t0.Add(time.Second), p); !isLocked {
		t.Fatal("eviction dropped an active lockout before plain counters")
	}
	// Once their time has passed, entries are dropped as expired when room
	// is needed, the lockout included.
	later := t0.Add(time.Hour)
	l.mu.Lock()
	l.evict(later, p)
	l.mu.Unlock()
	if n := l.len(); n != 0 {
		t.Fatalf("%d entries left after evicting expired ones", n)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e := newEnv(t)
		_, c, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		// Activity within the idle timeout keeps the session.
		for range 3 {
			e.clk.Advance(899 * time.Second)
			if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c)); err != nil {
				t.Fatalf("active session refused: %v", err)
			}
		}
		e.clk.Advance(901 * time.Second)
		if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c)); !errors.Is(err, ErrSessionExpired) {
			t.Fatalf("idle session = %v, want ErrSessionExpired", err)
		}
		if e.s.sessionCount() != 0 {
			t.Fatal("expired session still kept")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		e := newEnv(t)
		_, c, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		var elapsed time.Duration
		for elapsed+600*time.Second <= 43200*time.Second {
			e.clk.Advance(600 * time.Second)
			elapsed += 600 * time.Second
			if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c)); err != nil {
				t.Fatalf("session refused after %v: %v", elapsed, err)
			}
		}
		e.clk.Advance(600 * time.Second)
		if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c)); !errors.Is(err, ErrSessionExpired) {
			t.Fatalf("session past SessionMax = %v, want ErrSessionExpired", err)
		}
	})
}

func TestSessionRevocation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *env, p Principal)
	}{
		{"logout", func(e *env, p Principal) { e.s.Logout(p.SessionID) }}, // ends only that session
		{"own password change", func(e *env, p Principal) {
			if err := e.s.SetPassword(p, "10.0.0.1", "alice", pw("alice"), "a-new-password-1"); err != nil {
				panic(err)
			}
		}},
		{"admin sets password", func(e *env, p Principal) {
			if err := e.s.SetPassword(e.admin, "10.0.0.1", "alice", "", "a-new-password-1"); err != nil {
				panic(err)
			}
		}},
		{"console reset", func(e *env, p Principal) {
			if _, err := e.s.ResetPassword("alice", ""); err != nil {
				panic(err)
			}
		}},
		{"password changed by another process", func(e *env, p Principal) {
			u, _ := e.b.User("alice")
			e.clk.Advance(time.Second)
			u.PasswordChanged = e.clk.Now()
			e.b.PutUser(u)
		}},
		{"user deleted", func(e *env, p Principal) {
			if err := e.s.DeleteUser(e.admin, "10.0.0.1", "alice"); err != nil {
				panic(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUser(t, "alice", config.RoleOperator)
			p, c, err := e.s.Login("alice", pw("alice"), "10.0.0.1:1")
			if err != nil {
				t.Fatal(err)
			}
			// A second session of the same user must go too.
			_, c2, err := e.s.Login("alice", pw("alice"), "10.0.0.1:1")
			if err != nil {
				t.Fatal(err)
			}
			tt.revoke(e, p)
			revoked := []*http.Cookie{c, c2}
			if tt.name == "logout" {
				if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c2)); err != nil {
					t.Fatalf("logout ended another session: %v", err)
				}
				revoked = revoked[:1]
			}
			for _, ck := range revoked {
				if _, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), ck)); !errors.Is(err, ErrSessionExpired) {
					t.Fatalf("revoked session = %v, want ErrSessionExpired", err)
				}
			}
		})
	}
}

func TestLogoutAudited(t *testing.T) {
	e := newEnv(t)
	p, _, _ := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
	e.s.Logout(p.SessionID)
	e.s.Logout(p.SessionID)       // twice: ignored
	e.s.Logout("no-such-session") // unknown: ignored
	e.s.Logout(strings.Repeat("x", 1<<20))
	a := wantAudit(t, e.b.auditLog(), "logout", true, "")
	if a.User != config.FirstAdmin {
		t.Errorf("logout audit = %+v", a)
	}
}

func TestSessionRoleFollowsUser(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", config.RoleAdmin)
	_, c, _ := e.s.Login("alice", pw("alice"), "10.0.0.1:1")
	if err := e.s.SetRole(e.admin, "10.0.0.1", "alice", config.RoleReadOnly); err != nil {
		t.Fatal(err)
	}
	p, err := e.s.Authenticate(withCookie(newRequest("GET", "10.0.0.1:1"), c))
	if err != nil || p.Role != config.RoleReadOnly || p.Can(PermWrite) {
		t.Fatalf("after demotion: %+v, %v", p, err)
	}
}

func TestSessionsBounded(t *testing.T) {
	e := newEnv(t)
	first, _ := e.s.newSession(config.FirstAdmin, e.clk.Now())
	for range MaxSessions {
		e.clk.Advance(time.Millisecond)
		e.s.newSession(config.FirstAdmin, e.clk.Now())
	}
	if n := e.s.sessionCount(); n != MaxSessions {
		t.Fatalf("%d sessions, want %d", n, MaxSessions)
	}
	if _, ok := e.s.lookupSession(first, e.clk.Now()); ok {
		t.Fatal("the oldest session was not dropped")
	}
}

// testHandler answers 200 with the principal's user name.
var testHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		http.Error(w, "no principal", http.StatusInternalServerError)
		return
	}
	w.Write([]byte(p.User + " " + p.Method))
})

func serve(s *Service, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.Middleware(testHandler).ServeHTTP(w, r)
	return w
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	p, c, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		basic   bool // Basic credentials instead of the cookie
		want    int
	}{
		{name: "GET without token", method: "GET", want: 200},
		{name: "HEAD without token", method: "HEAD", want: 200},
		{name: "POST without token", method: "POST", want: 403},
		{name: "POST with wrong token", method: "POST", headers: map[string]string{CSRFHeader: "x" + p.CSRFToken[1:]}, want: 403},
		{name: "POST with session ID as token", method: "POST", headers: map[string]string{CSRFHeader: p.SessionID}, want: 403},
		{name: "POST with token", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken}, want: 200},
		{name: "PUT with token", method: "PUT", headers: map[string]string{CSRFHeader: p.CSRFToken}, want: 200},
		{name: "DELETE without token", method: "DELETE", want: 403},
		{name: "PATCH without token", method: "PATCH", want: 403},
		{name: "token and own origin", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Origin": "https://lb.example"}, want: 200},
		{name: "token and own origin with default port", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Origin": "https://LB.example:443"}, want: 200},
		{name: "token and foreign origin", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Origin": "https://evil.example"}, want: 403},
		{name: "token and origin with other port", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Origin": "https://lb.example:8443"}, want: 403},
		{name: "token and null origin", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Origin": "null"}, want: 403},
		{name: "token but cross-site fetch", method: "POST", headers: map[string]string{CSRFHeader: p.CSRFToken, "Sec-Fetch-Site": "cross-site"}, want: 403},
		{name: "GET with foreign origin", method: "GET", headers: map[string]string{"Origin": "https://evil.example"}, want: 200},
		{name: "basic POST, no origin", method: "POST", basic: true, want: 200},
		{name: "basic POST, foreign origin", method: "POST", basic: true, headers: map[string]string{"Origin": "https://evil.example"}, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(tt.method, "10.0.0.1:1")
			if tt.basic {
				r.SetBasicAuth(config.FirstAdmin, adminPW)
			} else {
				withCookie(r, c)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := serve(e.s, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			if tt.want == 403 {
				var body struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != 403 || body.Error == "" {
					t.Fatalf("body %s: %v", w.Body, err)
				}
			}
		})
	}
}

func TestMiddlewareErrors(t *testing.T) {
	e := newEnv(t)
	type body struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	check := func(t *testing.T, w *httptest.ResponseRecorder, status int) body {
		t.Helper()
		if w.Code != status {
			t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		var b body
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Status != status || b.Error == "" {
			t.Fatalf("body %s: %v", w.Body, err)
		}
		return b
	}
	t.Run("no credentials", func(t *testing.T) {
		w := serve(e.s, newRequest("GET", "10.0.0.1:1"))
		check(t, w, 401)
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="Fulcrum"`) {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	})
	t.Run("stale cookie", func(t *testing.T) {
		r := withCookie(newRequest("GET", "10.0.0.1:1"), &http.Cookie{Name: SessionCookie, Value: "stale"})
		w := serve(e.s, r)
		check(t, w, 401)
		if got := w.Header().Get("WWW-Authenticate"); got != "" {
			t.Errorf("stale session got a Basic challenge %q", got)
		}
	})
	t.Run("stale cookie with valid basic", func(t *testing.T) {
		r := withCookie(newRequest("GET", "10.0.0.1:1"), &http.Cookie{Name: SessionCookie, Value: "stale"})
		r.SetBasicAuth(config.FirstAdmin, adminPW)
		if w := serve(e.s, r); w.Code != 200 || w.Body.String() != "bal basic" {
			t.Fatalf("status %d body %s", w.Code, w.Body)
		}
	})
	t.Run("backend down", func(t *testing.T) {
		e := newEnv(t)
		e.b.failUsers = errors.New("disk on fire")
		r := newRequest("GET", "10.0.0.1:1")
		r.SetBasicAuth(config.FirstAdmin, adminPW)
		w := serve(e.s, r)
		b := check(t, w, 500)
		if strings.Contains(b.Error, "fire") {
			t.Errorf("internal error leaked: %q", b.Error)
		}
		// The attempt did not count against the user.
		e.b.failUsers = nil
		for range 2 {
			e.s.Login(config.FirstAdmin, "wrong-password", "10.0.0.1:1")
		}
		if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1"); err != nil {
			t.Fatalf("Login = %v", err)
		}
	})
}

func TestLockoutViaBasicAuth(t *testing.T) {
	e := newEnv(t)
	basic := func(pw, remote string) *httptest.ResponseRecorder {
		r := newRequest("GET", remote)
		r.SetBasicAuth(config.FirstAdmin, pw)
		return serve(e.s, r)
	}
	n := len(e.b.auditLog())
	for i := range 3 {
		if w := basic("wrong-password", "10.0.0.5:1"); w.Code != 401 {
			t.Fatalf("attempt %d: status %d", i+1, w.Code)
		}
	}
	entries := e.b.auditSince(n)
	a := wantAudit(t, entries, "login", false, "wrong password (method basic)")
	if a.Source != "api" {
		t.Errorf("source %q, want api", a.Source)
	}
	wantAudit(t, entries, "lockout", true, "")
	w := basic(adminPW, "10.0.0.5:1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "600" {
		t.Fatalf("locked: status %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Basic auth and the login form share the counter.
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.5:9"); !errors.Is(err, ErrLocked) {
		t.Fatalf("Login = %v, want locked", err)
	}
	if w := basic(adminPW, "10.0.0.6:1"); w.Code != 200 {
		t.Fatalf("other source: status %d", w.Code)
	}
}

func TestBasicAndBearer(t *testing.T) {
	e := newEnv(t)
	ro := e.addUser(t, "reader", config.RoleReadOnly)
	key, secret, err := e.s.CreateAPIKey(ro, "10.0.0.1:1", "", "monitoring")
	if err != nil {
		t.Fatal(err)
	}
	if key.Hash != "" || key.User != "reader" || !strings.HasPrefix(secret, APIKeyPrefix+key.ID+"_") || len(secret) != 3+16+1+43 {
		t.Fatalf("key %+v secret %q", key, secret)
	}
	tests := []struct {
		name     string
		auth     string
		wantUser string
		wantRole string
		method   string
		wantErr  error
	}{
		{name: "basic", auth: "basic", wantUser: "bal", wantRole: config.RoleAdmin, method: MethodBasic},
		{name: "bearer", auth: "Bearer " + secret, wantUser: "reader", wantRole: config.RoleReadOnly, method: MethodAPIKey},
		{name: "bearer lower-case scheme", auth: "bearer " + secret, wantUser: "reader", wantRole: config.RoleReadOnly, method: MethodAPIKey},
		{name: "bearer wrong secret", auth: "Bearer " + secret[:len(secret)-2] + "AA", wantErr: ErrBadCredentials},
		{name: "bearer unknown id", auth: "Bearer fk_0123456789abcdef_" + strings.Repeat("A", 43), wantErr: ErrBadCredentials},
		{name: "bearer garbage", auth: "Bearer %%%", wantErr: ErrBadCredentials},
		{name: "bearer empty", auth: "Bearer", wantErr: ErrBadCredentials},
		{name: "basic malformed", auth: "Basic !!!notbase64", wantErr: ErrBadCredentials},
		{name: "unknown scheme", auth: "Digest foo", wantErr: ErrBadCredentials},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("GET", "10.2.0."+strconv.Itoa(i+1)+":1")
			if tt.auth == "basic" {
				r.SetBasicAuth(config.FirstAdmin, adminPW)
			} else {
				r.Header.Set("Authorization", tt.auth)
			}
			p, err := e.s.Authenticate(r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.User != tt.wantUser || p.Role != tt.wantRole || p.Method != tt.method {
				t.Fatalf("principal %+v", p)
			}
			if tt.method == MethodAPIKey && p.KeyID != key.ID {
				t.Fatalf("KeyID %q, want %q", p.KeyID, key.ID)
			}
		})
	}
	t.Run("two Authorization headers", func(t *testing.T) {
		r := newRequest("GET", "10.3.0.1:1")
		r.Header.Add("Authorization", "Bearer "+secret)
		r.Header.Add("Authorization", "Bearer "+secret)
		if _, err := e.s.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("audit of a bad key names its owner", func(t *testing.T) {
		n := len(e.b.auditLog())
		r := newRequest("GET", "10.3.0.2:1")
		r.Header.Set("Authorization", "Bearer "+secret+"x")
		e.s.Authenticate(r)
		a := wantAudit(t, e.b.auditSince(n), "login", false, "invalid API key "+key.ID)
		if a.User != "reader" || a.Source != "api" {
			t.Fatalf("audit %+v", a)
		}
	})
	t.Run("last used", func(t *testing.T) {
		r := newRequest("GET", "10.3.0.3:1")
		r.Header.Set("Authorization", "Bearer "+secret)
		if _, err := e.s.Authenticate(r); err != nil {
			t.Fatal(err)
		}
		ks, _ := e.b.APIKeys()
		first := ks[0].LastUsed
		if first.IsZero() {
			t.Fatal("LastUsed not set")
		}
		e.clk.Advance(10 * time.Second)
		e.s.Authenticate(r)
		if ks, _ := e.b.APIKeys(); !ks[0].LastUsed.Equal(first) {
			t.Fatal("LastUsed written again within a minute")
		}
		e.clk.Advance(time.Minute)
		e.s.Authenticate(r)
		if ks, _ := e.b.APIKeys(); !ks[0].LastUsed.Equal(e.clk.Now()) {
			t.Fatal("LastUsed not updated after a minute")
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if err := e.s.RevokeAPIKey(ro, "10.0.0.1:1", key.ID); err != nil {
			t.Fatal(err)
		}
		r := newRequest("GET", "10.3.0.4:1")
		r.Header.Set("Authorization", "Bearer "+secret)
		if _, err := e.s.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("revoked key: %v", err)
		}
		wantAudit(t, e.b.auditLog(), "apikey.revoke", true, key.ID)
	})
}

func TestAPIKeyLockout(t *testing.T) {
	e := newEnv(t)
	_, secret, err := e.s.CreateAPIKey(e.admin, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok, remote string) *httptest.ResponseRecorder {
		r := newRequest("GET", remote)
		r.Header.Set("Authorization", "Bearer "+tok)
		return serve(e.s, r)
	}
	n := len(e.b.auditLog())
	for i := range 3 {
		if w := bearer("fk_guess"+strconv.Itoa(i), "10.7.0.1:1"); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	wantAudit(t, e.b.auditSince(n), "lockout", true, "invalid API keys")
	if w := bearer(secret, "10.7.0.1:2"); w.Code != 429 {
		t.Fatalf("valid key from a locked source: %d", w.Code)
	}
	if w := bearer(secret, "10.7.0.2:1"); w.Code != 200 {
		t.Fatalf("valid key from another source: %d", w.Code)
	}
	e.clk.Advance(600 * time.Second)
	if w := bearer(secret, "10.7.0.1:2"); w.Code != 200 {
		t.Fatalf("after the cool-down: %d", w.Code)
	}
}

func TestAPIKeyCap(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for range MaxAPIKeysPerUser + 1 {
		e.clk.Advance(time.Second)
		k, _, err := e.s.CreateAPIKey(e.admin, "10.0.0.1:1", "", "k")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	keys, err := e.s.APIKeys(config.FirstAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != MaxAPIKeysPerUser {
		t.Fatalf("%d keys, want %d", len(keys), MaxAPIKeysPerUser)
	}
	for i, k := range keys {
		if k.ID != ids[i+1] || k.Hash != "" {
			t.Fatalf("keys[%d] = %+v, want ID %s without hash", i, k, ids[i+1])
		}
	}
	wantAudit(t, e.b.auditLog(), "apikey.expire", true, ids[0])
	// Another user's keys are not counted.
	bob := e.addUser(t, "bob", config.RoleOperator)
	if _, _, err := e.s.CreateAPIKey(bob, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if ks, _ := e.s.APIKeys(config.FirstAdmin); len(ks) != MaxAPIKeysPerUser {
		t.Fatalf("bal has %d keys", len(ks))
	}
	if ks, _ := e.s.APIKeys(""); len(ks) != MaxAPIKeysPerUser+1 {
		t.Fatalf("all: %d keys", len(ks))
	}
}

func TestAPIKeyValidation(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{strings.Repeat("é", 129), "line\nbreak", "bad\xffutf8"} {
		if _, _, err := e.s.CreateAPIKey(e.admin, "", "", d); err == nil {
			t.Errorf("description %q accepted", d)
		} else if _, ok := config.IsErrors(err); !ok {
			t.Errorf("description %q: %v holds no config.Errors", d, err)
		}
	}
	if _, _, err := e.s.CreateAPIKey(e.admin, "", strings.Repeat("é", 128), ""); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("key for a missing user: %v", err)
	}
	if err := e.s.RevokeAPIKey(e.admin, "", "nope"); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("revoke unknown key: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	perms := []Permission{PermRead, PermReadSecrets, PermOperate, PermWrite, PermUsers}
	want := map[string][]bool{
		config.RoleAdmin:    {true, true, true, true, true},
		config.RoleOperator: {true, false, true, false, false},
		config.RoleReadOnly: {true, false, false, false, false},
		"":                  {false, false, false, false, false},
		"root":              {false, false, false, false, false},
	}
	for role, ws := range want {
		for i, perm := range perms {
			if got := (Principal{User: "x", Role: role}).Can(perm); got != ws[i] {
				t.Errorf("%q.Can(%v) = %v, want %v", role, perm, got, ws[i])
			}
		}
		if (Principal{Role: role}).Can(Permission(0)) || (Principal{Role: role}).Can(Permission(99)) {
			t.Errorf("%q grants an unknown permission", role)
		}
	}
}

func TestRoleChecksInService(t *testing.T) {
	e := newEnv(t)
	op := e.addUser(t, "op", config.RoleOperator)
	ro := e.addUser(t, "ro", config.RoleReadOnly)
	_, adminKeySecret, _ := e.s.CreateAPIKey(e.admin, "", "", "")
	_ = adminKeySecret
	adminKeys, _ := e.s.APIKeys(config.FirstAdmin)

	n := len(e.b.auditLog())
	fieldErr := errors.New("config.Errors") // marker: want validation errors
	tests := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"operator adds user", func() error { return e.s.AddUser(op, "", "eve", "admin", "eve-password-1") }, ErrForbidden},
		{"operator sets role", func() error { return e.s.SetRole(op, "", "op", "admin") }, ErrForbidden},
		{"operator deletes user", func() error { return e.s.DeleteUser(op, "", "ro") }, ErrForbidden},
		{"read-only sets other's password", func() error { return e.s.SetPassword(ro, "", "op", "", "new-password-123") }, ErrForbidden},
		{"read-only own password without old", func() error { return e.s.SetPassword(ro, "", "ro", "", "new-password-123") }, ErrWrongPassword},
		{"read-only own password with wrong old", func() error { return e.s.SetPassword(ro, "", "ro", "nope", "new-password-123") }, ErrWrongPassword},
		{"read-only own password too short", func() error { return e.s.SetPassword(ro, "", "ro", pw("ro"), "short") }, fieldErr},
		{"read-only own password", func() error { return e.s.SetPassword(ro, "", "ro", pw("ro"), "new-password-123") }, nil},
		{"read-only creates own key", func() error { _, _, err := e.s.CreateAPIKey(ro, "", "", "mine"); return err }, nil},
		{"read-only creates other's key", func() error { _, _, err := e.s.CreateAPIKey(ro, "", "op", ""); return err }, ErrForbidden},
		{"operator revokes admin's key", func() error { return e.s.RevokeAPIKey(op, "", adminKeys[0].ID) }, ErrForbidden},
		{"admin creates key for operator", func() error { _, _, err := e.s.CreateAPIKey(e.admin, "", "op", ""); return err }, nil},
		{"zero principal adds user", func() error { return e.s.AddUser(Principal{}, "", "eve", "", "eve-password-1") }, ErrForbidden},
		{"zero principal sets empty user's password", func() error { return e.s.SetPassword(Principal{}, "", "", "", "new-password-123") }, ErrForbidden},
		{"admin adds duplicate", func() error { return e.s.AddUser(e.admin, "", "op", "", "op-password-123") }, ErrUserExists},
		{"admin adds bad name", func() error { return e.s.AddUser(e.admin, "", "Bad Name", "", "long-enough-pw") }, fieldErr},
		{"admin adds bad role", func() error { return e.s.AddUser(e.admin, "", "carol", "root", "long-enough-pw") }, fieldErr},
		{"admin sets bad role", func() error { return e.s.SetRole(e.admin, "", "op", "root") }, fieldErr},
		{"admin sets role of missing user", func() error { return e.s.SetRole(e.admin, "", "ghost", "operator") }, ErrNoSuchUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			switch {
			case tt.wantErr == fieldErr:
				if _, ok := config.IsErrors(err); !ok {
					t.Fatalf("err = %v, want config.Errors", err)
				}
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			}
		})
	}
	// Every attempt, allowed or not, is audited.
	entries := e.b.auditSince(n)
	if len(entries) < len(tests) {
		t.Fatalf("%d audit entries for %d actions:\n%s", len(entries), len(tests), dumpAudit(entries))
	}
	a := wantAudit(t, entries, "user.add", false, "permission denied")
	if a.User != "op" {
		t.Errorf("audit %+v", a)
	}
	wantAudit(t, entries, "user.password", true, `"ro"`)
	if u, _ := e.b.Users(); len(u) != 3 {
		t.Fatalf("users: %+v", u)
	}
}

func TestWrongOldPasswordCountsTowardLockout(t *testing.T) {
	e := newEnv(t)
	ro := e.addUser(t, "ro", config.RoleReadOnly)
	for range 3 {
		e.s.SetPassword(ro, "10.0.0.1:5", "ro", "guess-guess", "new-password-123")
	}
	if err := e.s.SetPassword(ro, "10.0.0.1:5", "ro", pw("ro"), "new-password-123"); !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want locked", err)
	}
}

func TestAdminChangesOwnPassword(t *testing.T) {
	e := newEnv(t)
	if err := e.s.SetPassword(e.admin, "", config.FirstAdmin, "", "another-password"); err != nil {
		t.Fatalf("admin without old password: %v", err)
	}
	if err := e.s.SetPassword(e.admin, "", config.FirstAdmin, "wrong-old-password", "third-password-x"); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("admin with a wrong old password: %v", err)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, "another-password", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
}

func TestLastAdmin(t *testing.T) {
	e := newEnv(t)
	n := len(e.b.auditLog())
	if err := e.s.SetRole(e.admin, "", config.FirstAdmin, config.RoleOperator); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demote last admin: %v", err)
	}
	if err := e.s.DeleteUser(e.admin, "", config.FirstAdmin); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("delete last admin: %v", err)
	}
	wantAudit(t, e.b.auditSince(n), "user.role", false, "last admin")
	wantAudit(t, e.b.auditSince(n), "user.delete", false, "last admin")

	second := e.addUser(t, "second", config.RoleAdmin)
	if err := e.s.SetRole(second, "", config.FirstAdmin, config.RoleOperator); err != nil {
		t.Fatalf("demote with another admin left: %v", err)
	}
	if err := e.s.DeleteUser(second, "", "second"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("delete self as last admin: %v", err)
	}
	if err := e.s.SetRole(second, "", config.FirstAdmin, config.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	// Deleting a user takes their keys and sessions.
	_, secret, _ := e.s.CreateAPIKey(second, "", "", "")
	_, c, _ := e.s.Login("second", pw("second"), "10.0.0.1")
	if err := e.s.DeleteUser(e.admin, "10.0.0.1:1", "second"); err != nil {
		t.Fatal(err)
	}
	if ks, _ := e.s.APIKeys("second"); len(ks) != 0 {
		t.Fatalf("keys of deleted user: %+v", ks)
	}
	r := withCookie(newRequest("GET", "10.0.0.1:1"), c)
	if _, err := e.s.Authenticate(r); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("session of deleted user: %v", err)
	}
	r = newRequest("GET", "10.0.0.9:1")
	r.Header.Set("Authorization", "Bearer "+secret)
	if _, err := e.s.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("key of deleted user: %v", err)
	}
	wantAudit(t, e.b.auditLog(), "user.delete", true, `"second"`)
	if err := e.s.DeleteUser(e.admin, "", "second"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("delete again: %v", err)
	}
}

func TestUsersHideHashes(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "")
	users, err := e.s.Users()
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[0].Role != config.RoleReadOnly || users[1].Name != config.FirstAdmin {
		t.Fatalf("users %+v", users)
	}
	b, _ := json.Marshal(users)
	if strings.Contains(string(b), "$2") {
		t.Fatalf("hash leaked: %s", b)
	}
}

func TestResetPassword(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.s.Login(config.FirstAdmin, "wrong-password", "10.0.0.1")
	}
	gen, err := e.s.ResetPassword(config.FirstAdmin, "")
	if err != nil || len(gen) < 20 {
		t.Fatalf("ResetPassword = %q, %v", gen, err)
	}
	// The reset also lifts the lockout.
	if _, _, err := e.s.Login(config.FirstAdmin, gen, "10.0.0.1"); err != nil {
		t.Fatalf("Login with the reset password: %v", err)
	}
	if gen, err := e.s.ResetPassword(config.FirstAdmin, "given-password-9"); err != nil || gen != "" {
		t.Fatalf("ResetPassword(given) = %q, %v", gen, err)
	}
	if _, err := e.s.ResetPassword("ghost", ""); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("ResetPassword(ghost) = %v", err)
	}
	if _, err := e.s.ResetPassword(config.FirstAdmin, "short"); err == nil {
		t.Fatal("short password accepted")
	}
	a := wantAudit(t, e.b.auditLog(), "user.password", true, "console reset")
	if a.Source != "cli" {
		t.Errorf("source %q, want cli", a.Source)
	}
}

func TestAuditFailureDoesNotBlock(t *testing.T) {
	e := newEnv(t)
	e.b.failAudit = errors.New("full")
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1"); err != nil {
		t.Fatalf("Login with a failing audit trail: %v", err)
	}
}

func TestPrincipalContext(t *testing.T) {
	if _, ok := PrincipalFrom(t.Context()); ok {
		t.Fatal("principal in an empty context")
	}
	p := Principal{User: "u", Role: config.RoleOperator}
	got, ok := PrincipalFrom(WithPrincipal(t.Context(), p))
	if !ok || got != p {
		t.Fatalf("got %+v, %v", got, ok)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	_, secret, _ := e.s.CreateAPIKey(e.admin, "", "", "")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			remote := "10.4.0." + strconv.Itoa(i+1) + ":1"
			for range 20 {
				p, c, err := e.s.Login(config.FirstAdmin, adminPW, remote)
				if err != nil {
					t.Error(err)
					return
				}
				r := withCookie(newRequest("POST", remote), c)
				r.Header.Set(CSRFHeader, p.CSRFToken)
				if _, err := e.s.Authenticate(r); err != nil {
					t.Error(err)
				}
				r = newRequest("GET", remote)
				r.Header.Set("Authorization", "Bearer "+secret)
				if _, err := e.s.Authenticate(r); err != nil {
					t.Error(err)
				}
				e.s.Logout(p.SessionID)
				e.s.Users()
				e.clk.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// TestWithStore runs the main paths against the real store.
func TestWithStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st, Options{BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	gen, err := s.Bootstrap("")
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := s.Login(config.FirstAdmin, gen, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(admin, "10.0.0.1:1", "ops", config.RoleOperator, "ops-password-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(admin, "", "ops", config.RoleOperator, "ops-password-1"); !errors.Is(err, ErrUserExists) {
		t.Fatalf("duplicate: %v", err)
	}
	key, secret, err := s.CreateAPIKey(admin, "", "ops", "ci")
	if err != nil {
		t.Fatal(err)
	}
	r := newRequest("GET", "10.0.0.2:1")
	r.Header.Set("Authorization", "Bearer "+secret)
	p, err := s.Authenticate(r)
	if err != nil || p.User != "ops" || p.KeyID != key.ID {
		t.Fatalf("bearer: %+v %v", p, err)
	}
	if _, _, err := s.Login("nobody", "x", "10.0.0.3"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := s.DeleteUser(admin, "", "ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(admin, "", "ops"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := s.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("key of deleted user: %v", err)
	}
	entries, err := st.Audit(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantAudit(t, entries, "user.delete", true, "ops")
	wantAudit(t, entries, "login", false, "unknown user")
}

func TestLockedRefusalsDoNotFloodAudit(t *testing.T) {
	e := newEnv(t)
	const src = "10.8.0.1:1"
	for range 3 {
		e.s.Login(config.FirstAdmin, "wrong-password", src)
	}
	count := func() int {
		n := 0
		for _, a := range e.b.auditLog() {
			if strings.Contains(a.Detail, "login refused: locked") {
				n++
			}
		}
		return n
	}
	for range 100 {
		if _, _, err := e.s.Login(config.FirstAdmin, adminPW, src); !errors.Is(err, ErrLocked) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := count(); n != AuditImmediate {
		t.Fatalf("%d refusal entries for 100 refusals within a minute, want %d", n, AuditImmediate)
	}
	// The rest of the minute's refusals make one entry when it ends.
	e.clk.Advance(time.Minute)
	e.s.Login(config.FirstAdmin, adminPW, src)
	if n := count(); n != AuditImmediate+1 {
		t.Fatalf("%d refusal entries, want %d", n, AuditImmediate+1)
	}
	a := wantAudit(t, e.b.auditLog(), "login", false, fmt.Sprintf("login refused: locked (method password): %d more between", 100-AuditImmediate))
	if a.RemoteAddr != "10.8.0.1" || a.User != config.FirstAdmin || !strings.Contains(a.Detail, "from 1 source: 10.8.0.1") {
		t.Errorf("aggregated entry %+v", a)
	}
	// Refusals that keep coming are gathered from the first.
	e.s.FlushAudit()
	if n := count(); n != AuditImmediate+2 {
		t.Fatalf("%d refusal entries after a flush, want %d", n, AuditImmediate+2)
	}
	wantAudit(t, e.b.auditLog(), "login", false, "locked (method password): 1 more between")
}

func TestAuditBoundsAttackerText(t *testing.T) {
	e := newEnv(t)
	r := newRequest("GET", "10.0.0.1:1")
	r.SetBasicAuth(strings.Repeat("é", 1<<16), "x")
	if _, err := e.s.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	log := e.b.auditLog()
	a := log[len(log)-1]
	if len(a.User) > 64 || !utf8.ValidString(a.User) || !strings.HasSuffix(a.User, "...") {
		t.Fatalf("audit user %q not bounded", a.User)
	}
}

func TestPrincipalJSONHidesSessionID(t *testing.T) {
	e := newEnv(t)
	p, _, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), p.SessionID) || !strings.Contains(string(b), p.CSRFToken) {
		t.Fatalf("JSON %s", b)
	}
}

func TestAuthenticateAPIKey(t *testing.T) {
	e := newEnv(t)
	k, secret, _ := e.s.CreateAPIKey(e.admin, "", "", "")
	if p, err := e.s.AuthenticateAPIKey(secret, "10.0.0.1:1"); err != nil || p.KeyID != k.ID || p.Method != MethodAPIKey {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := e.s.AuthenticateAPIKey(secret+"x", "10.0.0.1:1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
}

// TestLockoutSourceAcrossAccounts checks that guessing many user names
// from one address locks the address out (each guess costs a bcrypt
// comparison), that another address is unaffected, and that a success of
// the attacker's own account does not reset the budget.
func TestLockoutSourceAcrossAccounts(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "mallory", config.RoleReadOnly)
	const attacker, other = "203.0.113.9:1111", "203.0.113.10:2222"
	budget := config.DefaultLockout().Attempts * sourceBudgetFactor
	for i := range budget {
		if i == budget/2 {
			if _, _, err := e.s.Login("mallory", pw("mallory"), attacker); err != nil {
				t.Fatalf("own account: %v", err)
			}
		}
		if _, _, err := e.s.Login(fmt.Sprintf("guess%d", i), "wrong-password", attacker); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d: %v, want ErrBadCredentials", i, err)
		}
	}
	wantAudit(t, e.b.auditLog(), "lockout", true, "source locked until")
	var le *LockedError
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, attacker); !errors.As(err, &le) {
		t.Fatalf("after %d guesses from one source: %v, want locked", budget, err)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, other); err != nil {
		t.Fatalf("another source: %v", err)
	}
	e.clk.Advance(601 * time.Second)
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, attacker); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
}
