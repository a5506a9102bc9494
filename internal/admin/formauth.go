package admin

import (
	"crypto/subtle"
	"net/http"
)

// SessionPrincipal identifies the caller of r by its session cookie alone,
// for the web UI, which accepts no Basic or API-key credentials. It does no
// CSRF check: a state-changing request must also pass CheckCSRF. Errors are
// ErrNoCredentials when there is no session cookie, ErrSessionExpired when
// the cookie names no live session, or a wrapped backend error.
func (s *Service) SessionPrincipal(r *http.Request) (Principal, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Principal{}, ErrNoCredentials
	}
	return s.sessionAuth(c.Value)
}

// CheckCSRF checks a state-changing request authenticated by the session
// of p: token (from a form field or the X-CSRF-Token header) must equal the
// session's CSRF token, compared in constant time, and the request must be
// same-origin by its Sec-Fetch-Site, Origin and Referer headers (see
// ForeignOrigin; same-site is not enough). It returns nil or ErrCSRF.
func CheckCSRF(r *http.Request, p Principal, token string) error {
	if p.CSRFToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(p.CSRFToken)) != 1 || !sameOrigin(r) {
		return ErrCSRF
	}
	return nil
}
