package appliance

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestStartNetworkOptions: --manage-network off leaves the host alone and
// says why; an unknown mode is refused; without --admin-addr the admin
// listener takes the network settings' adminAddress; a network revision
// left unconfirmed is rolled back before anything starts.
func TestStartNetworkOptions(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", ManageNetwork: "sometimes", BcryptCost: bcrypt.MinCost, Logger: quiet}); err == nil ||
		!strings.Contains(err.Error(), "--manage-network must be auto, on or off") {
		t.Fatalf("an unknown --manage-network: %v", err)
	}

	// The settings name an admin address; a later change, unconfirmed,
	// names another: Fulcrum stopped inside its window.
	port := testkit.FreePort(t, "127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitNetwork(0, store.Change{User: "console", Source: "console"}, &netcfg.Network{AdminAddress: addr}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitNetwork(1, store.Change{User: "bal", Source: "api"}, &netcfg.Network{AdminAddress: "127.0.0.1:1"}, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := Start(Options{DataDir: dir, ManageNetwork: ManageOff, Out: &out, BcryptCost: bcrypt.MinCost, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}()
	if a.AdminAddr() != addr {
		t.Errorf("admin listener on %s, want the settings' %s", a.AdminAddr(), addr)
	}
	if !strings.Contains(out.String(), "web UI at https://"+addr+"/") {
		t.Errorf("the start-up line does not name the web UI:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "The host's network is not managed: Fulcrum was started with --manage-network off") {
		t.Errorf("no word that the host is not managed:\n%s", out.String())
	}
	snap := a.Control.Network()
	if a.Host != nil || snap.Plan.Managed || snap.Revision != 3 || snap.Network.AdminAddress != addr || snap.Change.Source != "system" {
		t.Errorf("network at start: host %v, %+v", a.Host, snap)
	}
}
