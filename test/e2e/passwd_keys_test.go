package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPasswdRevokeKeys reproduces issue 15, item 9: API keys survive
// `fulcrum passwd`, so a key made with a leaked password outlives the
// reset. passwd now says so, and --revoke-keys revokes them.
func TestPasswdRevokeKeys(t *testing.T) {
	s := serve(t)
	newKey := func() string {
		t.Helper()
		code, body, _ := s.c.do("POST", "/api/v1/api-keys", `{"description":"made with the old password"}`)
		var key struct{ Secret string }
		if code != 201 || json.Unmarshal(body, &key) != nil {
			t.Fatalf("create API key: %d %s", code, body)
		}
		return key.Secret
	}
	works := func(secret string) bool {
		t.Helper()
		c := newClient(t, s.admin, s.dataDir, "", "")
		code, _, _ := c.do("GET", "/api/v1/status", "", "Authorization", "Bearer "+secret)
		return code == 200
	}
	first, second := newKey(), newKey()

	// Without the option the keys keep working, and passwd says so.
	out, rc := run(t, s.dir, "a new long passphrase\n", "passwd", "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "bal has 2 API key(s), which keep working") || !strings.Contains(out, "--revoke-keys") {
		t.Fatalf("passwd: %d %s", rc, out)
	}
	if !works(first) || !works(second) {
		t.Fatal("passwd without --revoke-keys revoked keys")
	}

	out, rc = run(t, s.dir, "", "passwd", "--generate", "--revoke-keys", "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "Revoked 2 API key(s) of bal") {
		t.Fatalf("passwd --revoke-keys: %d %s", rc, out)
	}
	if works(first) || works(second) {
		t.Fatal("a key still works after passwd --revoke-keys")
	}
}
