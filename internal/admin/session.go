package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "fulcrum_session"

// CSRFHeader is the request header that must carry a session's CSRF token
// on state-changing requests authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// maxTokenLen bounds session IDs and API-key secrets accepted for lookup.
const maxTokenLen = 256

type session struct {
	user     string
	created  time.Time
	lastSeen time.Time
	csrf     string
}

// sessionTable holds the browser sessions, keyed by the SHA-256 of their
// IDs so that the map itself holds no usable credential.
type sessionTable struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// randomToken returns n random bytes encoded as unpadded base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *session) expired(now time.Time, p config.Lockout) bool {
	return now.Sub(s.lastSeen) > time.Duration(p.SessionIdle)*time.Second ||
		now.Sub(s.created) > time.Duration(p.SessionMax)*time.Second
}

// newSession creates a session for user and returns its ID and CSRF token.
func (s *Service) newSession(user string, now time.Time) (id, csrf string) {
	id, csrf = randomToken(32), randomToken(32)
	p := s.policy()
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= MaxSessions {
		for k, ss := range t.m {
			if ss.expired(now, p) {
				delete(t.m, k)
			}
		}
		for len(t.m) >= MaxSessions {
			var oldest [32]byte
			var first *session
			for k, ss := range t.m {
				if first == nil || ss.created.Before(first.created) {
					oldest, first = k, ss
				}
			}
			delete(t.m, oldest)
		}
	}
	t.m[sessionKey(id)] = &session{user: user, created: now, lastSeen: now, csrf: csrf}
	return id, csrf
}

// lookupSession returns a copy of the live session with that ID, dropping
// it if it has expired.
func (s *Service) lookupSession(id string, now time.Time) (session, bool) {
	if id == "" || len(id) > maxTokenLen {
		return session{}, false
	}
	k := sessionKey(id)
	p := s.policy()
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	ss, ok := t.m[k]
	if !ok {
		return session{}, false
	}
	if ss.expired(now, p) {
		delete(t.m, k)
		return session{}, false
	}
	return *ss, true
}

// touchSession records activity on a session.
func (s *Service) touchSession(id string, now time.Time) {
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	if ss, ok := t.m[sessionKey(id)]; ok && now.After(ss.lastSeen) {
		ss.lastSeen = now
	}
}

// dropSession deletes one session and returns it.
func (s *Service) dropSession(id string) (session, bool) {
	if len(id) > maxTokenLen {
		return session{}, false
	}
	k := sessionKey(id)
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	ss, ok := t.m[k]
	if !ok {
		return session{}, false
	}
	delete(t.m, k)
	return *ss, true
}

// revokeSessions deletes every session of user and returns how many there
// were.
func (s *Service) revokeSessions(user string) int {
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, ss := range t.m {
		if ss.user == user {
			delete(t.m, k)
			n++
		}
	}
	return n
}

// sessionCount returns the number of sessions kept (for tests).
func (s *Service) sessionCount() int {
	t := &s.sessions
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func sessionCookie(id string) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// ClearCookie returns a cookie that makes the browser forget its session
// cookie; send it with the response to a logout.
func ClearCookie() *http.Cookie {
	c := sessionCookie("")
	c.MaxAge = -1
	return c
}

// Logout ends the session with that ID. Unknown IDs are ignored.
func (s *Service) Logout(sessionID string) {
	ss, ok := s.dropSession(sessionID)
	if !ok {
		return
	}
	s.Audit(Principal{User: ss.user, Method: MethodSession}, "", "logout", "session ended", true)
}
