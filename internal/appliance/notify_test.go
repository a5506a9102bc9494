package appliance

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// waitEvent returns the newest event on the bus of kind that passes ok.
func waitEvent(t *testing.T, b *events.Bus, kind string, ok func(events.Event) bool) events.Event {
	t.Helper()
	var found events.Event
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		list := b.List(events.Filter{MaxSeverity: -1, Kind: kind}, 0)
		for _, e := range list {
			if ok(e) {
				found = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list)
	}, "a "+kind+" event")
	return found
}

// TestEventsFromSources: a real server that stops answering, a
// configuration change and a failed login each put their event on the
// bus, and the bus reaches a syslog host configured by a change.
func TestEventsFromSources(t *testing.T) {
	dir := t.TempDir()
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitEvent(t, a.Events, events.KindSystem, func(e events.Event) bool { return e.Message == "Fulcrum started" })

	// A syslog receiver (a UDP socket of the test) set in the options.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	backend := testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	vip := testkit.LoopbackAddr()
	vipPort := testkit.FreePort(t, vip)
	syslogPort := pc.LocalAddr().(*net.UDPAddr).Port
	res, err := a.Control.Apply(control.Change{Actor: control.Actor{User: "bal", Source: "api", Method: "basic", RemoteAddr: "127.0.0.9"},
		Summary: "add web", Mutate: func(c *config.Config) error {
			c.Options.Logging.Syslog = []config.SyslogHost{{Address: "127.0.0.1", Port: syslogPort, Protocol: "udp", Severity: "notice"}}
			c.VirtualServices = append(c.VirtualServices, config.VirtualService{NickName: "web", Address: vip, Port: vipPort,
				RealServers: []config.RealServer{{Address: "127.0.0.1", Port: backend.Port()}}})
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ce := waitEvent(t, a.Events, events.KindConfigChange, func(e events.Event) bool {
		return e.Fields["revision"] == strconv.FormatUint(res.Snapshot.Revision, 10)
	})
	if ce.Severity != events.Notice || ce.Fields["user"] != "bal" || ce.Fields["remote"] != "127.0.0.9" || ce.Fields["summary"] != "add web" {
		t.Errorf("config event %+v", ce)
	}
	vsID := res.Snapshot.Config.VirtualServices[len(res.Snapshot.Config.VirtualServices)-1].ID
	rsID := res.Snapshot.Config.VirtualServices[len(res.Snapshot.Config.VirtualServices)-1].RealServers[0].ID
	waitEvent(t, a.Events, events.KindRSUp, func(e events.Event) bool { return e.Fields["vsId"] == strconv.Itoa(vsID) })

	// The real server stops: rs.down with its reason, service and address.
	backend.Close()
	down := waitEvent(t, a.Events, events.KindRSDown, func(e events.Event) bool { return e.Fields["vsId"] == strconv.Itoa(vsID) })
	rsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(backend.Port()))
	if down.Severity != events.Err || down.Fields["vs"] != "web" || down.Fields["rs"] != rsAddr || down.Fields["rsId"] != strconv.Itoa(rsID) ||
		down.Fields["to"] != "Down" || !strings.Contains(down.Fields["reason"], "refused") ||
		!strings.HasPrefix(down.Message, "real server "+rsAddr+" of web is Down: ") {
		t.Errorf("rs.down event %+v", down)
	}
	vsDown := waitEvent(t, a.Events, events.KindVSDown, func(e events.Event) bool { return e.Fields["vsId"] == strconv.Itoa(vsID) })
	if vsDown.Severity != events.Crit || vsDown.Fields["address"] != net.JoinHostPort(vip, strconv.Itoa(vipPort)) {
		t.Errorf("vs.down event %+v", vsDown)
	}

	// A failed login.
	req, _ := http.NewRequest("GET", a.AdminURL()+"/api/v1/status", nil)
	req.SetBasicAuth("bal", "wrong password")
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	lf := waitEvent(t, a.Events, events.KindLoginFailed, func(events.Event) bool { return true })
	if lf.Severity != events.Warning || lf.Fields["remote"] != "127.0.0.1" || lf.Fields["success"] != "false" {
		t.Errorf("login-failed event %+v", lf)
	}

	// The syslog host got the rs.down event (notice and above).
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no rs.down datagram: %v", err)
		}
		if m := string(buf[:n]); strings.Contains(m, " rs.down [fulcrum@32473 ") {
			if !strings.HasPrefix(m, "<131>1 ") || !strings.Contains(m, `vs="web"`) {
				t.Errorf("datagram %q", m)
			}
			break
		}
	}
}

func TestCertWatcher(t *testing.T) {
	ca := testkit.NewCA(t, "watch CA")
	now := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	soon := ca.Issue(t, testkit.Leaf{Names: []string{"soon.example"}, NotBefore: now.AddDate(0, -1, 0), NotAfter: now.Add(5*24*time.Hour + time.Hour)})
	gone := ca.Issue(t, testkit.Leaf{Names: []string{"gone.example"}, NotBefore: now.AddDate(0, -1, 0), NotAfter: now.Add(-time.Hour)})
	later := ca.Issue(t, testkit.Leaf{Names: []string{"later.example"}, NotBefore: now.AddDate(0, -1, 0), NotAfter: now.AddDate(0, 2, 0)})
	c := &config.Config{Certificates: []config.Certificate{
		{Name: "soon", CertPEM: soon.CertPEM(), KeyPEM: soon.KeyPEM()},
		{Name: "gone", CertPEM: gone.CertPEM(), KeyPEM: gone.KeyPEM()},
		{Name: "later", CertPEM: later.CertPEM(), KeyPEM: later.KeyPEM()},
	}}
	c.Options.Alerts.CertExpiryDays = 30
	bus := events.NewBus(0)
	w := &certWatcher{bus: bus, seen: map[string]string{}}
	w.check(c, now)
	w.check(c, now.Add(time.Hour)) // the same day: nothing new
	list := bus.List(events.Filter{MaxSeverity: -1}, 0)
	if len(list) != 2 {
		t.Fatalf("events %+v, want 2", list)
	}
	byKind := map[string]events.Event{}
	for _, e := range list {
		byKind[e.Kind] = e
	}
	if e := byKind[events.KindCertExpiring]; e.Severity != events.Warning || e.Fields["certificate"] != "soon" || e.Fields["daysLeft"] != "5" ||
		e.Message != "certificate soon expires in 5 days, on 2026-12-13" {
		t.Errorf("expiring %+v", e)
	}
	if e := byKind[events.KindCertExpired]; e.Severity != events.Err || e.Fields["certificate"] != "gone" || e.Message != "certificate gone expired on 2026-12-08" {
		t.Errorf("expired %+v", e)
	}
	// The next day both come again; with 3 days' warning only the expired.
	w.check(c, now.Add(24*time.Hour))
	if n := len(bus.List(events.Filter{MaxSeverity: -1}, 0)); n != 4 {
		t.Errorf("%d events after the next day's check, want 4", n)
	}
	c.Options.Alerts.CertExpiryDays = 3
	w.check(c, now.Add(48*time.Hour))
	if got := bus.List(events.Filter{MaxSeverity: -1}, 1)[0]; got.Kind != events.KindCertExpired || len(bus.List(events.Filter{MaxSeverity: -1}, 0)) != 5 {
		t.Errorf("with 3 days: newest %+v", got)
	}
}

func TestEventMappings(t *testing.T) {
	c := &config.Config{VirtualServices: []config.VirtualService{{ID: 1, Address: "10.0.0.1", Port: 80,
		SubVSs: []config.VirtualService{{ID: 2, NickName: "api"}, {ID: 3}}}}}
	at := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   health.Event
		kind string
		sev  events.Severity
		msg  string
	}{
		{health.Event{Time: at, VS: 1, RS: 5, Address: "10.0.1.5", Port: 8080, From: "Up", To: "Down", Reason: "refused"}, events.KindRSDown, events.Err,
			"real server 10.0.1.5:8080 of 10.0.0.1:80 is Down: refused"},
		{health.Event{VS: 2, RS: 5, Address: "10.0.1.5", Port: 8080, From: "Down", To: "Up"}, events.KindRSUp, events.Notice,
			"real server 10.0.1.5:8080 of api is Up"},
		{health.Event{VS: 3, RS: 5, Address: "::1", Port: 80, From: "Up", To: "Disabled"}, events.KindRSState, events.Notice,
			"real server [::1]:80 of SubVS 3 is Disabled"},
		{health.Event{VS: 1, RS: 5, Address: "10.0.1.5", Port: 1, From: "Up", To: "Unknown"}, events.KindRSState, events.Info,
			"real server 10.0.1.5:1 of 10.0.0.1:80 is Unknown"},
		{health.Event{VS: 1, Address: "10.0.0.1", Port: 80, From: "Up", To: "Down", Reason: "all down"}, events.KindVSDown, events.Crit,
			"virtual service 10.0.0.1:80 is Down: all down"},
		{health.Event{VS: 2, From: "Down", To: "Up"}, events.KindVSUp, events.Notice, "virtual service api is Up"},
		{health.Event{VS: 9, From: "Down", To: "Sorry"}, events.KindVSState, events.Warning, "virtual service service 9 is Sorry"},
	} {
		e := healthToEvent(c, tc.in)
		if e.Kind != tc.kind || e.Severity != tc.sev || e.Message != tc.msg {
			t.Errorf("%+v → %s %s %q, want %s %s %q", tc.in, e.Kind, e.Severity, e.Message, tc.kind, tc.sev, tc.msg)
		}
	}
	if e := healthToEvent(c, health.Event{VS: 2, RS: 5, Address: "10.0.1.5", Port: 80, To: "Up"}); e.Fields["parentId"] != "1" || e.Fields["rsId"] != "5" {
		t.Errorf("fields %+v", e.Fields)
	}
	for _, tc := range []struct {
		in   store.AuditEntry
		kind string
		sev  events.Severity
	}{
		{store.AuditEntry{User: "bal", Source: "wui", Action: "config", Detail: "revision 7: add web", Success: true}, events.KindConfigChange, events.Notice},
		{store.AuditEntry{User: "bal", Action: "login", Success: true}, events.KindLogin, events.Info},
		{store.AuditEntry{User: "bal", Action: "login", Detail: "wrong password"}, events.KindLoginFailed, events.Warning},
		{store.AuditEntry{User: "bal", Action: "lockout", Detail: "locked", Success: true}, events.KindLockout, events.Warning},
		{store.AuditEntry{User: "system", Action: "network-rollback", Detail: "rolled back", Success: true}, events.KindNetwork, events.Notice},
		{store.AuditEntry{User: "system", Action: "network-rollback", Detail: "failed"}, events.KindNetwork, events.Err},
		{store.AuditEntry{User: "bal", Action: "backup", Success: true}, events.KindAdmin, events.Info},
		{store.AuditEntry{User: "bal", Action: "csrf"}, events.KindAdmin, events.Warning},
	} {
		e := auditToEvent(tc.in)
		if e.Kind != tc.kind || e.Severity != tc.sev {
			t.Errorf("%+v → %s %s, want %s %s", tc.in, e.Kind, e.Severity, tc.kind, tc.sev)
		}
	}
	if e := auditToEvent(store.AuditEntry{User: "bal", Source: "wui", RemoteAddr: "10.1.1.1", Action: "config", Detail: "revision 7: add web", Success: true}); e.Fields["revision"] != "7" || e.Fields["summary"] != "add web" ||
		e.Message != "configuration changed by bal (wui) from 10.1.1.1: revision 7: add web" {
		t.Errorf("config event %+v", e)
	}
}
