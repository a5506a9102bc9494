package config

import "testing"

// FuzzDecode feeds arbitrary documents to Decode and Validate: neither may
// panic, a decoded document must validate or fail with field errors, and a
// valid configuration must survive an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"virtualServices":[{"address":"::1","port":443,"type":"http","tls":{"offload":true}}]}`))
	f.Add([]byte("options: {health: {interval: 9}}\nvirtualServices: []\n"))
	f.Add([]byte(`{"virtualServices":[{"address":"127.0.0.1","port":80,"subVSs":[{"nickname":"a"}],"type":"http"}]}`))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Decode(doc)
		if err != nil {
			if _, ok := IsErrors(err); !ok {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			return
		}
		c.AssignIDs(nil)
		if err := c.Validate(); err != nil {
			if _, ok := IsErrors(err); !ok {
				t.Fatalf("validate error is %T", err)
			}
			return
		}
		y, err := EncodeYAML(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(y)
		if err != nil {
			t.Fatalf("re-decode of valid config: %v\n%s", err, y)
		}
		if !Equal(c, back) {
			t.Fatalf("round trip differs:\n%s", FormatDiff(Diff(c, back)))
		}
	})
}

// FuzzParsePorts checks the extra-ports parser never panics and only returns
// ports in range.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"80", "1-64", "8443,9000-9010", "-", "65535-65535", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePorts(s)
		if err != nil {
			return
		}
		if len(ports) > MaxExtraPorts {
			t.Fatalf("%d ports", len(ports))
		}
		for _, p := range ports {
			if p < 1 || p > 65535 {
				t.Fatalf("port %d out of range", p)
			}
		}
	})
}
