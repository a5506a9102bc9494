// Package rules compiles LoadMaster-style content rules (config.ContentRule)
// once per configuration generation and evaluates them per request: match
// rules that select a SubVS or set flags, and rules that add, delete or
// replace headers or rewrite the URL of requests and responses.
package rules

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// MaxBody is how much of a request body a "body" match rule sees.
const MaxBody = 16 << 10

// Request is what match rules look at. Implementations return slices that
// stay valid for the request's lifetime and must not be modified.
type Request interface {
	// Path is the request path without the query, e.g. "/a/b".
	Path() []byte
	// Target is the path with the query, as sent ("/a/b?x=1").
	Target() []byte
	// Query is the query string without '?', or nil.
	Query() []byte
	// Host is the Host header (or :authority) without port.
	Host() []byte
	// Header returns the first value of the named header, or nil.
	Header(name string) []byte
	// Body returns up to MaxBody bytes of the request body (only for
	// bodies with a Content-Length), or nil.
	Body() []byte
}

// Editor is what header and URL rules change: a request's or a response's
// header fields, and the request target (for responses: the Location).
type Editor interface {
	// AddHeader appends a header field.
	AddHeader(name, value []byte)
	// DelHeader removes every field named name.
	DelHeader(name string)
	// EditHeader calls fn with the value of every field named name and
	// replaces the value with what fn returns when ok.
	EditHeader(name string, fn func(v []byte) (nv []byte, ok bool))
	// URL returns the request target, or the response's Location (nil
	// when there is none).
	URL() []byte
	// SetURL replaces what URL returned.
	SetURL(u []byte)
}

// Flags are the flags 1-9 that match rules set for one request.
type Flags uint16

// Has reports whether flag n is set.
func (f Flags) Has(n int) bool { return n > 0 && f&(1<<n) != 0 }

// Set sets flag n (0 sets nothing).
func (f *Flags) Set(n int) {
	if n > 0 {
		*f |= 1 << n
	}
}

// Rule is one compiled content rule.
type Rule struct {
	// Name is the rule's name.
	Name string

	typ      string
	match    string
	header   string
	mtype    string
	pattern  []byte
	re       *regexp.Regexp
	repl     []byte
	nocase   bool
	negate   bool
	incHost  bool
	incQuery bool
	setFlag  int
	onlyOn   int
	onlyOff  int
}

// Set is the compiled rules of a configuration, by name.
type Set struct {
	byName map[string]*Rule
}

// Compile compiles every rule; an invalid one is an error naming it.
func Compile(list []config.ContentRule) (*Set, error) {
	s := &Set{byName: make(map[string]*Rule, len(list))}
	for _, c := range list {
		r, err := compile(c)
		if err != nil {
			return nil, fmt.Errorf("content rule %q: %w", c.Name, err)
		}
		s.byName[c.Name] = r
	}
	return s, nil
}

func compile(c config.ContentRule) (*Rule, error) {
	r := &Rule{Name: c.Name, typ: c.Type, match: c.Match, header: c.Header, mtype: c.MatchType,
		nocase: c.NoCase, negate: c.Negate, incHost: c.IncHost, incQuery: c.IncQuery,
		setFlag: c.SetFlag, onlyOn: c.OnlyOnFlag, onlyOff: c.OnlyOnNoFlag}
	if r.typ == "" {
		r.typ = "match"
	}
	if r.match == "" {
		r.match = "url"
	}
	if r.mtype == "" {
		r.mtype = "regex"
	}
	r.pattern = []byte(c.Pattern)
	if r.mtype == "regex" || r.typ == "replaceHeader" || r.typ == "modifyUrl" {
		p := c.Pattern
		if c.NoCase {
			p = "(?i)" + p
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
		r.re = re
	} else if c.NoCase {
		r.pattern = bytes.ToLower(r.pattern)
	}
	r.repl = []byte(template(c.Replacement))
	return r, nil
}

// template turns LoadMaster's \1-\9 group references into Go's ${1} and
// escapes literal '$'.
func template(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			b.WriteString("${")
			b.WriteByte(s[i+1])
			b.WriteByte('}')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Lookup returns the named rules in order; a missing name is an error.
func (s *Set) Lookup(names []string) ([]*Rule, error) {
	out := make([]*Rule, 0, len(names))
	for _, n := range names {
		r := s.byName[n]
		if r == nil {
			return nil, fmt.Errorf("no content rule named %q", n)
		}
		out = append(out, r)
	}
	return out, nil
}

// IsMatch reports whether the rule is a match rule.
func (r *Rule) IsMatch() bool { return r.typ == "match" }

// NeedsBody reports whether the rule looks at the request body.
func (r *Rule) NeedsBody() bool { return r.typ == "match" && r.match == "body" }

// applies reports whether the rule's flag conditions hold.
func (r *Rule) applies(f Flags) bool {
	if r.onlyOn != 0 && !f.Has(r.onlyOn) {
		return false
	}
	if r.onlyOff != 0 && f.Has(r.onlyOff) {
		return false
	}
	return true
}

// Match evaluates a match rule against req under flags f, and sets the
// rule's flag in f when it matches. A rule whose flag conditions do not
// hold does not match.
func (r *Rule) Match(req Request, f *Flags) bool {
	if !r.applies(*f) {
		return false
	}
	var v []byte
	switch r.match {
	case "url":
		v = req.Path()
		if r.incQuery {
			v = req.Target()
		}
		if r.incHost {
			v = append(append([]byte(nil), req.Host()...), v...)
		}
	case "host":
		v = req.Host()
	case "header":
		v = req.Header(r.header)
	case "query":
		v = req.Query()
	case "body":
		v = req.Body()
	}
	ok := r.test(v)
	if r.negate {
		ok = !ok
	}
	if ok {
		f.Set(r.setFlag)
	}
	return ok
}

func (r *Rule) test(v []byte) bool {
	switch r.mtype {
	case "prefix":
		if r.nocase {
			return len(v) >= len(r.pattern) && bytes.EqualFold(v[:len(r.pattern)], r.pattern)
		}
		return bytes.HasPrefix(v, r.pattern)
	case "postfix":
		if r.nocase {
			return len(v) >= len(r.pattern) && bytes.EqualFold(v[len(v)-len(r.pattern):], r.pattern)
		}
		return bytes.HasSuffix(v, r.pattern)
	}
	return r.re.Match(v)
}

// MatchAny reports whether any of rules matches, evaluating them in order
// (each matching rule sets its flag).
func MatchAny(rules []*Rule, req Request, f *Flags) bool {
	hit := false
	for _, r := range rules {
		if r.Match(req, f) {
			hit = true
		}
	}
	return hit
}

// Apply applies a header or URL rule to e under flags f. A URL rewrite
// whose result is not a valid target ("/..." of visible ASCII) is not
// applied; added and replaced values with control characters are dropped.
func (r *Rule) Apply(e Editor, f Flags) {
	if !r.applies(f) {
		return
	}
	switch r.typ {
	case "addHeader":
		e.AddHeader([]byte(r.header), r.repl)
	case "deleteHeader":
		e.DelHeader(r.header)
	case "replaceHeader":
		e.EditHeader(r.header, func(v []byte) ([]byte, bool) {
			if !r.re.Match(v) {
				return nil, false
			}
			nv := r.re.ReplaceAll(v, r.repl)
			return nv, validValue(nv)
		})
	case "modifyUrl":
		u := e.URL()
		if u == nil || !r.re.Match(u) {
			return
		}
		nu := r.re.ReplaceAll(u, r.repl)
		if validURL(nu) {
			e.SetURL(nu)
		}
	}
}

func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func validURL(u []byte) bool {
	if len(u) == 0 {
		return false
	}
	for _, c := range u {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return u[0] == '/' || bytes.HasPrefix(u, []byte("http://")) || bytes.HasPrefix(u, []byte("https://"))
}
