package main

import "testing"

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"127.1.2.3:0", true},
		{"[::1]:6060", true},
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"192.0.2.1:6060", false},
		{"localhost:6060", false}, // names are refused
		{"127.0.0.1", false},      // no port
		{"", false},
	} {
		err := checkLoopback(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
