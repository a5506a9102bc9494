package webui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestCrossOriginPostRefused: a form post with the session cookie is
// refused unless it is same-origin and carries the session's CSRF token;
// the login form refuses cross-site posts too.
func TestCrossOriginPostRefused(t *testing.T) {
	a := startAppliance(t)
	c := newClient(t, a.AdminURL())
	csrf, err := c.login("bal", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	vip := testkit.LoopbackAddr()
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "address": {vip}, "port": {fmt.Sprint(testkit.FreePort(t, vip))}, "protocol": {"tcp"}, "type": {"gen"}}
	}
	rev := a.Control.Current().Revision
	for _, tc := range []struct {
		name string
		tok  string
		hdr  map[string]string
	}{
		{"foreign origin", csrf, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{"foreign origin, no fetch metadata", csrf, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": ""}},
		{"cross-site fetch metadata, no origin", csrf, map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
		{"same-site sibling", csrf, map[string]string{"Origin": "https://other." + strings.TrimPrefix(a.AdminURL(), "https://"), "Sec-Fetch-Site": "same-site"}},
		{"null origin", csrf, map[string]string{"Origin": "null"}},
		{"no token", "", nil},
		{"wrong token", "x" + csrf, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := c.do("POST", "/vs/new", form(tc.tok), tc.hdr)
			if status != http.StatusForbidden || !strings.Contains(body, "refused") {
				t.Errorf("status %d, want 403 refused: %.300s", status, body)
			}
			if got := a.Control.Current().Revision; got != rev {
				t.Errorf("revision moved from %d to %d", rev, got)
			}
		})
	}
	// The login form: a cross-site post cannot sign a browser in.
	status, _, _ := c.do("POST", "/login", url.Values{"user": {"bal"}, "password": {adminPassword}},
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if status != http.StatusForbidden {
		t.Errorf("cross-site login: status %d, want 403", status)
	}
	// And the same post from the UI itself is accepted (the refusals above
	// are not an accident of the form).
	status, loc, body := c.do("POST", "/vs/new", form(csrf), nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/vs/") {
		t.Fatalf("same-origin post: status %d location %q: %.300s", status, loc, body)
	}
	if got := a.Control.Current().Revision; got != rev+1 {
		t.Errorf("revision %d after the accepted post, want %d", got, rev+1)
	}
	if ch := a.Control.Current().Change; ch.Source != "wui" || ch.User != "bal" {
		t.Errorf("revision recorded as %+v, want user bal source wui", ch)
	}
}

// TestSessionUselessAfterLogout: after signing out, the old session cookie
// (and its CSRF token) opens nothing, in the UI or the API.
func TestSessionUselessAfterLogout(t *testing.T) {
	a := startAppliance(t)
	c := newClient(t, a.AdminURL())
	csrf, err := c.login("bal", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	sid := c.cookie(admin.SessionCookie)
	if sid == "" {
		t.Fatal("no session cookie after login")
	}
	if status, _, body := c.do("GET", "/", nil, nil); status != http.StatusOK || !strings.Contains(body, `id="dashboard"`) {
		t.Fatalf("dashboard before logout: %d", status)
	}
	status, loc, _ := c.do("POST", "/logout", url.Values{"csrf": {csrf}}, nil)
	if status != http.StatusSeeOther || loc != "/login?out=1" {
		t.Fatalf("logout: %d %q", status, loc)
	}

	// A client that kept the old cookie.
	old := newClient(t, a.AdminURL())
	u, _ := url.Parse(a.AdminURL())
	old.jar.SetCookies(u, []*http.Cookie{{Name: admin.SessionCookie, Value: sid, Path: "/"}})
	rev := a.Control.Current().Revision
	if status, loc, _ := old.do("GET", "/", nil, nil); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?expired=1") {
		t.Errorf("page with the old cookie: %d %q, want a redirect to the login page", status, loc)
	}
	if status, _, _ := old.do("GET", "/ui/metrics", nil, map[string]string{"X-Fulcrum-Live": "1"}); status != http.StatusUnauthorized {
		t.Errorf("live data with the old cookie: %d, want 401", status)
	}
	vip := testkit.LoopbackAddr()
	status, loc, _ = old.do("POST", "/vs/new", url.Values{"csrf": {csrf}, "address": {vip}, "port": {"8080"}}, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("post with the old cookie: %d %q, want a redirect to the login page", status, loc)
	}
	if got := a.Control.Current().Revision; got != rev {
		t.Errorf("the old cookie changed the configuration: revision %d → %d", rev, got)
	}
	if status, _, _ := old.do("GET", "/api/v1/session", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("API with the old cookie: %d, want 401", status)
	}
}

// TestLoginMessages: in a real browser, a locked-out account cannot sign
// in and is told why and for how long; signing out and an ended session
// say so on the login page.
func TestLoginMessages(t *testing.T) {
	a := startAppliance(t)
	b := newBrowser(t, a.AdminURL())
	root := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	if err := a.Auth.AddUser(root, "", "ops", config.RoleOperator, "operator password 1"); err != nil {
		t.Fatal(err)
	}
	login := func(user, pw string) {
		b.open("/login", "#login-submit")
		b.do(chromedp.SendKeys(chromedp.CSS("#f-user"), user), chromedp.SendKeys(chromedp.CSS("#f-password"), pw))
		b.submit("#login-submit", "main")
	}

	// Sign in as the operator, then the session ends (an admin sets a new
	// password): the next page asks to sign in again, saying why.
	login("ops", "operator password 1")
	b.waitText("h1", "Dashboard", 15*time.Second)
	if err := a.Auth.SetPassword(root, "", "ops", "", "operator password 2"); err != nil {
		t.Fatal(err)
	}
	b.open("/vs", "#login-notice")
	b.waitText("#login-notice", "session has expired", 15*time.Second)

	// Sign in and out again.
	login("ops", "operator password 2")
	b.submit(".account button", "#login-notice")
	b.waitText("#login-notice", "signed out", 15*time.Second)

	// Three wrong passwords lock the account for this address; then even
	// the right one is refused, with the time to wait.
	for i := 0; i < 3; i++ {
		login("ops", "wrong password")
		b.waitText("#login-error", "Wrong user name or password", 15*time.Second)
	}
	login("ops", "operator password 2")
	b.waitText("#login-locked", "locked", 15*time.Second)
	if got := b.text("#login-locked"); !strings.Contains(got, "minutes") {
		t.Errorf("lockout message without the time to wait: %q", got)
	}
	if loc := b.location(); !strings.HasSuffix(loc, "/login") {
		t.Errorf("locked-out sign-in went to %s", loc)
	}
	b.shot("17-login-locked")
	b.checkClean()
}
