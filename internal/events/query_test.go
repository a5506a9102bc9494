package events

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  Query
		param string // the parameter an error names; "" for none
	}{
		{"", Query{Filter: Filter{MaxSeverity: -1}, Limit: 100}, ""},
		{"severity=warning&kind=rs.&q=+web+&before=42&limit=7", Query{Filter: Filter{MaxSeverity: Warning, Kind: "rs.", Text: "web", Before: 42}, Limit: 7}, ""},
		{"kind=admin.login-failed&limit=0", Query{Filter: Filter{MaxSeverity: -1, Kind: KindLoginFailed}, Limit: 0}, ""},
		{"kind=network", Query{Filter: Filter{MaxSeverity: -1, Kind: KindNetwork}, Limit: 100}, ""},
		{"severity=emerg", Query{Filter: Filter{MaxSeverity: Emerg}, Limit: 100}, ""},
		{"severity=ERR", Query{}, "severity"},
		{"severity=4", Query{}, "severity"},
		{"kind=rs", Query{}, "kind"},
		{"kind=rs.*", Query{}, "kind"},
		{"before=0", Query{}, "before"},
		{"before=-3", Query{}, "before"},
		{"before=99999999999999999999999", Query{}, "before"},
		{"limit=-1", Query{}, "limit"},
		{"limit=1e3", Query{}, "limit"},
		{"limit=1234567890", Query{}, "limit"},
		{"q=" + strings.Repeat("x", MaxQueryText+1), Query{}, "q"},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseQuery(v.Get, 100)
		var qe *QueryError
		switch {
		case tc.param == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.param == "" && got != tc.want:
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		case tc.param != "" && (!errors.As(err, &qe) || qe.Param != tc.param || !strings.HasPrefix(err.Error(), "query parameter "+tc.param+": ")):
			t.Errorf("%q: error %v, want one naming %s", tc.query, err, tc.param)
		}
	}
}

func TestQueryRunPages(t *testing.T) {
	b := NewBus(0)
	for i := range 25 {
		b.Publish(Event{Severity: Severity(i % 8), Kind: KindSystem, Message: "event " + strconv.Itoa(i)})
	}
	var seqs []uint64
	q := Query{Filter: Filter{MaxSeverity: Warning}, Limit: 4}
	for range 20 {
		list, older := q.Run(b)
		for _, e := range list {
			if e.Severity > Warning {
				t.Errorf("event %d of severity %s", e.Seq, e.Severity)
			}
			seqs = append(seqs, e.Seq)
		}
		if older == 0 {
			break
		}
		q.Filter.Before = older
	}
	// Severities 0-4 of every 8: seqs 1-5, 9-13, 17-21, 25.
	want := []uint64{25, 21, 20, 19, 18, 17, 13, 12, 11, 10, 9, 5, 4, 3, 2, 1}
	if !slices.Equal(seqs, want) {
		t.Errorf("pages gave %v, want %v", seqs, want)
	}
	if list, older := (Query{Filter: Filter{MaxSeverity: -1}}).Run(nil); list == nil || len(list) != 0 || older != 0 {
		t.Errorf("nil bus: %v %d", list, older)
	}
}

// TestKindsComplete: Kinds lists every Kind constant of the package, and
// every kind belongs to a group.
func TestKindsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if strings.HasPrefix(name.Name, "Kind") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						s, _ := strconv.Unquote(lit.Value)
						consts = append(consts, s)
					}
				}
			}
		}
		return true
	})
	if len(consts) == 0 || !slices.Equal(consts, Kinds) {
		t.Errorf("Kind constants %v, Kinds %v", consts, Kinds)
	}
	for _, k := range Kinds {
		if !slices.ContainsFunc(Groups, func(g Group) bool { return strings.HasPrefix(k, g.Prefix) }) {
			t.Errorf("kind %s is in no group", k)
		}
		if !ValidKindFilter(k) {
			t.Errorf("kind %s is not a valid filter", k)
		}
	}
}

// FuzzParseQuery: any query either parses into a filter within bounds or
// is refused naming one of the parameters; nothing panics.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "severity=warning&kind=rs.&q=web&before=42&limit=7", "severity=x", "kind=%00", "before=18446744073709551615",
		"limit=999999999", "q=%ff%fe", "before=-0"} {
		f.Add(s)
	}
	params := []string{"severity", "kind", "q", "before", "limit"}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v.Get, 100)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) || !slices.Contains(params, qe.Param) {
				t.Fatalf("%q: error %v names no parameter", raw, err)
			}
			return
		}
		if q.Limit < 0 || len(q.Filter.Text) > MaxQueryText || q.Filter.MaxSeverity > Debug || !ValidKindFilter(q.Filter.Kind) {
			t.Fatalf("%q: out of bounds %+v", raw, q)
		}
		b := NewBus(4)
		b.Publish(Event{Kind: KindSystem, Message: raw})
		_, _ = q.Run(b)
	})
}
