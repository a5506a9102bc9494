package control

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// auditLog records the entries the controller writes.
type auditLog struct {
	mu      sync.Mutex
	entries []string
}

func (a *auditLog) AuditAs(user, method, remote, action, detail string, success bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, fmt.Sprintf("%s/%s/%s %s %s %v", user, method, remote, action, detail, success))
}

// TestApplyAudits checks that a change a user commits is audited once,
// with the revision and its summary, and that dry runs, changes that
// change nothing and changes Fulcrum makes itself are not.
func TestApplyAudits(t *testing.T) {
	c, _ := newController(t)
	log := &auditLog{}
	c.SetAuditor(log)
	user := Actor{User: "alice", Source: SourceKempAPI, RemoteAddr: "192.0.2.1", Method: "basic"}
	steps := []Change{
		{Actor: user, Mutate: addVS(80), Summary: "add the first"},
		{Actor: user, Mutate: addVS(81), DryRun: true},
		{Actor: user, Mutate: func(*config.Config) error { return nil }},
		{Actor: Actor{User: "demo", Source: SourceSystem}, Mutate: addVS(82)},
		{Actor: user, Mutate: addVS(83)},
	}
	for i, ch := range steps {
		if _, err := c.Apply(ch); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []string{
		"alice/basic/192.0.2.1 config revision 1: add the first true",
		"alice/basic/192.0.2.1 config revision 3: + virtualServices[id=3]; + virtualServices[id=3].realServers[id=3] true",
	}
	if fmt.Sprint(log.entries) != fmt.Sprint(want) {
		t.Errorf("audit entries\n%q\nwant\n%q", log.entries, want)
	}
}
