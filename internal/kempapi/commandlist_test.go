package kempapi

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// TestCommandListDocumented checks the command list of docs/kemp-api.md
// against the code: one row per command, sorted by name; every command
// Fulcrum answers is "supported", "supported with a difference" (or
// "Fulcrum's own"), every command it refuses with a reason is "refused",
// and no row names a command the code does not know.
func TestCommandListDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/kemp-api.md")
	if err != nil {
		t.Fatal(err)
	}
	const head = "| command | status | difference or reason |\n|---|---|---|\n"
	text := string(doc)
	i := strings.Index(text, head)
	if i < 0 {
		t.Fatal("docs/kemp-api.md has no command list")
	}
	rows := map[string]string{}
	var order []string
	for _, line := range strings.Split(text[i+len(head):], "\n") {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) != 5 {
			t.Errorf("row %q: want three cells", line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		status := strings.TrimSpace(cells[2])
		if _, dup := rows[name]; dup {
			t.Errorf("%s: two rows", name)
		}
		rows[name] = status
		order = append(order, name)
		reason := strings.TrimSpace(cells[3])
		if (status == "refused" || status == "supported with a difference") && reason == "" {
			t.Errorf("%s: %s without saying which or why", name, status)
		}
	}
	if !sort.StringsAreSorted(order) {
		t.Errorf("the command list is not sorted by name: %v", order)
	}
	for name := range commands {
		switch rows[name] {
		case "supported", "supported with a difference", "Fulcrum's own":
		case "":
			t.Errorf("%s: answered, but not in the command list", name)
		default:
			t.Errorf("%s: answered, but listed as %q", name, rows[name])
		}
	}
	for name := range notAvailable {
		if rows[name] != "refused" {
			t.Errorf("%s: refused with a reason, but listed as %q", name, rows[name])
		}
	}
	for name := range rows {
		_, answered := commands[name]
		_, refused := notAvailable[name]
		if !answered && !refused {
			t.Errorf("%s: in the command list, but the code does not know it", name)
		}
	}
}
