package events

import (
	"os"
	"strings"
	"testing"
)

// TestKindsDocumented: docs/observability.md names every kind of event.
func TestKindsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if !strings.Contains(string(b), "`"+k+"`") {
			t.Errorf("docs/observability.md does not list the event kind `%s`", k)
		}
	}
}
