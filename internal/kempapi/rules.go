package kempapi

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Content rules: LoadMaster's addrule, modrule, delrule and showrule map
// onto config.ContentRules; the assignment commands (addrsrule,
// addprerule, addrequestrule, addresponserule and their del forms) onto a
// service's http settings. LoadMaster numbers the rule types 0-5; Fulcrum
// has the first five (config.RuleTypes, in that order).
var ruleTypeNames = []string{"match", "addHeader", "deleteHeader", "replaceHeader", "modifyUrl"}

// ruleLists are the showrule list elements, by LoadMaster rule type.
var ruleLists = []string{"MatchContentRule", "AddHeaderRule", "DeleteHeaderRule", "ReplaceHeaderRule", "ModifyURLRule"}

// headerNameRE is what Fulcrum can delete: one header, by name.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

var errUnknownRule = invalid("Unknown rule")

// ruleParams are the rule parameters each type uses; any other rule
// parameter must be absent or "off" (0, N, empty), never stored and
// ignored.
var ruleParams = [][]string{
	{"pattern", "matchtype", "nocase", "caseindependent", "negate", "incquery", "inchost", "header", "setonmatch", "onlyonflag", "onlyonnoflag", "mustfail"},
	{"header", "replacement", "onlyonflag", "onlyonnoflag"},
	{"pattern", "header", "onlyonflag", "onlyonnoflag"},
	{"header", "pattern", "replacement", "nocase", "caseindependent", "onlyonflag", "onlyonnoflag"},
	{"pattern", "replacement", "nocase", "caseindependent", "onlyonflag", "onlyonnoflag"},
}

// allRuleParams is every rule parameter LoadMaster has.
var allRuleParams = []string{"pattern", "matchtype", "nocase", "caseindependent", "negate", "incquery", "inchost", "header", "replacement", "setonmatch", "onlyonflag", "onlyonnoflag", "mustfail"}

// ruleType reads the type parameter: LoadMaster's number, 0 when absent.
func ruleType(p params) (int, *failure) {
	s, ok := p.get("type")
	if !ok || strings.TrimSpace(s) == "" {
		return 0, nil
	}
	n, good := parseInt(s)
	switch {
	case !good || n < 0 || n > 5:
		return 0, invalid("type: must be 0-5 (0 match content, 1 add header, 2 delete header, 3 replace header, 4 modify URL, 5 replace body), got %q", short(s))
	case n == 5:
		return 0, invalid("type: 5 (replace string in response body) is not available in Fulcrum: its content rules do not change response bodies")
	}
	return n, nil
}

// isOff reports whether a parameter's value means "not set".
func isOff(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return true
	}
	if b, ok := parseBool(v); ok && !b {
		return true
	}
	return false
}

// applyRuleParams sets the parameters present in p on r, a rule of
// LoadMaster type t.
func applyRuleParams(r *config.ContentRule, t int, p params) *failure {
	for _, name := range allRuleParams {
		v, ok := p.get(name)
		if name == "matchtype" && (t == 3 || t == 4) && strings.EqualFold(strings.TrimSpace(v), "regex") {
			continue // what these types use
		}
		if ok && !isOff(v) && !slices.Contains(ruleParams[t], name) {
			return invalid("%s: not used by a rule of type %d (%s)", name, t, ruleLists[t])
		}
	}
	if s, ok := p.get("matchtype"); ok && t == 0 {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "", "regex":
			r.MatchType = "regex"
		case "prefix", "postfix":
			r.MatchType = strings.ToLower(strings.TrimSpace(s))
		default:
			return invalid("matchtype: must be regex, prefix or postfix, got %q", short(s))
		}
	}
	if v, ok := p.get("pattern"); ok {
		if t == 2 {
			h := strings.TrimSpace(v)
			if h != "" && (!headerNameRE.MatchString(h) || strings.ContainsAny(h, `.*+?^$|()[]{}\`)) {
				return invalid("pattern: Fulcrum deletes a header by its name; %q is not a header name (regular expressions are not available for type 2)", short(h))
			}
			if h != "" {
				r.Header = h
			}
		} else {
			r.Pattern = v
		}
	}
	if v, ok := p.get("header"); ok {
		h := strings.TrimSpace(v)
		switch {
		case t == 0 && strings.EqualFold(h, "body"):
			r.Match, r.Header = "body", ""
		case t == 0 && strings.EqualFold(h, "src-ip"):
			return invalid("header: matching the client address (src-ip) is not available in Fulcrum's content rules")
		case t == 0 && h == "":
			r.Match, r.Header = "url", ""
		case t == 0:
			r.Match, r.Header = "header", h
		case t == 2:
			if h != "" && !headerNameRE.MatchString(h) {
				return invalid("header: must be a header name, got %q", short(h))
			}
			if h != "" && r.Header != "" && !strings.EqualFold(h, r.Header) && p.has("pattern") {
				return invalid("header: for type 2 give the header to delete once, as pattern")
			}
			if h != "" && !p.has("pattern") {
				r.Header = h
			}
		default:
			r.Header = h
		}
	}
	if v, ok := p.get("replacement"); ok {
		r.Replacement = v
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"nocase", &r.NoCase}, {"caseindependent", &r.NoCase}, {"negate", &r.Negate}, {"incquery", &r.IncQuery}, {"inchost", &r.IncHost}}
	for _, b := range bools {
		v, ok, f := boolParam(p, b.name, b.name)
		if f != nil {
			return f
		}
		if ok && slices.Contains(ruleParams[t], b.name) {
			*b.dst = v
		}
	}
	if v, ok, f := boolParam(p, "mustfail", "mustfail"); f != nil {
		return f
	} else if ok && v {
		return invalid("mustfail: failing the connection when a rule matches is not available in Fulcrum's content rules")
	}
	ints := []struct {
		name string
		dst  *int
	}{{"setonmatch", &r.SetFlag}, {"onlyonflag", &r.OnlyOnFlag}, {"onlyonnoflag", &r.OnlyOnNoFlag}}
	for _, n := range ints {
		v, ok, f := intParam(p, n.name, n.name)
		if f != nil {
			return f
		}
		if ok && slices.Contains(ruleParams[t], n.name) {
			*n.dst = v
		}
	}
	if r.Type == "match" && r.Match != "url" && (r.IncHost || r.IncQuery) {
		return invalid("inchost, incquery: only for a rule that matches the URL (no header)")
	}
	return nil
}

// lmRuleType is LoadMaster's number of a rule's type.
func lmRuleType(r *config.ContentRule) int {
	t := r.Type
	if t == "" {
		t = "match"
	}
	return index(ruleTypeNames, t)
}

// findRule returns the index of the named rule, or -1.
func findRule(cfg *config.Config, name string) int {
	for i := range cfg.ContentRules {
		if cfg.ContentRules[i].Name == name {
			return i
		}
	}
	return -1
}

// ruleName reads the name parameter of addrule, modrule, delrule.
func ruleName(p params) (string, *failure) {
	n := strings.TrimSpace(p.str("name"))
	if n == "" {
		return "", missing("name")
	}
	return n, nil
}

func (c *call) addrule() result {
	name, f := ruleName(c.p)
	if f != nil {
		return f.result()
	}
	if strings.EqualFold(name, "default") {
		return invalid("name: a rule may not be named default").result()
	}
	t, f := ruleType(c.p)
	if f != nil {
		return f.result()
	}
	r := config.ContentRule{Name: name, Type: ruleTypeNames[t]}
	if t == 0 {
		r.MatchType, r.Match = "regex", "url"
	}
	if f := applyRuleParams(&r, t, c.p); f != nil {
		return f.result()
	}
	snap, f := c.apply("add content rule "+name, func(cfg *config.Config) error {
		if findRule(cfg, name) >= 0 {
			return invalid("Rule already exists")
		}
		cfg.ContentRules = append(cfg.ContentRules, r)
		return nil
	})
	if f != nil {
		return f.result()
	}
	return showRules(snap.Config, name)
}

func (c *call) modrule() result {
	name, f := ruleName(c.p)
	if f != nil {
		return f.result()
	}
	snap, f := c.apply("modify content rule "+name, func(cfg *config.Config) error {
		i := findRule(cfg, name)
		if i < 0 {
			return errUnknownRule
		}
		r := cfg.ContentRules[i]
		t := lmRuleType(&r)
		if s, ok := c.p.get("type"); ok && strings.TrimSpace(s) != "" {
			nt, f := ruleType(c.p)
			if f != nil {
				return f
			}
			if nt != t {
				return invalid("type: a rule's type cannot be changed (%s is type %d); delete it and add it again", name, t)
			}
		}
		if f := applyRuleParams(&r, t, c.p); f != nil {
			return f
		}
		cfg.ContentRules[i] = r
		return nil
	})
	if f != nil {
		return f.result()
	}
	return showRules(snap.Config, name)
}

func (c *call) delrule() result {
	name, f := ruleName(c.p)
	if f != nil {
		return f.result()
	}
	_, f = c.apply("delete content rule "+name, func(cfg *config.Config) error {
		i := findRule(cfg, name)
		if i < 0 {
			return errUnknownRule
		}
		var users []string
		cfg.Walk(func(v, _ *config.VirtualService) {
			if h := v.HTTP; h != nil {
				for _, l := range [][]string{h.SelectRules, h.PreRules, h.RequestRules, h.ResponseRules} {
					if slices.Contains(l, name) {
						users = append(users, strconv.Itoa(v.ID))
						break
					}
				}
			}
		})
		if len(users) > 0 {
			return invalid("Rule in use: %s is assigned to virtual service %s; remove it from them first", name, strings.Join(users, ", "))
		}
		cfg.ContentRules = slices.Delete(cfg.ContentRules, i, i+1)
		return nil
	})
	if f != nil {
		return f.result()
	}
	return completed()
}

func (c *call) showrule() result {
	return showRules(c.s.ctl.Current().Config, strings.TrimSpace(c.p.str("name")))
}

// showRules answers with the named rule in its type's list, or with every
// rule grouped by type (every list present, empty ones too).
func showRules(cfg *config.Config, name string) result {
	if name != "" {
		i := findRule(cfg, name)
		if i < 0 {
			return errUnknownRule.result()
		}
		return withData(ruleNode(&cfg.ContentRules[i]))
	}
	var out []node
	for t, list := range ruleLists {
		n := len(out)
		for i := range cfg.ContentRules {
			if r := &cfg.ContentRules[i]; lmRuleType(r) == t {
				out = append(out, ruleNode(r))
			}
		}
		if len(out) == n {
			out = append(out, opts(list))
		}
	}
	return withData(out...)
}

// ruleNode is one rule as LoadMaster's showrule writes it. Flags are shown
// when set; empty strings are left out.
func ruleNode(r *config.ContentRule) node {
	t := lmRuleType(r)
	ns := []node{str("name", r.Name)}
	s := func(k, v string) {
		if v != "" {
			ns = append(ns, str(k, v))
		}
	}
	flag := func(k string, v int) {
		if v != 0 {
			ns = append(ns, inum(k, v))
		}
	}
	switch t {
	case 0:
		mt := r.MatchType
		if mt == "" || mt == "regex" {
			mt = "Regex"
		}
		ns = append(ns, str("matchtype", mt), yn("addhost", r.IncHost), yn("CaseIndependent", r.NoCase),
			yn("negate", r.Negate), yn("IncludeQuery", r.IncQuery))
		switch r.Match {
		case "body":
			s("header", "body")
		case "host":
			s("header", "Host")
		case "query":
			s("header", "query")
		case "header":
			s("header", r.Header)
		}
		s("pattern", r.Pattern)
		flag("SetFlagOnMatch", r.SetFlag)
		flag("onlyonflag", r.OnlyOnFlag)
		flag("onlyonnoflag", r.OnlyOnNoFlag)
		ns = append(ns, yn("mustfail", false))
	case 1:
		s("header", r.Header)
		s("HeaderValue", r.Replacement)
	case 2:
		s("pattern", r.Header)
	case 3:
		s("header", r.Header)
		s("replacement", r.Replacement)
		s("pattern", r.Pattern)
	case 4:
		s("replacement", r.Replacement)
		s("pattern", r.Pattern)
	}
	if t != 0 {
		if r.NoCase {
			ns = append(ns, yn("CaseIndependent", true))
		}
		flag("onlyonflag", r.OnlyOnFlag)
		flag("onlyonnoflag", r.OnlyOnNoFlag)
	}
	return node{name: ruleLists[t], kind: kGroup, item: true, children: ns}
}
