package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
)

// fullDiff is Diff without the shortcut for unchanged services: both
// configurations flattened whole.
func fullDiff(a, b *Config) []Difference {
	fa, fb := flatten(a), flatten(b)
	var out []Difference
	for p, va := range fa {
		vb, ok := fb[p]
		switch {
		case !ok:
			out = append(out, Difference{Path: p, Old: va})
		case string(va) != string(vb):
			out = append(out, Difference{Path: p, Old: va, New: vb})
		}
	}
	for p, vb := range fb {
		if _, ok := fa[p]; !ok {
			out = append(out, Difference{Path: p, New: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// TestDiffShortcutMatchesFullDiff checks that leaving unchanged services
// out of the flattening changes no result.
func TestDiffShortcutMatchesFullDiff(t *testing.T) {
	base := mustDecode(t, sample)
	base.SetDefaults()
	base.AssignIDs(nil)
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"nothing", func(*Config) {}},
		{"weight", func(c *Config) { c.VirtualServices[0].RealServers[1].Weight = 7 }},
		{"option", func(c *Config) { c.Options.SNAT = !c.Options.SNAT }},
		{"add service", func(c *Config) {
			c.VirtualServices = append(c.VirtualServices, VirtualService{ID: 99, Address: "127.0.0.9", Port: 81, Protocol: "tcp"})
		}},
		{"delete service", func(c *Config) { c.VirtualServices = c.VirtualServices[1:] }},
		{"no services (empty list)", func(c *Config) { c.VirtualServices = []VirtualService{} }},
		{"no services (nil)", func(c *Config) { c.VirtualServices = nil }},
		{"reorder", func(c *Config) {
			c.VirtualServices = append(c.VirtualServices[1:], c.VirtualServices[0])
		}},
		{"empty vs nil real servers", func(c *Config) {
			if c.VirtualServices[0].RealServers == nil {
				c.VirtualServices[0].RealServers = []RealServer{}
			}
		}},
		{"duplicate ids (full path)", func(c *Config) {
			c.VirtualServices = append(c.VirtualServices, c.VirtualServices[0])
		}},
		{"id zero (full path)", func(c *Config) { c.VirtualServices[0].ID = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base.Clone()
			tt.mutate(b)
			for _, pair := range [][2]*Config{{base, b}, {b, base}} {
				got, want := Diff(pair[0], pair[1]), fullDiff(pair[0], pair[1])
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Diff:\n%s\nfull diff:\n%s", FormatDiff(got), FormatDiff(want))
				}
			}
		})
	}
}

// TestCloneDeep checks that Clone encodes like the original and shares
// nothing with it.
func TestCloneDeep(t *testing.T) {
	c := mustDecode(t, sample)
	c.SetDefaults()
	c.AssignIDs(nil)
	c.VirtualServices[0].HealthCheck.Headers = map[string]string{"X-A": "1"}
	d := c.Clone()
	ja, _ := json.Marshal(c)
	jb, _ := json.Marshal(d)
	if string(ja) != string(jb) {
		t.Fatal("clone encodes differently")
	}
	d.VirtualServices[0].RealServers[0].Weight++
	d.VirtualServices[0].HealthCheck.Headers["X-A"] = "2"
	*d.VirtualServices[0].RealServers[0].Enabled = !*c.VirtualServices[0].RealServers[0].Enabled
	if Equal(c, d) {
		t.Fatal("modifying the clone changed the original")
	}
	if c.VirtualServices[0].HealthCheck.Headers["X-A"] != "1" {
		t.Fatal("clone shares a map")
	}
}

// bigConfig is 1,000 services with 10 real servers each, IDs assigned.
func bigConfig(tb testing.TB) *Config {
	tb.Helper()
	c := Default()
	for i := range 1000 {
		vs := VirtualService{Address: "127.0.0.1", Port: 10000 + i, Protocol: "tcp"}
		for j := range 10 {
			vs.RealServers = append(vs.RealServers, RealServer{Address: fmt.Sprintf("127.0.%d.%d", j, 1+i%250), Port: 8080})
		}
		c.VirtualServices = append(c.VirtualServices, vs)
	}
	c.SetDefaults()
	c.AssignIDs(nil)
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkClone copies a configuration of 1,000 services × 10 real
// servers.
func BenchmarkClone(b *testing.B) {
	c := bigConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Clone()
	}
}

// BenchmarkDiffOneChange diffs two configurations of 1,000 services × 10
// real servers that differ in one weight.
func BenchmarkDiffOneChange(b *testing.B) {
	a := bigConfig(b)
	c := a.Clone()
	c.VirtualServices[500].RealServers[3].Weight = 1
	b.ReportAllocs()
	for b.Loop() {
		if len(Diff(a, c)) != 1 {
			b.Fatal("want one difference")
		}
	}
}

// BenchmarkValidate validates a configuration of 1,000 services × 10 real
// servers.
func BenchmarkValidate(b *testing.B) {
	c := bigConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSameValue checks the equality that lets Diff skip services.
func TestSameValue(t *testing.T) {
	a := mustDecode(t, sample)
	a.SetDefaults()
	a.AssignIDs(nil)
	a.VirtualServices[0].HealthCheck.Headers = map[string]string{"X-A": "1"}
	same := func(x, y *VirtualService) bool {
		return sameValue(reflect.ValueOf(x).Elem(), reflect.ValueOf(y).Elem())
	}
	tests := []struct {
		name   string
		mutate func(v *VirtualService)
		want   bool
	}{
		{"copy", func(*VirtualService) {}, true},
		{"weight", func(v *VirtualService) { v.RealServers[0].Weight++ }, false},
		{"enabled pointer", func(v *VirtualService) { v.RealServers[0].Enabled = Bool(!IsTrue(v.RealServers[0].Enabled)) }, false},
		{"map value", func(v *VirtualService) { v.HealthCheck.Headers["X-A"] = "2" }, false},
		{"map key", func(v *VirtualService) { v.HealthCheck.Headers = map[string]string{"X-B": "1"} }, false},
		{"nil list", func(v *VirtualService) { v.RealServers = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := a.Clone()
			tt.mutate(&b.VirtualServices[0])
			if got := same(&a.VirtualServices[0], &b.VirtualServices[0]); got != tt.want {
				t.Errorf("sameValue = %v, want %v", got, tt.want)
			}
		})
	}
}
