package admin

import (
	"net/http"
	"net/url"
	"strings"
)

// ForeignOrigin reports whether r was made by a browser on behalf of a page
// of another origin than the one it is addressed to, and if so why. A
// request is foreign when
//
//   - its Sec-Fetch-Site header says anything but "same-origin" or "none"
//     (a page elsewhere, including another port or scheme of the same
//     host, which browsers call "same-site");
//   - its Origin header names another origin, or is "null";
//   - its Referer header names a page of another origin.
//
// The request's own origin is https://Host when it came over TLS (the
// admin plane is HTTPS only) and http://Host otherwise, with the scheme's
// default port dropped. Programs such as curl and the LoadMaster SDKs send
// none of these headers, so their requests are never foreign; browsers
// send Sec-Fetch-Site (all current ones) or at least a Referer with the
// requests a page makes, and send Basic credentials and cookies they hold
// on their own, which is what a forged request relies on.
func ForeignOrigin(r *http.Request) (reason string, foreign bool) {
	if sites := r.Header.Values("Sec-Fetch-Site"); len(sites) > 0 {
		if len(sites) > 1 {
			return "more than one Sec-Fetch-Site header", true
		}
		switch strings.ToLower(strings.TrimSpace(sites[0])) {
		case "same-origin", "none":
		default:
			return "Sec-Fetch-Site: " + bounded(sites[0]), true
		}
	}
	own := requestOrigin(r)
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) > 1 {
			return "more than one Origin header", true
		}
		if o, ok := originOf(origins[0]); !ok || o != own {
			return "Origin: " + bounded(origins[0]), true
		}
	}
	if refs := r.Header.Values("Referer"); len(refs) > 0 {
		if len(refs) > 1 {
			return "more than one Referer header", true
		}
		if o, ok := originOf(refs[0]); !ok || o != own {
			return "Referer from another origin", true
		}
	}
	return "", false
}

// sameOrigin reports whether a browser request comes from the admin
// plane's own pages, or from a program that is not a browser: see
// ForeignOrigin.
func sameOrigin(r *http.Request) bool {
	_, foreign := ForeignOrigin(r)
	return !foreign
}

// requestOrigin returns the origin ("scheme://host[:port]", lower case,
// without the scheme's default port) a request was addressed to.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + normHost(r.Host, scheme)
}

// originOf returns the origin of an Origin or Referer header value, in the
// form of requestOrigin; ok is false for "null", relative references and
// schemes other than http and https.
func originOf(v string) (origin string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	return scheme + "://" + normHost(u.Host, scheme), true
}

// normHost lower-cases a host[:port] and drops the scheme's default port.
func normHost(h, scheme string) string {
	h = strings.ToLower(h)
	switch {
	case scheme == "https" && strings.HasSuffix(h, ":443"):
		h = strings.TrimSuffix(h, ":443")
	case scheme == "http" && strings.HasSuffix(h, ":80"):
		h = strings.TrimSuffix(h, ":80")
	}
	return h
}

// bounded shortens a header value quoted in a reason.
func bounded(v string) string {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return strings.ToValidUTF8(v, "?")
}
