package admin

import (
	"strings"
	"testing"
)

func TestRemoteHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1:4431", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"192.0.2.7", "192.0.2.7"},
		{"", ""},
		{"@", "@"},
		{strings.Repeat("a", 100) + ":1", strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		if got := RemoteHost(tt.in); got != tt.want {
			t.Errorf("RemoteHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
