package admin

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// FuzzAuthenticate feeds arbitrary Authorization headers, session cookies,
// CSRF tokens, origins, methods and remote addresses to Authenticate and
// Middleware: they must not panic, and whatever they accept must be a real
// principal.
func FuzzAuthenticate(f *testing.F) {
	b := newMemBackend()
	s := New(b, Options{BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler),
		// A high budget keeps the fuzzer from locking itself out of the
		// interesting paths.
		Policy: func() config.Lockout { return config.Lockout{Attempts: 100, CoolDown: 1} }})
	if _, err := s.Bootstrap(adminPW); err != nil {
		f.Fatal(err)
	}
	admin := Principal{User: config.FirstAdmin, Role: config.RoleAdmin}
	_, secret, err := s.CreateAPIKey(admin, "", "", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	p, _, err := s.Login(config.FirstAdmin, adminPW, "127.0.0.1:1")
	if err != nil {
		f.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(config.FirstAdmin+":"+adminPW))

	f.Add("GET", "", "", "", "", "10.0.0.1:1")
	f.Add("GET", basic, "", "", "", "10.0.0.1:1")
	f.Add("POST", "Bearer "+secret, "", "", "https://lb.example", "10.0.0.1:1")
	f.Add("POST", "", p.SessionID, p.CSRFToken, "https://lb.example", "10.0.0.1:1")
	f.Add("DELETE", "", p.SessionID, "", "null", "[::1]:1")
	f.Add("GET", "Bearer fk_", "", "", "", "junk")
	f.Add("GET", "Bearer fk_0123456789abcdef_", "", "", "", "")
	f.Add("GET", "Basic Og==", "x", "", "", "1.2.3.4")
	f.Add("GET", "Basic "+base64.StdEncoding.EncodeToString([]byte("\x00\xff:\xfe")), "", "", "", "[fe80::1%eth0]:9")
	f.Add("PUT", "bearer  \t ", "\x00", "\x00", "http://[::1", "[")
	f.Fuzz(func(t *testing.T, method, auth, cookie, csrf, origin, remote string) {
		if method == "" || !validToken(method) {
			method = "GET"
		}
		r := httptest.NewRequest("GET", "https://lb.example/api", nil)
		r.Method = method
		r.RemoteAddr = remote
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if cookie != "" {
			r.Header.Set("Cookie", SessionCookie+"="+cookie)
		}
		if csrf != "" {
			r.Header.Set(CSRFHeader, csrf)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		got, err := s.Authenticate(r)
		if err == nil {
			if got.User != config.FirstAdmin || got.Role != config.RoleAdmin {
				t.Fatalf("accepted as %+v", got)
			}
			switch got.Method {
			case MethodSession, MethodBasic, MethodAPIKey:
			default:
				t.Fatalf("unknown method in %+v", got)
			}
		} else if !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrBadCredentials) &&
			!errors.Is(err, ErrSessionExpired) && !errors.Is(err, ErrCSRF) && !errors.Is(err, ErrLocked) {
			t.Fatalf("unexpected error %v", err)
		}
		w := httptest.NewRecorder()
		s.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %q", auth)
		}
	})
}

// validToken reports whether s is an HTTP token, as a method must be.
func validToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ',' || c == '/' || c == ':' || c == ';' ||
			c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' ||
			c == '{' || c == '}' || c == '"' {
			return false
		}
	}
	return true
}
