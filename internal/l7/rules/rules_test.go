package rules

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// req is a Request built from fixed values.
type req struct {
	path, target, query, host, body string
	hdr                             map[string]string
}

func (r req) Path() []byte   { return []byte(r.path) }
func (r req) Target() []byte { return []byte(r.target) }
func (r req) Query() []byte  { return []byte(r.query) }
func (r req) Host() []byte   { return []byte(r.host) }
func (r req) Body() []byte   { return []byte(r.body) }
func (r req) Header(n string) []byte {
	for k, v := range r.hdr {
		if strings.EqualFold(k, n) {
			return []byte(v)
		}
	}
	return nil
}

func TestMatch(t *testing.T) {
	r := req{path: "/Api/v1", target: "/Api/v1?x=1", query: "x=1", host: "www.example.com", body: "<soap/>",
		hdr: map[string]string{"User-Agent": "Lync/15"}}
	tests := []struct {
		name string
		rule config.ContentRule
		want bool
	}{
		{"regex url", config.ContentRule{Pattern: "^/Api/"}, true},
		{"regex url case", config.ContentRule{Pattern: "^/api/"}, false},
		{"regex url nocase", config.ContentRule{Pattern: "^/api/", NoCase: true}, true},
		{"prefix", config.ContentRule{MatchType: "prefix", Pattern: "/Api"}, true},
		{"prefix nocase", config.ContentRule{MatchType: "prefix", Pattern: "/API", NoCase: true}, true},
		{"postfix", config.ContentRule{MatchType: "postfix", Pattern: "v1"}, true},
		{"postfix nocase", config.ContentRule{MatchType: "postfix", Pattern: "V1", NoCase: true}, true},
		{"postfix miss", config.ContentRule{MatchType: "postfix", Pattern: "V1"}, false},
		{"negate", config.ContentRule{MatchType: "prefix", Pattern: "/Api", Negate: true}, false},
		{"incQuery", config.ContentRule{MatchType: "postfix", Pattern: "x=1", IncQuery: true}, true},
		{"incHost", config.ContentRule{MatchType: "prefix", Pattern: "www.example.com/Api", IncHost: true}, true},
		{"host", config.ContentRule{Match: "host", MatchType: "postfix", Pattern: ".example.com"}, true},
		{"header", config.ContentRule{Match: "header", Header: "user-agent", Pattern: "^Lync/"}, true},
		{"missing header", config.ContentRule{Match: "header", Header: "X-None", Pattern: "."}, false},
		{"missing header negated", config.ContentRule{Match: "header", Header: "X-None", Pattern: ".", Negate: true}, true},
		{"query", config.ContentRule{Match: "query", Pattern: "^x=1$"}, true},
		{"body", config.ContentRule{Match: "body", Pattern: "<soap"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Name = "r"
			set, err := Compile([]config.ContentRule{tt.rule})
			if err != nil {
				t.Fatal(err)
			}
			rs, _ := set.Lookup([]string{"r"})
			var f Flags
			if got := rs[0].Match(r, &f); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	set, err := Compile([]config.ContentRule{
		{Name: "set3", Pattern: "^/a", SetFlag: 3},
		{Name: "need3", Pattern: ".", OnlyOnFlag: 3},
		{Name: "not3", Pattern: ".", OnlyOnNoFlag: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := set.Lookup([]string{"set3", "need3", "not3"})
	var f Flags
	r := req{path: "/b"}
	if rs[0].Match(r, &f) || rs[1].Match(r, &f) || !rs[2].Match(r, &f) {
		t.Fatal("flags wrong without flag 3")
	}
	r.path = "/a"
	if !rs[0].Match(r, &f) || !f.Has(3) || !rs[1].Match(r, &f) || rs[2].Match(r, &f) {
		t.Fatal("flags wrong with flag 3")
	}
	if _, err := set.Lookup([]string{"nope"}); err == nil {
		t.Error("unknown rule found")
	}
}

// editor records changes.
type editor struct {
	h   map[string][]string
	url []byte
}

func (e *editor) AddHeader(n, v []byte) { e.h[string(n)] = append(e.h[string(n)], string(v)) }
func (e *editor) DelHeader(n string)    { delete(e.h, n) }
func (e *editor) EditHeader(n string, fn func([]byte) ([]byte, bool)) {
	for i, v := range e.h[n] {
		if nv, ok := fn([]byte(v)); ok {
			e.h[n][i] = string(nv)
		}
	}
}
func (e *editor) URL() []byte     { return e.url }
func (e *editor) SetURL(u []byte) { e.url = u }

func TestApply(t *testing.T) {
	set, err := Compile([]config.ContentRule{
		{Name: "add", Type: "addHeader", Header: "X-A", Replacement: "1"},
		{Name: "del", Type: "deleteHeader", Header: "X-D"},
		{Name: "rep", Type: "replaceHeader", Header: "X-R", Pattern: `^(\w+)-(\w+)$`, Replacement: `\2-\1 costs $5`},
		{Name: "url", Type: "modifyUrl", Pattern: `^/old/(.*)$`, Replacement: `/new/\1`},
		{Name: "badurl", Type: "modifyUrl", Pattern: `^/new/`, Replacement: `new `},
		{Name: "flagged", Type: "addHeader", Header: "X-F", Replacement: "f", OnlyOnFlag: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := set.Lookup([]string{"add", "del", "rep", "url", "badurl", "flagged"})
	e := &editor{h: map[string][]string{"X-D": {"x"}, "X-R": {"left-right"}}, url: []byte("/old/page")}
	for _, r := range rs {
		r.Apply(e, 0)
	}
	if e.h["X-A"][0] != "1" || e.h["X-D"] != nil || e.h["X-R"][0] != "right-left costs $5" || string(e.url) != "/new/page" || e.h["X-F"] != nil {
		t.Errorf("after rules: %v %q", e.h, e.url)
	}
}

func TestTemplate(t *testing.T) {
	for in, want := range map[string]string{`\1`: "${1}", `a$b`: "a$$b", `\x`: `\x`, `/p/\2\1`: "/p/${2}${1}", `\`: `\`} {
		if got := template(in); got != want {
			t.Errorf("template(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTemplate checks that any replacement compiles to a template that
// expands without panicking and never produces '$' from a group that
// does not exist.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{`\1`, `$1`, `a\9b$`, `${x}`, `\\1`} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^(a)(b)?`)
	f.Fuzz(func(t *testing.T, s string) {
		tmpl := template(s)
		out := re.ReplaceAll([]byte("ab"), []byte(tmpl))
		if !strings.Contains(s, "$") && bytes.Contains(out, []byte("$")) {
			t.Fatalf("template %q of %q expanded to %q", tmpl, s, out)
		}
	})
}
