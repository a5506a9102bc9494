package persist

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

func TestNewValidates(t *testing.T) {
	table := NewRegistry().Table(1, 10)
	srvs := servers(1, 2, 80)
	inner, _ := balance.New("rr", srvs)
	for _, tc := range []struct {
		s    Settings
		want string
	}{
		{Settings{Mode: "sticky"}, `unknown persistence mode "sticky"`},
		{Settings{Mode: ModeSrc, Timeout: 29 * 24 * time.Hour}, "persistence timeout must be 0-28 days"},
		{Settings{Mode: ModeSrc, Timeout: -time.Second}, "persistence timeout must be 0-28 days"},
		{Settings{Mode: ModeSrc, Mask: 33}, "persistence mask must be 0-32"},
		{Settings{Mode: ModeSrc, Mask6: 129}, "persistence IPv6 mask must be 0-128"},
		{Settings{Mode: ModeCookie}, "persistence mode cookie needs a cookie name"},
		{Settings{Mode: ModeCookieSrc, Name: "a b"}, `cookie name "a b" is not a valid cookie name`},
		{Settings{Mode: ModeHeader}, "persistence mode header needs a valid header name"},
		{Settings{Mode: ModeHeader, Name: "X:Y"}, "persistence mode header needs a valid header name"},
		{Settings{Mode: ModeQueryHash}, "persistence mode query-hash needs a query tag"},
		{Settings{Mode: ModeActiveCookie, Secret: []byte("short")}, "secret of at least 16 bytes"},
		{Settings{Mode: ModeActiveCookieSrc}, "secret of at least 16 bytes"},
	} {
		_, err := New(inner, srvs, table, tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): err %v, want %q", tc.s, err, tc.want)
		}
	}
	if _, err := New(inner, srvs, nil, Settings{Mode: ModeSrc}); err == nil {
		t.Error("New without a table succeeded")
	}
	if _, err := New(nil, srvs, table, Settings{Mode: ModeSrc}); err == nil {
		t.Error("New without a picker succeeded")
	}
	p, err := New(inner, srvs, table, Settings{Mode: ModeActiveCookie, Secret: secret})
	if err != nil || p.Settings().Name != DefaultActiveCookie || p.Settings().Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v, %v", p.Settings(), err)
	}
	if got := strings.Join(Modes(), ","); !strings.Contains(got, "active-cook-src") || len(Modes()) != 16 {
		t.Errorf("Modes() = %s", got)
	}
	if !NeedsHTTP(ModeSuper) || NeedsHTTP(ModeSrc) || NeedsHTTP(ModeUDPSIP) {
		t.Error("NeedsHTTP is wrong")
	}
	for in, want := range map[string]Always{"": AlwaysNo, "no": AlwaysNo, "yes": AlwaysYes, "accept-changes": AlwaysAcceptChanges} {
		if got, err := ParseAlways(in); err != nil || got != want {
			t.Errorf("ParseAlways(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseAlways("maybe"); err == nil {
		t.Error(`ParseAlways("maybe") succeeded`)
	}
}

// pick picks for in and releases at once.
func pick(t *testing.T, p *Persister, in *Input) *backend.Server {
	t.Helper()
	s, done, err := p.PickInput(in)
	if err != nil {
		t.Fatal(err)
	}
	done(balance.Outcome{})
	return s
}

func httpReq(t *testing.T, hdr ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://www.example.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

// TestSuperHTTP: clients with different Authorization stay apart, the same
// browser (User-Agent and Authorization) stays together, whatever its
// address; super-src combines the fingerprint with the address.
func TestSuperHTTP(t *testing.T) {
	const ua = "Mozilla/5.0 (Windows NT 10.0) Lync/15.0"
	srvs := servers(1, 2, 443)
	p := build(t, NewRegistry().Table(1, 100), srvs, Settings{Mode: ModeSuper})
	alice := httpReq(t, "User-Agent", ua, "Authorization", "NTLM alice-token")
	bob := httpReq(t, "User-Agent", ua, "Authorization", "NTLM bob-token")
	a := pick(t, p, &Input{Request: balance.Request{Client: ip(1, 1000)}, HTTP: alice})
	b := pick(t, p, &Input{Request: balance.Request{Client: ip(1, 1001)}, HTTP: bob})
	if a == b {
		t.Fatalf("alice and bob (same address and browser, different Authorization) share %s: fingerprints not apart", a.Key())
	}
	for k := range 50 {
		if s := pick(t, p, &Input{Request: balance.Request{Client: ip(k, uint16(2000+k))}, HTTP: alice}); s != a {
			t.Fatalf("alice from address %d went to %s, not %s", k, s.Key(), a.Key())
		}
		if s := pick(t, p, &Input{Request: balance.Request{Client: ip(k, uint16(3000+k))}, HTTP: bob}); s != b {
			t.Fatalf("bob from address %d went to %s, not %s", k, s.Key(), b.Key())
		}
	}
	// No fingerprint at all: scheduled (round robin), not stuck.
	bare := httpReq(t)
	x := pick(t, p, &Input{HTTP: bare})
	if y := pick(t, p, &Input{HTTP: bare}); x == y {
		t.Error("requests without User-Agent and Authorization were persisted")
	}

	// super-src: the same browser from two addresses is two clients, and
	// the same address with two credentials is two clients too.
	ps := build(t, NewRegistry().Table(2, 100), srvs, Settings{Mode: ModeSuperSrc})
	a1 := pick(t, ps, &Input{Request: balance.Request{Client: ip(1, 1)}, HTTP: alice})
	a2 := pick(t, ps, &Input{Request: balance.Request{Client: ip(2, 1)}, HTTP: alice})
	b1 := pick(t, ps, &Input{Request: balance.Request{Client: ip(1, 2)}, HTTP: bob})
	if a1 == a2 || a2 == b1 {
		t.Errorf("super-src: alice@1 %s, alice@2 %s, bob@1 %s: want alice@1 ≠ alice@2 ≠ bob@1 under round robin", a1.Key(), a2.Key(), b1.Key())
	}
	for range 10 {
		if pick(t, ps, &Input{Request: balance.Request{Client: ip(1, 9)}, HTTP: alice}) != a1 {
			t.Fatal("super-src: alice@1 moved")
		}
	}
	if ps.Table().Len() != 3 {
		t.Errorf("super-src table has %d entries, want 3", ps.Table().Len())
	}
}

// TestSourceMask: with /24, clients of one subnet stay together; IPv6 uses
// its own mask.
func TestSourceMask(t *testing.T) {
	srvs := servers(1, 3, 80)
	p := build(t, NewRegistry().Table(1, 100), srvs, Settings{Mode: ModeSrc, Mask: 24, Mask6: 64})
	first := pick(t, p, &Input{Request: balance.Request{Client: netip.MustParseAddrPort("192.0.2.1:1000")}})
	for i := 2; i < 255; i += 17 {
		a := netip.MustParseAddrPort(fmt.Sprintf("192.0.2.%d:%d", i, 1000+i))
		if pick(t, p, &Input{Request: balance.Request{Client: a}}) != first {
			t.Fatalf("%s left its /24", a)
		}
	}
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.77]:1")
	if pick(t, p, &Input{Request: balance.Request{Client: mapped}}) != first {
		t.Error("IPv4-mapped address not treated as IPv4")
	}
	if pick(t, p, &Input{Request: balance.Request{Client: netip.MustParseAddrPort("192.0.3.1:1")}}) == first {
		t.Error("another /24 shares the entry (round robin should give it another server)")
	}
	v6 := pick(t, p, &Input{Request: balance.Request{Client: netip.MustParseAddrPort("[2001:db8:1:2::1]:1")}})
	if pick(t, p, &Input{Request: balance.Request{Client: netip.MustParseAddrPort("[2001:db8:1:2:ffff::9]:2")}}) != v6 {
		t.Error("IPv6 /64 not kept together")
	}
}

// TestFailureSemantics: Down and disabled re-stick; draining keeps its
// persisted clients but gets no new ones; a full server is skipped for the
// connection without losing the client; an avoided server re-sticks.
func TestFailureSemantics(t *testing.T) {
	srvs := servers(1, 3, 80)
	p := build(t, NewRegistry().Table(1, 100), srvs, Settings{Mode: ModeSrc})
	in := func(k int) *Input { return &Input{Request: balance.Request{Client: ip(k, 1)}} }
	owner := make([]*backend.Server, 30)
	for k := range owner {
		owner[k] = pick(t, p, in(k))
	}

	// Drain server 0: its clients stay, new clients avoid it.
	srvs[0].SetDraining(true)
	srvs[0].Configure(backend.Settings{Weight: 1, Enabled: false}) // drained by disabling, as LoadMaster does
	for k := range owner {
		if s := pick(t, p, in(k)); s != owner[k] {
			t.Fatalf("client %d moved from %s to %s while its server drains", k, owner[k].Key(), s.Key())
		}
	}
	for k := 100; k < 130; k++ {
		if pick(t, p, in(k)) == srvs[0] {
			t.Fatalf("new client %d sent to the draining server", k)
		}
	}
	// Drain ends with the server disabled: its clients move, once.
	srvs[0].SetDraining(false)
	moved := map[int]*backend.Server{}
	for k := range owner {
		s := pick(t, p, in(k))
		if owner[k] == srvs[0] {
			if s == srvs[0] {
				t.Fatalf("client %d still on the disabled server", k)
			}
			moved[k] = s
		} else if s != owner[k] {
			t.Fatalf("client %d of a healthy server moved", k)
		}
	}
	if len(moved) == 0 {
		t.Fatal("no client was on server 0")
	}
	for k, s := range moved {
		if pick(t, p, in(k)) != s {
			t.Fatalf("client %d did not stay on its new server", k)
		}
	}

	// Limits: a full stuck server sends this connection elsewhere, but the
	// client comes back once there is room.
	srvs[0].Configure(backend.Settings{Weight: 1, Enabled: true})
	srvs[1].Configure(backend.Settings{Weight: 1, Limit: 1, Enabled: true})
	inner, _ := balance.New("rr", srvs)
	p, err := New(inner, srvs, p.Table(), p.Settings())
	if err != nil {
		t.Fatal(err)
	}
	var k1 int
	for k := range owner {
		if pick(t, p, in(k)) == srvs[1] {
			k1 = k
			break
		}
	}
	s, hold, err := p.PickInput(in(k1))
	if err != nil || s != srvs[1] {
		t.Fatalf("client %d: %v %v, want server 1", k1, s, err)
	}
	other, done, err := p.PickInput(in(k1))
	if err != nil || other == srvs[1] {
		t.Fatalf("client %d with its server full: %v %v", k1, other, err)
	}
	done(balance.Outcome{})
	hold(balance.Outcome{})
	if pick(t, p, in(k1)) != srvs[1] {
		t.Errorf("client %d did not return to its server once it had room", k1)
	}

	// Avoid (its dial failed): re-stick.
	req := in(k1)
	req.Request.Avoid = []*backend.Server{srvs[1]}
	s2 := pick(t, p, req)
	if s2 == srvs[1] {
		t.Fatal("avoided server chosen")
	}
	if pick(t, p, in(k1)) != s2 {
		t.Error("client did not re-stick after its server was avoided")
	}

	// Down: re-stick.
	s2.SetHealth(backend.HealthDown)
	s3 := pick(t, p, in(k1))
	if s3 == s2 || pick(t, p, in(k1)) != s3 {
		t.Error("client did not re-stick after its server went down")
	}
}

// TestReloadKeepsEntries: a new generation (new Picker and Persister over
// the same Table, servers looked up again) keeps every client; a removed
// real server's clients move.
func TestReloadKeepsEntries(t *testing.T) {
	reg := NewRegistry()
	srvs := servers(1, 3, 80)
	p := build(t, reg.Table(1, 0), srvs, Settings{Mode: ModeSrc})
	owner := map[int]*backend.Server{}
	for k := range 60 {
		owner[k] = pick(t, p, &Input{Request: balance.Request{Client: ip(k, 1)}})
	}
	// Generation 2 drops server 2, adds a fourth, and changes the order.
	next := []*backend.Server{srvs[1], backend.NewServer(backend.Key{VS: 1, Address: "10.0.0.9", Port: 80}, backend.Settings{Weight: 1, Enabled: true}), srvs[0]}
	reg.Retain(1)
	p2 := build(t, reg.Table(1, 0), next, Settings{Mode: ModeSrc})
	for k, was := range owner {
		s := pick(t, p2, &Input{Request: balance.Request{Client: ip(k, 2)}})
		if was == srvs[2] {
			if s == srvs[2] {
				t.Fatalf("client %d on a removed server", k)
			}
			continue
		}
		if s != was {
			t.Fatalf("client %d moved from %s to %s across the reload", k, was.Key(), s.Key())
		}
	}
	// The VS goes away: its table too.
	reg.Retain()
	if _, ok := reg.Lookup(1); ok {
		t.Error("table of a removed service kept")
	}
}

// TestPortFollowing: a service on :443 that follows the one on :80 uses its
// table, and a client lands on the same host on both; the active cookie
// from :80 works on :443 too.
func TestPortFollowing(t *testing.T) {
	reg := NewRegistry()
	http80, https443 := servers(1, 3, 80), servers(2, 3, 4443)
	for _, mode := range []string{ModeSrc, ModeActiveCookie} {
		t.Run(mode, func(t *testing.T) {
			shared := reg.Table(1, 0)
			p80 := build(t, shared, http80, Settings{Mode: mode})
			p443 := build(t, shared, https443, Settings{Mode: mode}) // FollowVSID 1
			for k := range 30 {
				r := httpReq(t)
				in := &Input{Request: balance.Request{Client: ip(k, 1)}, HTTP: r}
				s80 := pick(t, p80, in)
				if sc := p80.OnResponse(in, s80, http.Header{}); sc != "" {
					c, _ := http.ParseSetCookie(sc)
					r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
				}
				for range 3 {
					s443 := pick(t, p443, &Input{Request: balance.Request{Client: ip(k, 2)}, HTTP: r})
					if s443.Key().Address != s80.Key().Address {
						t.Fatalf("client %d: %s on :80 but %s on :443", k, s80.Key(), s443.Key())
					}
				}
			}
		})
	}
}

// TestActiveCookie: the cookie is set once, names the server without its
// address, cannot be forged, and expires.
func TestActiveCookie(t *testing.T) {
	clk := newClock()
	reg := NewRegistry()
	srvs := servers(7, 3, 8080)
	p := build(t, reg.Table(7, 0), srvs, Settings{Mode: ModeActiveCookie, Timeout: time.Hour, Now: clk.now})
	r := httpReq(t)
	in := &Input{Request: balance.Request{Client: ip(1, 1)}, HTTP: r}
	s := pick(t, p, in)
	sc := p.OnResponse(in, s, http.Header{})
	c, err := http.ParseSetCookie(sc)
	if err != nil || c.Name != DefaultActiveCookie || !c.HttpOnly || c.Path != "/" {
		t.Fatalf("Set-Cookie %q: %+v %v", sc, c, err)
	}
	if c.Secure {
		t.Error("Secure set on a plain-HTTP request")
	}
	for _, leak := range []string{"10.0.0", "8080", "10%2E0"} {
		if strings.Contains(sc, leak) {
			t.Errorf("Set-Cookie %q reveals %q", sc, leak)
		}
	}
	raw, err := tokenEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != tokenLen {
		t.Fatalf("token %q does not decode: %v", c.Value, err)
	}
	for _, srv := range srvs {
		a := netip.MustParseAddr(srv.Key().Address).As4()
		if strings.Contains(string(raw), string(a[:])) || strings.Contains(string(raw), srv.Key().Address) {
			t.Errorf("decoded token contains the address of %s", srv.Key())
		}
	}
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	for k := range 20 {
		in := &Input{Request: balance.Request{Client: ip(100+k, 1)}, HTTP: r} // any address
		if pick(t, p, in) != s {
			t.Fatal("client with the cookie moved")
		}
		if p.OnResponse(in, s, http.Header{}) != "" {
			t.Fatal("cookie set again although the client has a valid one")
		}
	}
	if p.Table().Len() != 0 {
		t.Errorf("active-cookie stored %d table entries; the cookie is the state", p.Table().Len())
	}

	// Forgeries: every single-bit change of the token is refused.
	sg := p.signer
	for i := range raw {
		for bit := range 8 {
			f := append([]byte(nil), raw...)
			f[i] ^= 1 << bit
			if _, _, err := sg.verify(tokenEncoding.EncodeToString(f), clk.now()); err == nil {
				t.Fatalf("token with byte %d bit %d flipped verifies", i, bit)
			}
		}
	}
	other, _ := newSigner([]byte("another-install-secret-1234"), 7)
	if _, _, err := other.verify(c.Value, clk.now()); !errors.Is(err, errTokenForged) {
		t.Errorf("token verified under another install's secret: %v", err)
	}
	otherVS, _ := newSigner(secret, 8)
	if _, _, err := otherVS.verify(c.Value, clk.now()); !errors.Is(err, errTokenForged) {
		t.Errorf("token verified for another service's table: %v", err)
	}
	for _, junk := range []string{"", "x", strings.Repeat("A", len(c.Value)), c.Value + "A", c.Value[1:], "!" + c.Value[1:]} {
		if _, _, err := sg.verify(junk, clk.now()); err == nil {
			t.Errorf("junk %q verifies", junk)
		}
	}
	// A token for another server cannot be made without the secret; one
	// made with it for another server sends the client there.
	r2 := httpReq(t)
	r2.AddCookie(&http.Cookie{Name: c.Name, Value: sg.issue(p.sids[2], clk.now().Add(time.Minute))})
	if pick(t, p, &Input{HTTP: r2}) != srvs[2] {
		t.Error("valid token for server 2 not honoured")
	}

	// Expiry: after the timeout the token no longer counts, and a new one
	// is set.
	clk.advance(time.Hour)
	if _, _, err := sg.verify(c.Value, clk.now()); !errors.Is(err, errTokenExpired) {
		t.Errorf("token after its timeout: %v", err)
	}
	in = &Input{HTTP: r}
	s = pick(t, p, in)
	if p.OnResponse(in, s, http.Header{}) == "" {
		t.Error("no new cookie for a client whose cookie expired")
	}

	// Over TLS the cookie is Secure.
	tr := httpReq(t)
	tr.TLS = &tlsState
	in = &Input{HTTP: tr}
	s = pick(t, p, in)
	if c, _ := http.ParseSetCookie(p.OnResponse(in, s, http.Header{})); c == nil || !c.Secure {
		t.Error("cookie over TLS is not Secure")
	}
}

// TestActiveCookieRefresh: with Refresh, a token past half its life is
// renewed; without, it is not.
func TestActiveCookieRefresh(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		clk := newClock()
		srvs := servers(1, 2, 80)
		p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeActiveCookie, Timeout: time.Hour, Refresh: refresh, Now: clk.now})
		r := httpReq(t)
		in := &Input{HTTP: r}
		s := pick(t, p, in)
		c, _ := http.ParseSetCookie(p.OnResponse(in, s, http.Header{}))
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		clk.advance(40 * time.Minute)
		s = pick(t, p, in)
		if got := p.OnResponse(in, s, http.Header{}) != ""; got != refresh {
			t.Errorf("refresh=%v: renewed at 40 of 60 minutes: %v", refresh, got)
		}
	}
}

// TestServerCookieDeleted: a server deleting its cookie ends the client's
// persistence.
func TestServerCookieDeleted(t *testing.T) {
	srvs := servers(1, 2, 80)
	p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeCookie, Name: "SID"})
	r := httpReq(t)
	in := &Input{HTTP: r}
	s := pick(t, p, in)
	p.OnResponse(in, s, http.Header{"Set-Cookie": {"SID=abc; Path=/"}})
	r.AddCookie(&http.Cookie{Name: "SID", Value: "abc"})
	if p.Table().Len() != 1 || pick(t, p, in) != s {
		t.Fatal("server cookie not learned")
	}
	p.OnResponse(in, s, http.Header{"Set-Cookie": {"SID=; Max-Age=0"}})
	if p.Table().Len() != 0 {
		t.Error("deleted server cookie still persisted")
	}
}

// TestAlwaysPersist: the three "always check persist" settings on one
// client connection.
func TestAlwaysPersist(t *testing.T) {
	srvs := servers(1, 2, 80)
	ua := "User-Agent"
	for _, tc := range []struct {
		always Always
		// second is the server of the request with a new fingerprint, given
		// the connection's server first and the other server other.
		sameAsFirst bool
	}{
		{AlwaysNo, true},
		{AlwaysYes, false},
		{AlwaysAcceptChanges, true},
	} {
		t.Run(fmt.Sprint(tc.always), func(t *testing.T) {
			p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeSuper, Always: tc.always})
			conn := p.Conn()
			// The first request (before login) and the next (after login:
			// Authorization appears) on one connection.
			first, done, err := conn.Pick(&Input{HTTP: httpReq(t, ua, "app/1")})
			if err != nil {
				t.Fatal(err)
			}
			done(balance.Outcome{})
			// Round robin would give the new fingerprint the other server.
			second, done, err := conn.Pick(&Input{HTTP: httpReq(t, ua, "app/1", "Authorization", "Basic dTpw")})
			if err != nil {
				t.Fatal(err)
			}
			done(balance.Outcome{})
			if (second == first) != tc.sameAsFirst {
				t.Errorf("second request on %s, first on %s; want same: %v", second.Key(), first.Key(), tc.sameAsFirst)
			}
			if conn.Server() != second {
				t.Error("Conn.Server is not the last request's server")
			}
			// With accept-changes the new fingerprint is now stuck to the
			// connection's server, for new connections too.
			if tc.always == AlwaysAcceptChanges {
				s, done, _ := p.Conn().Pick(&Input{HTTP: httpReq(t, ua, "app/1", "Authorization", "Basic dTpw")})
				done(balance.Outcome{})
				if s != first {
					t.Error("accepted fingerprint not stored for the connection's server")
				}
			}
		})
	}
	// AlwaysNo: a connection whose server fails moves.
	p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeSuper})
	conn := p.Conn()
	s, done, _ := conn.Pick(&Input{HTTP: httpReq(t, ua, "x")})
	done(balance.Outcome{})
	s.SetHealth(backend.HealthDown)
	defer s.SetHealth(backend.HealthUp)
	s2, done, err := conn.Pick(&Input{HTTP: httpReq(t, ua, "x")})
	if err != nil || s2 == s {
		t.Errorf("connection stayed on its failed server: %v", err)
	}
	done(balance.Outcome{})
}

// TestOtherModesNeedTheirInput: without the input a mode keys on, the
// request is scheduled (not persisted), and -src modes fall back to the
// source address.
func TestOtherModesNeedTheirInput(t *testing.T) {
	srvs := servers(1, 2, 80)
	for _, mode := range []string{ModeURL, ModeHost, ModeHeader, ModeQueryHash, ModeCookie, ModeCookieHash, ModeSSL, ModeUDPSIP, ModeSuper} {
		p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: mode, Name: "X-Id", QueryTag: "id"})
		var r *http.Request // url and host key on any HTTP request
		if mode != ModeURL && mode != ModeHost {
			r = httpReq(t)
		}
		a := pick(t, p, &Input{Request: balance.Request{Client: ip(1, 1)}, HTTP: r})
		b := pick(t, p, &Input{Request: balance.Request{Client: ip(1, 1)}, HTTP: r})
		if a == b {
			t.Errorf("%s: request without its key persisted", mode)
		}
		if p.Table().Len() != 0 {
			t.Errorf("%s: stored %d entries without a key", mode, p.Table().Len())
		}
	}
	for _, mode := range []string{ModeCookieSrc, ModeCookieHashSrc, ModeActiveCookieSrc} {
		p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: mode, Name: "SID"})
		a := pick(t, p, &Input{Request: balance.Request{Client: ip(1, 1)}})
		for range 5 {
			if pick(t, p, &Input{Request: balance.Request{Client: ip(1, 2)}}) != a {
				t.Errorf("%s: no source-address fallback", mode)
			}
		}
	}
	// The balance.Picker face: src works with a bare request.
	p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeSrc})
	var first *backend.Server
	for range 5 {
		s, done, err := p.Pick(&balance.Request{Client: ip(5, 1)})
		if err != nil {
			t.Fatal(err)
		}
		done(balance.Outcome{})
		if first == nil {
			first = s
		} else if s != first {
			t.Fatal("Pick (balance.Picker) does not persist")
		}
	}
	none := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeNone})
	if x, y := pick(t, none, &Input{Request: balance.Request{Client: ip(1, 1)}}), pick(t, none, &Input{Request: balance.Request{Client: ip(1, 1)}}); x == y {
		t.Error("mode none persisted")
	}
}

// TestActiveCookieFullServerKeepsClient: when the server an active cookie
// names is at its limit, the request goes elsewhere but the cookie is not
// replaced.
func TestActiveCookieFullServerKeepsClient(t *testing.T) {
	srvs := servers(1, 2, 80)
	srvs[0].Configure(backend.Settings{Weight: 1, Limit: 1, Enabled: true})
	p := build(t, NewRegistry().Table(1, 0), srvs, Settings{Mode: ModeActiveCookie})
	r := httpReq(t)
	r.AddCookie(&http.Cookie{Name: DefaultActiveCookie, Value: p.signer.issue(p.sids[0], time.Now().Add(time.Hour))})
	in := &Input{HTTP: r}
	s, hold, err := p.PickInput(in)
	if err != nil || s != srvs[0] {
		t.Fatalf("first request: %v %v", s, err)
	}
	s2, done, err := p.PickInput(in)
	if err != nil || s2 != srvs[1] {
		t.Fatalf("request while server 0 is full: %v %v", s2, err)
	}
	if sc := p.OnResponse(in, s2, http.Header{}); sc != "" {
		t.Errorf("cookie replaced while its server was only full: %q", sc)
	}
	done(balance.Outcome{})
	hold(balance.Outcome{})
	// Down, not full: the cookie is replaced.
	srvs[0].SetHealth(backend.HealthDown)
	s3 := pick(t, p, in)
	if p.OnResponse(in, s3, http.Header{}) == "" {
		t.Error("cookie naming a Down server not replaced")
	}
}
