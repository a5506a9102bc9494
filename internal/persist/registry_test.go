package persist

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestModeRegistry checks the registries of persistence modes and of the
// values of "always check persist": names, labels and LoadMaster values
// are unique and set, and the lookups read the same registries.
func TestModeRegistry(t *testing.T) {
	names, labels, lms := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range Registered() {
		if m.Name == "" || m.Label == "" || names[m.Name] || labels[m.Label] || (m.LoadMaster != "" && lms[m.LoadMaster]) {
			t.Errorf("mode %+v: empty or registered twice", m)
		}
		names[m.Name], labels[m.Label], lms[m.LoadMaster] = true, true, true
		if got, ok := Lookup(m.Name); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%s) = %+v, %v", m.Name, got, ok)
		}
		if m.LoadMaster != "" {
			if got, ok := FromLoadMaster(m.LoadMaster); !ok || got.Name != m.Name {
				t.Errorf("FromLoadMaster(%s) = %+v, %v", m.LoadMaster, got, ok)
			}
		}
	}
	if got := slices.Sorted(slices.Values(Names())); !slices.Equal(got, Modes()) {
		t.Errorf("Names() %v and Modes() %v differ", Names(), Modes())
	}
	if _, ok := Lookup("sticky"); ok {
		t.Error(`Lookup("sticky") found a mode`)
	}
	seen, numbers := map[Always]bool{}, map[int]bool{}
	for _, a := range AlwaysRegistered() {
		if a.Name == "" || a.Label == "" || seen[a.Always] || numbers[a.LoadMaster] {
			t.Errorf("always persist %+v: empty or registered twice", a)
		}
		seen[a.Always], numbers[a.LoadMaster] = true, true
		if got, err := ParseAlways(a.Name); err != nil || got != a.Always {
			t.Errorf("ParseAlways(%s) = %v, %v", a.Name, got, err)
		}
	}
	if _, err := ParseAlways("maybe"); err == nil || err.Error() != `always persist must be no, yes or accept-changes, got "maybe"` {
		t.Errorf(`ParseAlways("maybe"): %v`, err)
	}
}

// TestModeRegistryDocumented checks that docs/persistence-and-scheduling.md
// describes the key of every registered persistence mode (none has none).
func TestModeRegistryDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/persistence-and-scheduling.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Registered() {
		if m.Name != ModeNone && !strings.Contains(string(doc), "\n| `"+m.Name+"` | ") {
			t.Errorf("docs/persistence-and-scheduling.md has no row for persistence mode %s", m.Name)
		}
	}
}
