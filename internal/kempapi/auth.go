package kempapi

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
)

// crossSite reports whether a request was made by a browser on behalf of
// another site. The v1 API changes configuration with GET requests and
// accepts HTTP Basic credentials, which browsers send on their own: a page
// elsewhere could otherwise make a logged-in administrator's browser run
// commands (an <img> pointing at /access/delvs). Modern browsers mark such
// requests with Sec-Fetch-Site; older ones send a foreign Origin on POSTs.
// Programs (curl, SDKs) send neither header.
func crossSite(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return false
	}
	if len(origins) > 1 {
		return true
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return true // includes "null"
	}
	return !strings.EqualFold(stripPort(u.Host, u.Scheme), stripPort(r.Host, u.Scheme))
}

// forgery refuses a request that a browser made on behalf of a page of
// another origin (admin.ForeignOrigin): v1 changes configuration with GET
// requests and both versions take HTTP Basic credentials, which a browser
// sends by itself once it holds them, so a page elsewhere — even one on
// another port of the same host, which Sec-Fetch-Site calls same-site —
// could otherwise make an administrator's browser run commands from an
// <img> or a form. LoadMaster-compatible tools send none of the headers
// this looks at. It returns nil for a request that is not foreign, and
// otherwise LoadMaster's refusal of an unauthorised command, 403
// "Permission Denied", with the reason.
func forgery(r *http.Request) *failure {
	why, foreign := admin.ForeignOrigin(r)
	if !foreign {
		return nil
	}
	return fail(http.StatusForbidden, "Permission Denied: Cross-site request refused: a browser page of another origin may not run this command (%s)", why)
}

func stripPort(h, scheme string) string {
	switch {
	case scheme == "https" && strings.HasSuffix(h, ":443"):
		return strings.TrimSuffix(h, ":443")
	case scheme == "http" && strings.HasSuffix(h, ":80"):
		return strings.TrimSuffix(h, ":80")
	}
	return h
}

// authenticate identifies the caller: an API key (the apikey parameter,
// which wins as on a LoadMaster), a user name and password (v2 apiuser and
// apipass), or the Authorization header (HTTP Basic, or Bearer with an API
// key). Session cookies are not accepted here: a cookie-authenticated GET
// would be a cross-site request forgery waiting to happen.
func (s *Server) authenticate(r *http.Request, req *request) (admin.Principal, *failure) {
	req.creds = map[string]string{}
	for _, name := range credentialParams {
		if v, ok := req.p.get(name); ok && (req.v2 || name == "apikey") {
			req.creds[name] = v
			delete(req.p, name)
		}
	}
	key, user, pass := req.creds["apikey"], req.creds["apiuser"], req.creds["apipass"]
	var p admin.Principal
	var err error
	switch {
	case key != "":
		p, err = s.auth.AuthenticateAPIKey(key, r.RemoteAddr)
	case user != "" || pass != "":
		basic, _ := http.NewRequest(http.MethodGet, "/", nil) // a constant URL always parses
		basic.SetBasicAuth(user, pass)
		basic.RemoteAddr = r.RemoteAddr
		p, err = s.auth.Authenticate(basic)
	default:
		bare := r.Clone(r.Context())
		bare.Header.Del("Cookie")
		p, err = s.auth.Authenticate(bare)
	}
	if err == nil {
		return p, nil
	}
	var locked *admin.LockedError
	switch {
	case errors.As(err, &locked):
		msg := "Too many failed login attempts: try again later"
		if locked.Console {
			msg = "Too many failed login attempts for this account from many addresses: it is locked for logins from new addresses " +
				"until an administrator lifts the lock at the console (fulcrum passwd)"
		}
		return p, &failure{status: http.StatusTooManyRequests, msg: msg, retryAfter: locked.RetryAfter(s.now())}
	case errors.Is(err, admin.ErrNoCredentials), errors.Is(err, admin.ErrBadCredentials):
		return p, &failure{status: http.StatusUnauthorized, msg: "Authorization required", challenge: true}
	case errors.Is(err, admin.ErrCSRF):
		return p, fail(http.StatusForbidden, "Cross-site request refused")
	}
	s.log.Error("kemp api: authentication failed", "err", err, "remote", r.RemoteAddr)
	return p, fail(http.StatusInternalServerError, "Internal error")
}

// errPermission is LoadMaster's refusal of a command the caller's
// permissions do not cover.
var errPermission = &failure{status: http.StatusForbidden, msg: "Permission Denied"}

// retryAfterHeader sets Retry-After for a failure that carries one.
func retryAfterHeader(w http.ResponseWriter, f *failure) {
	if f != nil && f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
	}
	if f != nil && f.challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="LoadMaster API", charset="UTF-8"`)
	}
}
