package setupui

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const goodPassword = "correct horse battery"

// hostIface is the name of one of this machine's interfaces that is not
// loopback, taken from net.Interfaces, so that no test depends on the
// machine's interface names.
func hostIface(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ifs {
		if f.Flags&net.FlagLoopback == 0 {
			return f.Name
		}
	}
	t.Fatal("this machine has no interface but loopback (net.Interfaces); the quick setup needs one to set up")
	return ""
}

func open(t *testing.T, dir string) *Session {
	t.Helper()
	s, err := Open(Options{DataDir: dir, BcryptCost: bcrypt.MinCost, User: "tester",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func good(iface string) Answers {
	return Answers{Interface: iface, Address: "192.0.2.10/24", Gateway: "192.0.2.1", DNS: []string{"192.0.2.53", "192.0.2.54"},
		Search: []string{"example.com"}, Hostname: "lb1", Password: goodPassword, PasswordAgain: goodPassword}
}

// TestCheck checks each answer, alone, and that each problem names its
// field with the words of netcfg.Validate or of the password rules.
func TestCheck(t *testing.T) {
	iface := hostIface(t)
	s := open(t, filepath.Join(t.TempDir(), "data"))
	defer s.Close()
	for _, tc := range []struct {
		name  string
		edit  func(a *Answers)
		field Field
		want  string // in the field's message; "" for no problem
	}{
		{"good", func(a *Answers) {}, 0, ""},
		{"IPv6", func(a *Answers) { a.Address, a.Gateway = "2001:db8::10/64", "2001:db8::1" }, 0, ""},
		{"no gateway, DNS or host name", func(a *Answers) { a.Gateway, a.DNS, a.Search, a.Hostname = "", nil, nil, "" }, 0, ""},
		{"listener on every address", func(a *Answers) { a.AdminAddr = "0.0.0.0:443" }, 0, ""},
		{"listener on loopback", func(a *Answers) { a.AdminAddr = "127.0.0.1:8443" }, 0, ""},
		{"no interface", func(a *Answers) { a.Interface = "" }, FieldInterface, "is required"},
		{"unknown interface", func(a *Answers) { a.Interface = "fuzz0nope" }, FieldInterface, `this host has no interface "fuzz0nope"`},
		{"no address", func(a *Answers) { a.Address = "" }, FieldAddress, "is required"},
		{"bad address", func(a *Answers) { a.Address = "192.0.2.300/24" }, FieldAddress, "must be an address with prefix length"},
		{"address without prefix", func(a *Answers) { a.Address = "192.0.2.10" }, FieldAddress, "must be an address with prefix length"},
		{"loopback address", func(a *Answers) { a.Address = "127.0.0.2/8" }, FieldAddress, "loopback"},
		{"gateway outside", func(a *Answers) { a.Gateway = "198.51.100.1" }, FieldGateway, "lies in no interface's subnet"},
		{"bad gateway", func(a *Answers) { a.Gateway = "gw" }, FieldGateway, `must be an IP address, got "gw"`},
		{"four DNS servers", func(a *Answers) { a.DNS = []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} }, FieldDNS, "at most 3"},
		{"bad DNS server", func(a *Answers) { a.DNS = []string{"dns.example.com"} }, FieldDNS, "must be an IP address"},
		{"bad search domain", func(a *Answers) { a.Search = []string{"exa mple"} }, FieldSearch, "must be a domain name"},
		{"bad host name", func(a *Answers) { a.Hostname = "lb_1" }, FieldHostname, "must be a host name"},
		{"short password", func(a *Answers) { a.Password, a.PasswordAgain = "short", "short" }, FieldPassword, "at least 12 characters, got 5"},
		{"passwords differ", func(a *Answers) { a.PasswordAgain = goodPassword + "!" }, FieldPasswordAgain, "does not match"},
		{"bad listener", func(a *Answers) { a.AdminAddr = "192.0.2.10" }, FieldAdminAddr, "must be an IP address and port"},
		{"listener port 0", func(a *Answers) { a.AdminAddr = "192.0.2.10:0" }, FieldAdminAddr, "port other than 0"},
		{"listener elsewhere", func(a *Answers) { a.AdminAddr = "198.51.100.7:8443" }, FieldAdminAddr, "neither the address 192.0.2.10/24 nor an address of this host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good(iface)
			tc.edit(&a)
			es := s.Check(a)
			if tc.want == "" {
				if len(es) > 0 {
					t.Fatalf("Check: %v", es)
				}
				return
			}
			if len(es) != 1 || es[0].Field != tc.field || !strings.Contains(es[0].Message, tc.want) {
				t.Fatalf("Check = %v; want one problem of %s containing %q", es, tc.field.Label(), tc.want)
			}
			if got := es.Of(tc.field).Error(); !strings.HasPrefix(got, tc.field.Label()+": ") {
				t.Errorf("form error %q does not start with the field's label", got)
			}
			if got := es.Flags(); !strings.HasPrefix(got, tc.field.Flag()+": ") {
				t.Errorf("flag error %q does not start with the field's flag", got)
			}
		})
	}
}

// TestWrite writes the answers to a new data directory and reads them
// back from the store: one confirmed network revision, the first
// administrator with the password, an audit entry.
func TestWrite(t *testing.T) {
	iface := hostIface(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := open(t, dir)
	res, err := s.Write(good(iface))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if res.Answers.Password != "" || res.Answers.PasswordAgain != "" {
		t.Errorf("the result holds the password: %+v", res.Answers)
	}
	if res.Revision != 1 || res.URL != "https://192.0.2.10:8443/" || res.AdminAddr != "192.0.2.10:8443" || res.Password != "created" || res.Generated != "" {
		t.Fatalf("result %+v", res)
	}
	want := &netcfg.Network{Hostname: "lb1", Gateway: "192.0.2.1", AdminAddress: "192.0.2.10:8443",
		DNS:        netcfg.DNS{Servers: []string{"192.0.2.53", "192.0.2.54"}, Search: []string{"example.com"}},
		Interfaces: []netcfg.Interface{{Name: iface, Addresses: []string{"192.0.2.10/24"}}}}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cur, err := st.NetworkCurrent()
	if err != nil {
		t.Fatal(err)
	}
	if cur.Revision != 1 || !cur.Confirmed || cur.User != "tester" || cur.Source != "console" || !strings.Contains(cur.Summary, "quick setup: "+iface) {
		t.Errorf("network revision %+v", cur.Change)
	}
	if !reflect.DeepEqual(cur.Network, want) {
		t.Errorf("stored network\n%+v\nwant\n%+v", cur.Network, want)
	}
	checkPassword(t, st, goodPassword)
	audit, err := st.Audit(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		found = found || (e.Action == "network" && e.Source == "console" && strings.Contains(e.Detail, "network revision 1"))
	}
	if !found {
		t.Errorf("no audit entry of the network revision in %+v", audit)
	}
}

func checkPassword(t *testing.T, st *store.Store, pw string) {
	t.Helper()
	u, err := st.User(config.FirstAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != config.RoleAdmin || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw)) != nil {
		t.Errorf("user %s: role %s, password is not %q", u.Name, u.Role, pw)
	}
}

// TestWriteAgain sets up a store that has settings already: what the
// answers do not touch is kept, an empty password keeps the password,
// a new one replaces it.
func TestWriteAgain(t *testing.T) {
	iface := hostIface(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := open(t, dir)
	if _, err := s.Write(good(iface)); err != nil {
		t.Fatal(err)
	}
	// Settings made elsewhere (the web UI): a farm-side interface and a route.
	n := s.Network(good(iface))
	n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: "farm0", Addresses: []string{"198.51.100.1/24"}, VIPRanges: []string{"198.51.100.128/25"}})
	n.Routes = []netcfg.Route{{Destination: "203.0.113.0/24", Gateway: "198.51.100.254"}}
	if _, err := s.st.CommitNetwork(1, store.Change{User: "bal", Source: "wui"}, n, true); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	defer s.Close()
	a := s.Stored(iface)
	if a.Address != "192.0.2.10/24" || a.Gateway != "192.0.2.1" || a.Hostname != "lb1" || a.AdminAddr != "" || len(a.DNS) != 2 {
		t.Fatalf("stored answers %+v", a)
	}
	a.Address = "192.0.2.11/24"
	res, err := s.Write(a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Password != "unchanged" || res.Revision != 3 || res.AdminAddr != "192.0.2.11:8443" {
		t.Errorf("result %+v", res)
	}
	got := s.base
	if len(got.Interfaces) != 2 || got.Interfaces[0].Addresses[0] != "192.0.2.11/24" || got.Interfaces[1].Name != "farm0" ||
		len(got.Routes) != 1 || got.AdminAddress != "192.0.2.11:8443" {
		t.Errorf("network %+v", got)
	}
	checkPassword(t, s.st, goodPassword)

	// A farm-side subnet overlapping the new address is the address's problem.
	a.Address = "198.51.100.7/16"
	if es := s.Check(a); es.Of(FieldAddress) == nil || !strings.Contains(es.Of(FieldAddress).Error(), "overlaps") {
		t.Errorf("overlap: %v", es)
	}

	a.Address = "192.0.2.11/24"
	a.Password, a.PasswordAgain = "another good password", "another good password"
	if res, err := s.Write(a); err != nil || res.Password != "set" {
		t.Fatalf("Write: %+v, %v", res, err)
	}
	checkPassword(t, s.st, "another good password")
}

// TestGeneratedPassword: no password for a new store generates one, as
// `fulcrum serve` does, returned once.
func TestGeneratedPassword(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "data"))
	defer s.Close()
	a := good(hostIface(t))
	a.Password, a.PasswordAgain = "", ""
	res, err := s.Write(a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Password != "generated" || len(res.Generated) < 12 {
		t.Fatalf("result %+v", res)
	}
	checkPassword(t, s.st, res.Generated)
	var b strings.Builder
	res.Print(&b)
	if !strings.Contains(b.String(), res.Generated+" (shown only once)") || !strings.Contains(b.String(), "Web UI: https://192.0.2.10:8443/") {
		t.Errorf("summary:\n%s", b.String())
	}
}

// TestBadInputWritesNothing: bad answers write nothing, and a data
// directory that Open created is removed again.
func TestBadInputWritesNothing(t *testing.T) {
	iface := hostIface(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := open(t, dir)
	a := good(iface)
	a.Gateway = "198.51.100.1"
	_, err := s.Write(a)
	var bad InputError
	if !errors.As(err, &bad) || bad.Of(FieldGateway) == nil {
		t.Fatalf("Write = %v; want the gateway's problem", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory left behind: %v", err)
	}
}

// TestUndoPassword: when the network revision cannot be stored (another
// writer moved the network on: a conflict), the password change is
// undone and nothing is left of the setup.
func TestUndoPassword(t *testing.T) {
	iface := hostIface(t)
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		s := open(t, dir)
		if existing {
			a := good(iface)
			if _, err := s.Write(a); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := s.st.NetworkCurrent()
		// Another writer commits between the questions and the write.
		if _, err := s.st.CommitNetwork(before.Revision, store.Change{User: "x", Source: "api"}, &netcfg.Network{Hostname: "other"}, true); err != nil {
			t.Fatal(err)
		}
		a := good(iface)
		a.Password, a.PasswordAgain = "a brand new password", "a brand new password"
		_, err := s.Write(a)
		var conflict *store.ConflictError
		if !errors.As(err, &conflict) {
			t.Fatalf("existing=%v: Write = %v; want a conflict", existing, err)
		}
		if existing {
			checkPassword(t, s.st, goodPassword)
		} else if users, _ := s.st.Users(); len(users) != 0 {
			t.Errorf("the first administrator was left behind: %+v", users)
		}
		s.Close()
	}
}

// TestLocked: a store held by another process (here another Store, which
// the lock refuses alike) is refused, with the words the console shows.
func TestLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = Open(Options{DataDir: dir})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open = %v; want store.ErrLocked", err)
	}
	if want := "Fulcrum is running (the store is locked): change the network in the web UI or stop Fulcrum first"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestUnconfirmedNotAdopted: a network change still in its confirm
// window when Fulcrum stopped is not what the setup builds on.
func TestUnconfirmedNotAdopted(t *testing.T) {
	iface := hostIface(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := open(t, dir)
	if _, err := s.Write(good(iface)); err != nil {
		t.Fatal(err)
	}
	n := s.Network(good(iface))
	n.Hostname = "unconfirmed"
	if _, err := s.st.CommitNetwork(1, store.Change{User: "bal", Source: "wui"}, n, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if a := s.Stored(iface); a.Hostname != "lb1" {
		t.Errorf("stored host name %q, want the confirmed lb1", a.Hostname)
	}
	res, err := s.Write(s.Stored(iface))
	if err != nil || res.Revision != 3 || res.Network.Hostname != "lb1" {
		t.Errorf("Write: %+v, %v", res, err)
	}
}
