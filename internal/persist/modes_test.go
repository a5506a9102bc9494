package persist

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// simClient is one simulated client of the every-mode test: what it sends
// and the state it keeps between requests (cookies, TLS session).
type simClient struct {
	k       int
	jar     map[string]string
	session []byte // TLS session ID it resumes
	req     *http.Request
}

// modeCase says how a client of a mode makes its requests and how the
// real server answers.
type modeCase struct {
	mode     string
	settings Settings
	// input builds request j of client c.
	input func(c *simClient, j int) *Input
	// respond is what the real server sends back (may update c).
	respond func(p *Persister, c *simClient, in *Input, srv *backend.Server)
}

// httpInput makes an HTTP request for c from its own address (new port
// each time: a new connection).
func httpInput(c *simClient, j int, target, host string, hdr map[string]string) *Input {
	if c.req == nil {
		r, err := http.NewRequest(http.MethodGet, "http://"+host+target, nil)
		if err != nil {
			panic(err)
		}
		c.req = r
	}
	c.req.Host = host
	for k, v := range hdr {
		c.req.Header.Set(k, v)
	}
	if len(c.jar) > 0 {
		var parts []string
		for k, v := range c.jar {
			parts = append(parts, k+"="+v)
		}
		c.req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	return &Input{Request: reqFor(c.k, j), HTTP: c.req}
}

func reqFor(k, j int) balance.Request {
	return balance.Request{Client: ip(k, uint16(20000+j))}
}

// activeCookie stores the Set-Cookie of OnResponse in the client's jar.
func activeCookie(p *Persister, c *simClient, in *Input, srv *backend.Server) {
	if sc := p.OnResponse(in, srv, http.Header{}); sc != "" {
		ck, err := http.ParseSetCookie(sc)
		if err != nil {
			panic(err)
		}
		c.jar[ck.Name] = ck.Value
	}
}

// serverCookie: the application sets JSESSIONID on its first answer.
func serverCookie(p *Persister, c *simClient, in *Input, srv *backend.Server) {
	h := http.Header{}
	if _, ok := c.jar["JSESSIONID"]; !ok {
		v := fmt.Sprintf("s%d-%s", c.k, srv.Key().Address)
		h.Add("Set-Cookie", "JSESSIONID="+v+"; Path=/; HttpOnly")
		c.jar["JSESSIONID"] = v
	}
	h.Add("Set-Cookie", "other=1")
	p.OnResponse(in, srv, h)
}

func modeCases() []modeCase {
	plain := func(target func(k, j int) string, host func(k int) string, hdr func(k int) map[string]string) func(c *simClient, j int) *Input {
		return func(c *simClient, j int) *Input {
			h := "www.example.com"
			if host != nil {
				h = host(c.k)
			}
			var m map[string]string
			if hdr != nil {
				m = hdr(c.k)
			}
			return httpInput(c, j, target(c.k, j), h, m)
		}
	}
	path := func(k, j int) string { return fmt.Sprintf("/page/%d", j) }
	return []modeCase{
		{mode: ModeSrc, input: func(c *simClient, j int) *Input { return &Input{Request: reqFor(c.k, j)} }},
		{mode: ModeSuper, input: plain(path, nil, func(k int) map[string]string {
			return map[string]string{"User-Agent": "Mozilla/5.0 (X11) Firefox/" + fmt.Sprint(k%40), "Authorization": fmt.Sprintf("Bearer user-%d", k)}
		})},
		{mode: ModeSuperSrc, input: plain(path, nil, func(k int) map[string]string {
			return map[string]string{"User-Agent": "Mozilla/5.0 (Windows) Edge/120"}
		})},
		{mode: ModeCookie, settings: Settings{Name: "JSESSIONID"}, input: plain(path, nil, nil), respond: serverCookie},
		{mode: ModeCookieSrc, settings: Settings{Name: "JSESSIONID"}, input: plain(path, nil, nil), respond: serverCookie},
		{mode: ModeActiveCookie, input: plain(path, nil, nil), respond: activeCookie},
		{mode: ModeActiveCookieSrc, input: plain(path, nil, nil), respond: activeCookie},
		{mode: ModeCookieHash, input: func(c *simClient, j int) *Input {
			c.jar["app"] = fmt.Sprint(c.k)
			c.jar["lang"] = "en"
			return httpInput(c, j, path(c.k, j), "www.example.com", nil)
		}},
		{mode: ModeCookieHashSrc, input: func(c *simClient, j int) *Input {
			if j > 0 { // the first request has no cookie: source IP
				c.jar["app"] = fmt.Sprint(c.k)
			}
			return httpInput(c, j, path(c.k, j), "www.example.com", nil)
		}},
		{mode: ModeURL, input: plain(func(k, j int) string { return fmt.Sprintf("/doc/%d?rev=2", k) }, nil, nil)},
		{mode: ModeQueryHash, settings: Settings{QueryTag: "sid"}, input: plain(func(k, j int) string {
			return fmt.Sprintf("/search?q=%d&sid=%%73%d&page=%d", j, k, j) // %73 = 's'
		}, nil, nil)},
		{mode: ModeHost, input: plain(path, func(k int) string { return fmt.Sprintf("Tenant%d.Example.com", k) }, nil)},
		{mode: ModeHeader, settings: Settings{Name: "x-session"}, input: plain(path, nil, func(k int) map[string]string {
			return map[string]string{"X-Session": fmt.Sprint(k)}
		})},
		{mode: ModeSSL, input: func(c *simClient, j int) *Input {
			in := &Input{Request: reqFor(c.k, j)}
			h, err := ParseHello(clientHello(c.session, "www.example.com"))
			if err != nil {
				panic(err)
			}
			in.TLSSession = h.SessionID
			return in
		}, respond: func(p *Persister, c *simClient, in *Input, srv *backend.Server) {
			if c.session == nil || srv.Key().Address != string(c.session[:8]) {
				// A TLS 1.2 server starts a new session and names it.
				c.session = []byte(fmt.Sprintf("%-8s%024d", srv.Key().Address, c.k))[:32]
			}
			h, err := ParseHello(serverHello(c.session, false))
			if err != nil {
				panic(err)
			}
			if !h.TLS13 {
				p.LearnTLSSession(h.SessionID, srv)
			}
		}},
		{mode: ModeUDPSIP, input: func(c *simClient, j int) *Input {
			msg := fmt.Sprintf("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK%d\r\n"+
				"call-id : %d-a84b4c76e66710@pc33.example.com\r\nCSeq: %d INVITE\r\nContent-Length: 0\r\n\r\n", j, c.k, j+1)
			return &Input{Request: reqFor(c.k*7+j, j), SIP: []byte(msg)} // the source changes: only the Call-ID counts
		}},
	}
}

// TestEveryModeSticks: for every mode, 10,000 distinct clients (500 under
// the race detector or -short) making 20 requests each stay on one real
// server while it is healthy (100%); when one real server fails, only its
// clients move, each to one new server where it then stays (5 more
// requests each); when it recovers, nobody moves back (5 more).
func TestEveryModeSticks(t *testing.T) {
	clients := 10000
	if raceEnabled || testing.Short() {
		clients = 500
	}
	const requests = 20
	cases := modeCases()
	if len(cases) != len(specs)-1 {
		t.Fatalf("%d cases for %d modes (besides none)", len(cases), len(specs)-1)
	}
	for _, mc := range cases {
		t.Run(mc.mode, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			srvs := servers(1, 4, 80)
			s := mc.settings
			s.Mode = mc.mode
			p := build(t, reg.Table(1, 4*clients), srvs, s)
			cs := make([]*simClient, clients)
			for k := range cs {
				cs[k] = &simClient{k: k, jar: map[string]string{}}
			}
			// round runs requests for every client and returns the server of
			// each client, failing if a client used two.
			round := func(phase string, requests int) []int {
				out := make([]int, clients)
				for k, c := range cs {
					out[k] = -1
					for j := range requests {
						in := mc.input(c, j)
						srv, done, err := p.PickInput(in)
						if err != nil {
							t.Fatalf("%s: client %d request %d: %v", phase, k, j, err)
						}
						if mc.respond != nil {
							mc.respond(p, c, in, srv)
						}
						done(balance.Outcome{})
						i := indexOf(srvs, srv)
						if out[k] >= 0 && out[k] != i {
							t.Fatalf("%s: client %d moved from server %d to %d at request %d", phase, k, out[k], i, j)
						}
						out[k] = i
					}
				}
				return out
			}
			first := round("healthy", requests)
			spread := make([]int, len(srvs))
			for _, i := range first {
				spread[i]++
			}
			for i, n := range spread {
				if n == 0 {
					t.Errorf("server %d got no client: %v", i, spread)
				}
			}
			srvs[1].SetHealth(backend.HealthDown)
			failed := round("server 1 down", requests/4)
			for k := range cs {
				switch {
				case first[k] == 1 && failed[k] == 1:
					t.Fatalf("client %d still on the failed server", k)
				case first[k] != 1 && failed[k] != first[k]:
					t.Fatalf("client %d of healthy server %d moved to %d", k, first[k], failed[k])
				}
			}
			srvs[1].SetHealth(backend.HealthUp)
			back := round("server 1 recovered", requests/4)
			for k := range cs {
				if back[k] != failed[k] {
					t.Fatalf("client %d moved from %d to %d after the recovery", k, failed[k], back[k])
				}
			}
		})
	}
}
