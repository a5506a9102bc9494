package balance

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestRegistry checks the registry of scheduling methods: names, labels
// and LoadMaster values are unique and set, every method builds a Picker,
// and Names, Lookup and FromLoadMaster read the same registry.
func TestRegistry(t *testing.T) {
	names, labels, lms := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, m := range Registered() {
		if m.Name == "" || m.Label == "" || names[m.Name] || labels[m.Label] || (m.LoadMaster != "" && lms[m.LoadMaster]) {
			t.Errorf("method %+v: empty or registered twice", m)
		}
		names[m.Name], labels[m.Label], lms[m.LoadMaster] = true, true, true
		if !Implemented(m.Name) {
			t.Errorf("%s is registered but not implemented", m.Name)
		}
		p, err := New(m.Name, pool(1, 1))
		if err != nil || p == nil {
			t.Errorf("New(%s): %v", m.Name, err)
		}
		if c, ok := p.(interface{ Close() error }); ok {
			_ = c.Close()
		}
		if got, ok := Lookup(m.Name); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%s) = %+v, %v", m.Name, got, ok)
		}
		if m.LoadMaster != "" {
			if got, ok := FromLoadMaster(m.LoadMaster); !ok || got.Name != m.Name {
				t.Errorf("FromLoadMaster(%s) = %+v, %v", m.LoadMaster, got, ok)
			}
		}
	}
	if got := slices.Sorted(slices.Values(Names())); !slices.Equal(got, Methods()) {
		t.Errorf("Names() %v and Methods() %v differ", Names(), Methods())
	}
	if _, ok := Lookup("fastest"); ok {
		t.Error(`Lookup("fastest") found a method`)
	}
	if _, ok := FromLoadMaster(""); ok {
		t.Error(`FromLoadMaster("") found a method`)
	}
}

// TestRegistryDocumented checks that docs/persistence-and-scheduling.md
// describes every registered scheduling method in its table.
func TestRegistryDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/persistence-and-scheduling.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Registered() {
		if !strings.Contains(string(doc), "\n| `"+m.Name+"` | ") {
			t.Errorf("docs/persistence-and-scheduling.md has no row for scheduling method %s", m.Name)
		}
	}
}
