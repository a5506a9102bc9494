package kempapi

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// TestRegistriesMapped checks that every registered scheduling method,
// persistence mode and value of "always check persist" is mapped to and
// from its LoadMaster value: addvs (or set) with the LoadMaster value
// stores the registered name, and showvs (or get) answers the LoadMaster
// value. A method or mode without a LoadMaster value is marked so in its
// registry and skipped.
func TestRegistriesMapped(t *testing.T) {
	e := newEnv(t, envOpts{})
	port := 1000
	addvs := func(t *testing.T, params url.Values) int {
		t.Helper()
		port++
		params.Set("vs", "192.0.2.70")
		params.Set("port", strconv.Itoa(port))
		params.Set("prot", "tcp")
		id, err := strconv.Atoi(e.ok1("addvs", params.Encode()).data().val("Index"))
		if err != nil {
			t.Fatalf("addvs %v: %v", params, err)
		}
		return id
	}
	for _, m := range balance.Registered() {
		t.Run("schedule "+m.Name, func(t *testing.T) {
			if m.LoadMaster == "" {
				t.Skipf("%s has no LoadMaster value", m.Name)
			}
			id := addvs(t, url.Values{"VStype": {"http"}, "Schedule": {strings.ToUpper(m.LoadMaster)}})
			if got := e.ctl.Current().Config.VirtualServiceByID(id).Schedule; got != m.Name {
				t.Errorf("Schedule=%s stored %q, want %q", m.LoadMaster, got, m.Name)
			}
			if got := e.ok1("showvs", fmt.Sprintf("vs=%d", id)).data().val("Schedule"); got != m.LoadMaster {
				t.Errorf("showvs Schedule = %q, want %q", got, m.LoadMaster)
			}
		})
	}
	for _, m := range persist.Registered() {
		t.Run("persist "+m.Name, func(t *testing.T) {
			if m.LoadMaster == "" {
				t.Skipf("%s has no LoadMaster value", m.Name)
			}
			typ := "gen"
			if persist.NeedsHTTP(m.Name) {
				typ = "http"
			}
			id := addvs(t, url.Values{"VStype": {typ}, "Persist": {m.LoadMaster}, "PersistTimeout": {"600"},
				"Cookie": {"sticky"}, "QueryTag": {"session"}})
			if got := e.ctl.Current().Config.VirtualServiceByID(id).Persistence.Mode; got != m.Name {
				t.Errorf("Persist=%s stored %q, want %q", m.LoadMaster, got, m.Name)
			}
			want := m.LoadMaster
			if m.Name == persist.ModeNone {
				want = "<missing>" // LoadMaster leaves Persist out when there is none
			}
			if got := e.ok1("showvs", fmt.Sprintf("vs=%d", id)).data().val("Persist"); got != want {
				t.Errorf("showvs Persist = %q, want %q", got, want)
			}
		})
	}
	for _, a := range persist.AlwaysRegistered() {
		t.Run("alwayspersist "+a.Name, func(t *testing.T) {
			n := strconv.Itoa(a.LoadMaster)
			e.ok1("set", "param=alwayspersist&value="+n)
			if got := e.ctl.Current().Config.Options.AlwaysPersist; got != a.Name {
				t.Errorf("alwayspersist=%s stored %q, want %q", n, got, a.Name)
			}
			if got := e.ok1("get", "param=alwayspersist").data().val("alwayspersist"); got != n {
				t.Errorf("get alwayspersist = %q, want %s", got, n)
			}
		})
	}
}

// TestRegistriesDocumented checks that docs/kemp-api.md lists the
// LoadMaster values of the registered scheduling methods and persistence
// modes, in registry order.
func TestRegistriesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kemp-api.md")
	if err != nil {
		t.Fatal(err)
	}
	var methods, modes []string
	for _, m := range balance.Registered() {
		if m.LoadMaster != "" {
			methods = append(methods, m.LoadMaster)
		}
	}
	for _, m := range persist.Registered() {
		if m.LoadMaster != "" {
			modes = append(modes, m.LoadMaster)
		}
	}
	for _, row := range []string{
		"| `Schedule` | `schedule` | " + strings.Join(methods, ", ") + " |",
		"| `Persist` | `persistence.mode` | " + strings.Join(modes, ", ") + " |",
	} {
		if !strings.Contains(string(doc), row+"\n") {
			t.Errorf("docs/kemp-api.md lacks the row\n%s", row)
		}
	}
}
