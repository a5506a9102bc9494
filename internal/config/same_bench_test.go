package config

import (
	"reflect"
	"testing"
)

// BenchmarkSameService compares two equal copies of a service with ten
// real servers, as the data plane and the health monitor do for every
// service of a configuration on every change.
func BenchmarkSameService(b *testing.B) {
	v := &VirtualService{ID: 1, Address: "127.0.1.1", Port: 1000, HealthCheck: HealthCheck{Type: "http", URL: "/health"}}
	for j := range 10 {
		v.RealServers = append(v.RealServers, RealServer{ID: j + 1, Address: "127.0.0.1", Port: 20000 + j, Weight: 1000})
	}
	c := &Config{VirtualServices: []VirtualService{*v}}
	c.SetDefaults()
	a := &c.VirtualServices[0]
	other := CloneService(a)
	b.ReportAllocs()
	for b.Loop() {
		if !SameService(a, other) {
			b.Fatal("a copy differs")
		}
	}
}

// BenchmarkSameServiceReflect is BenchmarkSameService with the reflective
// walk (sameValue) that SameService compiles away, for comparison.
func BenchmarkSameServiceReflect(b *testing.B) {
	v := &VirtualService{ID: 1, Address: "127.0.1.1", Port: 1000, HealthCheck: HealthCheck{Type: "http", URL: "/health"}}
	for j := range 10 {
		v.RealServers = append(v.RealServers, RealServer{ID: j + 1, Address: "127.0.0.1", Port: 20000 + j, Weight: 1000})
	}
	c := &Config{VirtualServices: []VirtualService{*v}}
	c.SetDefaults()
	a := &c.VirtualServices[0]
	other := CloneService(a)
	for b.Loop() {
		if !sameValue(reflect.ValueOf(a).Elem(), reflect.ValueOf(other).Elem()) {
			b.Fatal("a copy differs")
		}
	}
}
