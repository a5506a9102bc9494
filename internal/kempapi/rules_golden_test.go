package kempapi

import (
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// The content-rule answers are kept as golden files in
// testdata/golden/rules. There is no recorded LoadMaster showrule answer;
// the element names, their types (flags as numbers, switches as
// booleans, matchtype "Regex") and which elements are left out when not
// set follow what a public Go client's integration tests against a
// LoadMaster read (kreemer/loadmaster-go-client, api/rule.go and
// api/rule_test.go): see docs/kemp-api.md.

// rulesGoldenSteps are the commands whose answers are kept, in order.
var rulesGoldenSteps = []struct{ file, cmd, query string }{
	{"showrule-empty", "showrule", ""},
	{"addrule-match", "addrule", "name=byPath&type=0&pattern=/api&matchtype=prefix&nocase=1&setonmatch=2&onlyonnoflag=3"},
	{"addrule-match-header", "addrule", "name=byHdr&pattern=^on$&header=X-Beta&negate=1"},
	{"addrule-addheader", "addrule", "name=addHdr&type=1&header=X-Added&replacement=yes&onlyonflag=2"},
	{"addrule-delheader", "addrule", "name=delHdr&type=2&pattern=Server"},
	{"addrule-replaceheader", "addrule", "name=repHdr&type=3&header=Location&pattern=^http:&replacement=https:"},
	{"addrule-modifyurl", "addrule", "name=modUrl&type=4&pattern=^/old/(.*)&replacement=/new/%5C1"},
	{"modrule", "modrule", "name=byHdr&negate=0"},
	{"showrule", "showrule", ""},
	{"showrule-name", "showrule", "name=addHdr"},
	{"delrule", "delrule", "name=delHdr"},
}

func TestRulesGolden(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		e := newEnv(t, envOpts{})
		for _, s := range rulesGoldenSteps {
			var a answer
			name := s.file + ".xml"
			if v2 {
				name = s.file + ".json"
				m := map[string]any{"cmd": s.cmd, "apiuser": "bal", "apipass": balPW}
				for _, kv := range strings.Split(s.query, "&") {
					if k, v, ok := strings.Cut(kv, "="); ok {
						m[k] = strings.ReplaceAll(v, "%5C", `\`)
					}
				}
				a, _ = e.v2(m)
			} else {
				a = e.v1(auth{}, s.cmd, s.query, nil)
			}
			if a.status != 200 {
				t.Fatalf("%s: %d %s", name, a.status, a.body)
			}
			matchGolden(t, "rules", name, "RulesGolden", a.body)
		}
	}
}

// FuzzRuleParams feeds arbitrary parameters to the rule parser: it never
// panics, and a rule it accepts either passes validation or is refused by
// it with an error (never stored half-checked).
func FuzzRuleParams(f *testing.F) {
	f.Add("0", "/api", "prefix", "", "", "1", "0", "3")
	f.Add("2", "Server", "", "", "", "", "", "")
	f.Add("4", "^/old/(.*)", "regex", "", `/new/\1`, "y", "n", "0")
	f.Add("1", "", "", "X-A", "v", "", "", "9")
	f.Add("3", "(", "postfix", "body", "", "yes", "true", "-1")
	f.Fuzz(func(t *testing.T, typ, pattern, matchtype, header, repl, nocase, negate, flag string) {
		p := params{}
		for k, v := range map[string]string{"type": typ, "pattern": pattern, "matchtype": matchtype, "header": header,
			"replacement": repl, "nocase": nocase, "negate": negate, "setonmatch": flag, "onlyonflag": flag} {
			if v != "" {
				p[k] = v
			}
		}
		tn, fl := ruleType(p)
		if fl != nil {
			return
		}
		r := config.ContentRule{Name: "r", Type: ruleTypeNames[tn]}
		if applyRuleParams(&r, tn, p) != nil {
			return
		}
		cfg := config.Config{ContentRules: []config.ContentRule{r}}
		_ = cfg.Validate()
		_ = ruleNode(&cfg.ContentRules[0])
	})
}
