package edit

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// sample is a configuration with a service (ID 1, real server 1), a
// second service named "web" with a SubVS "api" (real server 2), and a
// certificate.
func sample() *config.Config {
	return &config.Config{
		VirtualServices: []config.VirtualService{
			{ID: 1, Address: "10.0.0.1", Port: 80, RealServers: []config.RealServer{{ID: 1, Address: "10.0.1.1", Port: 8080}}},
			{ID: 2, NickName: "web", Address: "fd00::1", Port: 443, SubVSs: []config.VirtualService{
				{ID: 3, NickName: "api", RealServers: []config.RealServer{{ID: 2, Address: "fd00::2", Port: 8443}}},
			}},
		},
		Certificates: []config.Certificate{{Name: "site", CertPEM: "x"}},
	}
}

func TestEdits(t *testing.T) {
	tests := []struct {
		name    string
		edit    control.Edit
		summary string
		check   func(c *config.Config) bool
	}{
		{"add service", AddVirtualService{VS: config.VirtualService{Address: "10.0.0.9", Port: 81}},
			"add virtual service 10.0.0.9:81", func(c *config.Config) bool { return len(c.VirtualServices) == 3 && c.VirtualServices[2].Port == 81 }},
		{"modify service", ModifyVirtualService{ID: 3, Update: func(_ *config.Config, v, parent *config.VirtualService) error {
			if parent == nil || parent.ID != 2 {
				return errors.New("no parent")
			}
			v.NickName = "api2"
			return nil
		}}, "", func(c *config.Config) bool { return c.VirtualServiceByID(3).NickName == "api2" }},
		{"delete service", DeleteVirtualService{ID: 2}, "delete virtual service web",
			func(c *config.Config) bool { return len(c.VirtualServices) == 1 }},
		{"delete SubVS", DeleteVirtualService{ID: 3}, "delete virtual service api",
			func(c *config.Config) bool { return len(c.VirtualServices[1].SubVSs) == 0 }},
		{"add SubVS", AddSubVS{Parent: 2, VS: config.VirtualService{NickName: "img"}}, "add SubVS img to web",
			func(c *config.Config) bool { return len(c.VirtualServices[1].SubVSs) == 2 }},
		{"add SubVS without a name", AddSubVS{Parent: 1}, "add a SubVS to 10.0.0.1:80",
			func(c *config.Config) bool { return len(c.VirtualServices[0].SubVSs) == 1 }},
		{"add real server", AddRealServer{VS: 3, RS: config.RealServer{Address: "fd00::3", Port: 8443}}, "add real server [fd00::3]:8443 to api",
			func(c *config.Config) bool { return len(c.VirtualServiceByID(3).RealServers) == 2 }},
		{"modify real server", ModifyRealServer{VS: 1, RS: 1, Update: func(rs *config.RealServer) error { rs.Weight = 7; return nil }}, "",
			func(c *config.Config) bool { return c.VirtualServices[0].RealServers[0].Weight == 7 }},
		{"disable real server", SetRealServerEnabled{VS: 1, RS: 1}, "disable real server 10.0.1.1:8080 of 10.0.0.1:80",
			func(c *config.Config) bool { e := c.VirtualServices[0].RealServers[0].Enabled; return e != nil && !*e }},
		{"enable real server", SetRealServerEnabled{VS: 3, RS: 2, Enabled: true}, "enable real server [fd00::2]:8443 of api",
			func(c *config.Config) bool {
				e := c.VirtualServiceByID(3).RealServers[0].Enabled
				return e != nil && *e
			}},
		{"delete real server", DeleteRealServer{VS: 1, RS: 1}, "delete real server 10.0.1.1:8080 of 10.0.0.1:80",
			func(c *config.Config) bool { return len(c.VirtualServices[0].RealServers) == 0 }},
		{"import certificate", ImportCertificate{Cert: config.Certificate{Name: "new", CertPEM: "y"}}, "import certificate new",
			func(c *config.Config) bool { return len(c.Certificates) == 2 }},
		{"import intermediate", ImportCertificate{Cert: config.Certificate{Name: "ca", Intermediate: true}}, "import intermediate certificate ca",
			func(c *config.Config) bool { return c.Certificates[1].Intermediate }},
		{"replace certificate", ImportCertificate{Cert: config.Certificate{Name: "site", CertPEM: "z"}, Replace: true}, "import certificate site",
			func(c *config.Config) bool { return len(c.Certificates) == 1 && c.Certificates[0].CertPEM == "z" }},
		{"delete certificate", DeleteCertificate{Name: "site"}, "delete certificate site",
			func(c *config.Config) bool { return len(c.Certificates) == 0 }},
		{"all", All{SetRealServerEnabled{VS: 1, RS: 1}, DeleteCertificate{Name: "site"}}, "disable real server 10.0.1.1:8080 of 10.0.0.1:80; delete certificate site",
			func(c *config.Config) bool { return len(c.Certificates) == 0 }},
		{"all with an undescribed edit", All{DeleteCertificate{Name: "site"}, ModifyRealServer{VS: 1, RS: 1}}, "",
			func(c *config.Config) bool { return len(c.Certificates) == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sample()
			summary, err := tt.edit.Apply(c)
			if err != nil {
				t.Fatal(err)
			}
			if summary != tt.summary {
				t.Errorf("summary %q, want %q", summary, tt.summary)
			}
			if !tt.check(c) {
				t.Errorf("the edit did not make its change: %+v", c)
			}
		})
	}
}

func TestEditRefusals(t *testing.T) {
	tests := []struct {
		name string
		edit control.Edit
		msg  string
	}{
		{"modify missing service", ModifyVirtualService{ID: 9}, "virtual service 9: not found"},
		{"delete missing service", DeleteVirtualService{ID: 9}, "virtual service 9: not found"},
		{"SubVS of a missing service", AddSubVS{Parent: 9}, "parent virtual service 9: not found"},
		{"real server of a missing service", AddRealServer{VS: 9}, "virtual service 9: not found"},
		{"modify missing real server", ModifyRealServer{VS: 1, RS: 9}, "real server 9 of virtual service 1: not found"},
		{"enable missing real server", SetRealServerEnabled{VS: 9, RS: 1}, "virtual service 9: not found"},
		{"delete missing real server", DeleteRealServer{VS: 3, RS: 1}, "real server 1 of virtual service 3: not found"},
		{"delete missing certificate", DeleteCertificate{Name: "nope"}, `certificate "nope": not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.edit.Apply(sample())
			if !errors.Is(err, control.ErrNotFound) || err.Error() != tt.msg {
				t.Errorf("error %v, want %q wrapping control.ErrNotFound", err, tt.msg)
			}
		})
	}
	_, err := ImportCertificate{Cert: config.Certificate{Name: "site"}}.Apply(sample())
	var exists *ExistsError
	if !errors.As(err, &exists) || exists.Name != "site" || exists.Index != 0 || err.Error() != `certificate "site" already exists` {
		t.Errorf("import over a certificate without replace: %v", err)
	}
	update := errors.New("bad parameter")
	c := sample()
	_, err = All{DeleteCertificate{Name: "site"}, ModifyRealServer{VS: 1, RS: 1, Update: func(*config.RealServer) error { return update }}}.Apply(c)
	if !errors.Is(err, update) {
		t.Errorf("All with a failing edit: %v", err)
	}
}

// TestLongAllSummary checks that All leaves a long summary to the diff.
func TestLongAllSummary(t *testing.T) {
	var all All
	c := sample()
	for i := range 20 {
		all = append(all, AddRealServer{VS: 1, RS: config.RealServer{Address: "10.0.2.1", Port: 9000 + i}})
	}
	summary, err := all.Apply(c)
	if err != nil || summary != "" || len(c.VirtualServices[0].RealServers) != 21 {
		t.Errorf("summary %q, %d real servers, %v", summary, len(c.VirtualServices[0].RealServers), err)
	}
}

// TestEditThroughController applies edits through the write path: the
// revision's summary is the edit's, IDs are assigned, and a change's own
// Summary wins.
func TestEditThroughController(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctl, err := control.New(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ctl.Apply(control.Change{Edit: AddVirtualService{VS: config.VirtualService{NickName: "web", Address: "127.0.0.2", Port: 80,
		RealServers: []config.RealServer{{Address: "127.0.0.3", Port: 8080}}}}})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Snapshot.Config.VirtualServices[0]
	if res.Snapshot.Change.Summary != "add virtual service web" || v.ID != 1 || v.RealServers[0].ID != 1 {
		t.Errorf("summary %q, ids %d and %d", res.Snapshot.Change.Summary, v.ID, v.RealServers[0].ID)
	}
	res, err = ctl.Apply(control.Change{Summary: "drain", Edit: SetRealServerEnabled{VS: 1, RS: 1}})
	if err != nil || res.Snapshot.Change.Summary != "drain" {
		t.Errorf("summary %q: %v", res.Snapshot.Change.Summary, err)
	}
	if _, err := ctl.Apply(control.Change{Edit: DeleteRealServer{VS: 1, RS: 5}}); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("missing real server: %v", err)
	}
	res, err = ctl.Apply(control.Change{Edit: ModifyRealServer{VS: 1, RS: 1, Update: func(rs *config.RealServer) error { rs.Weight = 5; return nil }}})
	if err != nil || !strings.Contains(res.Snapshot.Change.Summary, "weight") {
		t.Errorf("summary of a modification %q, want one from the diff: %v", res.Snapshot.Change.Summary, err)
	}
}
