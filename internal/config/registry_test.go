package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// TestRegistriesAccepted checks that validation accepts every scheduling
// method, persistence mode and "always check persist" value of the
// balance and persist registries, and names them in registry order.
func TestRegistriesAccepted(t *testing.T) {
	if !slices.Equal(Schedules, balance.Names()) || !slices.Equal(PersistModes, persist.Names()) ||
		!slices.Equal(AlwaysPersistModes, persist.AlwaysNames()) {
		t.Fatalf("allowed values %v, %v, %v differ from the registries", Schedules, PersistModes, AlwaysPersistModes)
	}
	for _, m := range balance.Registered() {
		c := mustDecode(t, sample)
		c.VirtualServices[0].Schedule = m.Name
		if err := c.Validate(); err != nil {
			t.Errorf("schedule %s: %v", m.Name, err)
		}
	}
	for _, m := range persist.Registered() {
		c := mustDecode(t, sample)
		v := &c.VirtualServices[0]
		v.Persistence = Persistence{Mode: m.Name, Timeout: 60, Cookie: "sticky", QueryTag: "session"}
		if !persist.NeedsHTTP(m.Name) {
			v.Type = "gen" // udpsip on a generic tcp (SIP) service; none, src and ssl on any
		}
		if err := c.Validate(); err != nil {
			t.Errorf("persistence mode %s: %v", m.Name, err)
		}
	}
	for _, a := range persist.AlwaysRegistered() {
		c := mustDecode(t, sample)
		c.Options.AlwaysPersist = a.Name
		if err := c.Validate(); err != nil {
			t.Errorf("alwaysPersist %s: %v", a.Name, err)
		}
	}
	c := mustDecode(t, sample)
	c.VirtualServices[0].Schedule, c.VirtualServices[0].Persistence.Mode, c.Options.AlwaysPersist = "fastest", "sticky", "sometimes"
	if err := c.Validate(); err == nil || strings.Count(err.Error(), "must be one of") != 3 {
		t.Errorf("unregistered values: %v", err)
	}
}

// TestRegistriesDocumented checks that the doc comments the configuration
// reference is generated from list the registered values, in registry
// order.
func TestRegistriesDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "model.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true // descend to the type declarations
		}
		if st, ok := ts.Type.(*ast.StructType); ok {
			for _, fld := range st.Fields.List {
				for _, name := range fld.Names {
					docs[ts.Name.Name+"."+name.Name] = strings.Join(strings.Fields(fld.Doc.Text()), " ")
				}
			}
		}
		return false
	})
	for field, names := range map[string][]string{
		"VirtualService.Schedule": balance.Names(),
		"Persistence.Mode":        persist.Names(),
		"Options.AlwaysPersist":   persist.AlwaysNames(),
	} {
		words := strings.FieldsFunc(docs[field], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' })
		at := 0
		for _, n := range names {
			i := slices.Index(words[at:], n)
			if i < 0 {
				t.Errorf("the doc comment of %s does not name %s after %v: %q", field, n, names[:slices.Index(names, n)], docs[field])
				break
			}
			at += i + 1
		}
	}
}
