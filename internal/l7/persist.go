package l7

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// Persisted adapts a persist.Persister to Persistence. For the modes that
// read the HTTP request (persist.NeedsHTTP) it builds the *http.Request the
// Persister reads from the proxy's own parse, which costs a few
// allocations per request; the other modes cost none.
func Persisted(p *persist.Persister) Persistence {
	return &persisted{p: p, http: persist.NeedsHTTP(p.Settings().Mode)}
}

type persisted struct {
	p    *persist.Persister
	http bool
}

// Choose implements Persistence. The Picker is the one the Persister was
// built over, so next is not used.
func (a *persisted) Choose(_ balance.Picker, req *balance.Request, r RequestInfo) (*backend.Server, func(balance.Outcome), error) {
	in := persist.Input{Request: *req}
	if a.http {
		in.HTTP = asHTTPRequest(r)
	}
	return a.p.PickInput(&in)
}

// Respond implements Persistence.
func (a *persisted) Respond(srv *backend.Server, r RequestInfo, resp Fields, add func(name, value string)) {
	if !a.http {
		return
	}
	in := persist.Input{HTTP: asHTTPRequest(r)}
	in.Request.Client = r.Client()
	h := http.Header{}
	resp.VisitFields(func(name, value []byte) {
		if strings.EqualFold(string(name), "Set-Cookie") {
			h.Add("Set-Cookie", string(value))
		}
	})
	if v := a.p.OnResponse(&in, srv, h); v != "" {
		add("Set-Cookie", v)
	}
}

// asHTTPRequest builds the parts of an *http.Request that persistence
// reads: Host, URL (path and query), the header fields and whether the
// client connection is TLS.
func asHTTPRequest(r RequestInfo) *http.Request {
	hr := &http.Request{
		Host:   string(r.Host()),
		URL:    &url.URL{Path: string(r.Path()), RawQuery: string(r.Query())},
		Header: http.Header{},
	}
	r.VisitFields(func(name, value []byte) {
		if !strings.EqualFold(string(name), "Host") {
			hr.Header.Add(string(name), string(value))
		}
	})
	if r.IsTLS() {
		hr.TLS = &tlsStateMarker
	}
	return hr
}
