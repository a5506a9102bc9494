package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// results is everything one run measured (results.json).
type results struct {
	Started  string         `json:"started"`
	Finished string         `json:"finished,omitempty"`
	Proxies  []string       `json:"proxies"`
	Machine  machine        `json:"machine"`
	Settings map[string]any `json:"settings"`
	Cases    []caseResult   `json:"cases"`
}

// caseResult is one case: a cell per proxy.
type caseResult struct {
	Name       string `json:"name"`
	What       string `json:"what"`
	Acceptance string `json:"acceptance,omitempty"`
	// Issue is the issue whose acceptance the case checks.
	Issue int     `json:"issue,omitempty"`
	Cells []*cell `json:"cells"`
}

// cell is one proxy in one case.
type cell struct {
	Proxy string `json:"proxy"`
	// Status is empty when measured, else why not ("n/a: …",
	// "failed: …").
	Status string `json:"status,omitempty"`
	// Pass is the verdict against the issue's acceptance, when the case
	// has one.
	Pass    *bool    `json:"pass,omitempty"`
	Figures []figure `json:"figures,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	// Rows is a per-item table (smuggling cases, oversized heads).
	Rows []map[string]any `json:"rows,omitempty"`
}

// figure is one named value of a cell, in the order measured.
type figure struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

func (c *cell) add(name string, v any)  { c.Figures = append(c.Figures, figure{name, v}) }
func (c *cell) note(f string, a ...any) { c.Notes = append(c.Notes, fmt.Sprintf(f, a...)) }
func (c *cell) verdict(ok bool)         { c.Pass = &ok }

func writeResults(dir string, res *results, final bool) error {
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	md := report(res)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if final {
		fmt.Print(md)
		fmt.Printf("\nresults in %s\n", dir)
	}
	return nil
}

func verdictText(c *cell) string {
	switch {
	case c.Status != "":
		return c.Status
	case c.Pass == nil:
		return "reported"
	case *c.Pass:
		return "**pass**"
	default:
		return "**FAIL**"
	}
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%.2f", x)
	case string:
		return strings.Join(strings.Fields(x), " ")
	case map[string]int, map[int]int, map[string]int64:
		b, _ := json.Marshal(x)
		return strings.ReplaceAll(string(b), "\"", "")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return strings.ReplaceAll(string(b), "\"", "")
	}
}

// report renders the Markdown report.
func report(res *results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Reliability suite — %s\n\n", res.Started)
	m := res.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), kernel %s, load average %s before, %s after.  \n", m.NProc, m.CPU, m.Kernel, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "Versions: fulcrum `%s`; haproxy `%s`; `%s`.  \n", m.Versions["fulcrum"], m.Versions["haproxy"], m.Versions["go"])
	s, _ := json.Marshal(res.Settings)
	fmt.Fprintf(&b, "Settings: `%s`\n\n", s)
	b.WriteString("## Summary\n\n| case | " + strings.Join(res.Proxies, " | ") + " |\n|---|" + strings.Repeat("---|", len(res.Proxies)) + "\n")
	for _, c := range res.Cases {
		fmt.Fprintf(&b, "| [%s](#%s) |", c.Name, c.Name)
		for _, p := range res.Proxies {
			v := ""
			for _, cl := range c.Cells {
				if cl.Proxy == p {
					v = verdictText(cl)
				}
			}
			fmt.Fprintf(&b, " %s |", v)
		}
		b.WriteString("\n")
	}
	for _, c := range res.Cases {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", c.Name, c.What)
		if c.Acceptance != "" {
			fmt.Fprintf(&b, "\nAcceptance (issue %d): %s\n", c.Issue, c.Acceptance)
		}
		// one table: figures as rows, proxies as columns
		var names []string
		seen := map[string]bool{}
		for _, cl := range c.Cells {
			for _, f := range cl.Figures {
				if !seen[f.Name] {
					seen[f.Name] = true
					names = append(names, f.Name)
				}
			}
		}
		b.WriteString("\n| | " + strings.Join(res.Proxies, " | ") + " |\n|---|" + strings.Repeat("---|", len(res.Proxies)) + "\n")
		b.WriteString("| verdict |")
		for _, p := range res.Proxies {
			fmt.Fprintf(&b, " %s |", verdictText(cellOf(c, p)))
		}
		b.WriteString("\n")
		for _, n := range names {
			fmt.Fprintf(&b, "| %s |", n)
			for _, p := range res.Proxies {
				v := ""
				if cl := cellOf(c, p); cl != nil {
					for _, f := range cl.Figures {
						if f.Name == n {
							v = fmtValue(f.Value)
						}
					}
				}
				fmt.Fprintf(&b, " %s |", strings.ReplaceAll(v, "|", "/"))
			}
			b.WriteString("\n")
		}
		for _, cl := range c.Cells {
			for _, n := range cl.Notes {
				fmt.Fprintf(&b, "\n- %s: %s", cl.Proxy, n)
			}
		}
		if len(c.Cells) > 0 && cellsNoted(c) {
			b.WriteString("\n")
		}
		for _, cl := range c.Cells {
			if len(cl.Rows) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n%s, item by item:\n\n", cl.Proxy)
			var cols []string
			for k := range cl.Rows[0] {
				cols = append(cols, k)
			}
			cols = orderCols(cols)
			b.WriteString("| " + strings.Join(cols, " | ") + " |\n|" + strings.Repeat("---|", len(cols)) + "\n")
			for _, r := range cl.Rows {
				b.WriteString("|")
				for _, k := range cols {
					fmt.Fprintf(&b, " %s |", strings.ReplaceAll(fmtValue(r[k]), "|", "/"))
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func cellsNoted(c caseResult) bool {
	for _, cl := range c.Cells {
		if len(cl.Notes) > 0 {
			return true
		}
	}
	return false
}

// orderCols puts "name" first and "ok" second, the rest sorted.
func orderCols(cols []string) []string {
	var out []string
	for _, k := range []string{"name", "ok"} {
		for _, c := range cols {
			if c == k {
				out = append(out, c)
			}
		}
	}
	var rest []string
	for _, c := range cols {
		if c != "name" && c != "ok" {
			rest = append(rest, c)
		}
	}
	for i := range rest {
		for j := i + 1; j < len(rest); j++ {
			if rest[j] < rest[i] {
				rest[i], rest[j] = rest[j], rest[i]
			}
		}
	}
	return append(out, rest...)
}

func cellOf(c caseResult, proxy string) *cell {
	for _, cl := range c.Cells {
		if cl.Proxy == proxy {
			return cl
		}
	}
	return nil
}
