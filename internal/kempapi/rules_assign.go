package kempapi

import (
	"slices"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// ruleSlot is where an assignment command puts a rule on a service.
type ruleSlot int

const (
	slotSelect   ruleSlot = iota // addrsrule: the rules that choose a SubVS
	slotPre                      // addprerule
	slotRequest                  // addrequestrule
	slotResponse                 // addresponserule
)

// list returns the rule list of h the slot names.
func (s ruleSlot) list(h *config.HTTPSettings) *[]string {
	switch s {
	case slotSelect:
		return &h.SelectRules
	case slotPre:
		return &h.PreRules
	case slotRequest:
		return &h.RequestRules
	}
	return &h.ResponseRules
}

// wantsMatch reports whether the slot takes match rules (type 0); the
// others take header and URL rules.
func (s ruleSlot) wantsMatch() bool { return s == slotSelect || s == slotPre }

// ruleParam reads the rule parameter of the assignment commands.
func ruleParam(p params) (string, *failure) {
	n := strings.TrimSpace(p.str("rule"))
	if n == "" {
		return "", missing("rule")
	}
	return n, nil
}

// subVSTarget finds the SubVS of v that addrsrule's rs names: rs=!<index>
// or rs=<index>, the SubVS's RsIndex as listvs shows it. A real server of
// v is refused with the reason: Fulcrum chooses among SubVSs by rules.
func subVSTarget(v *config.VirtualService, p params) (int, *failure) {
	rs := strings.TrimSpace(p.str("rs"))
	if rs == "" {
		return 0, missing("rs")
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(rs, "!")); err == nil {
		for i := range v.SubVSs {
			if v.SubVSs[i].ID == n {
				return n, nil
			}
		}
	}
	if len(v.RealServers) > 0 {
		if _, f := findRS(v, p); f == nil {
			return 0, invalid("rs: content rules on a real server are not available in Fulcrum: rules choose among SubVSs; put the real server in a SubVS and give the SubVS's index")
		}
	}
	return 0, errUnknownRS
}

// assignRule adds (or with del removes) a rule in a slot of the service
// the parameters address.
func (c *call) assignRule(slot ruleSlot, del bool) result {
	name, f := ruleParam(c.p)
	if f != nil {
		return f.result()
	}
	cfg := c.s.ctl.Current().Config
	v, parent, f := findVS(cfg, c.p)
	if f != nil {
		return f.result()
	}
	if slot == slotPre && parent != nil && !del {
		return invalid("vs: pre-processing rules run before a SubVS is chosen: assign them to the SubVS's parent service (index %d)", parent.ID).result()
	}
	targetID := v.ID
	if slot == slotSelect {
		if len(v.SubVSs) == 0 {
			return invalid("vs: content switching needs a service with SubVSs (rules choose among SubVSs)").result()
		}
		if targetID, f = subVSTarget(v, c.p); f != nil {
			return f.result()
		}
	}
	verb := "assign"
	if del {
		verb = "unassign"
	}
	_, f = c.apply(verb+" content rule "+name, func(cfg *config.Config) error {
		i := findRule(cfg, name)
		if i < 0 {
			return errUnknownRule
		}
		isMatch := lmRuleType(&cfg.ContentRules[i]) == 0
		if !del && isMatch != slot.wantsMatch() {
			if slot.wantsMatch() {
				return invalid("rule: %s is not a content matching rule (type 0)", name)
			}
			return invalid("rule: %s is a content matching rule (type 0); request and response rules add, delete or replace headers or modify the URL", name)
		}
		var t, tp *config.VirtualService
		cfg.Walk(func(x, par *config.VirtualService) {
			if x.ID == targetID && t == nil {
				t, tp = x, par
			}
		})
		if t == nil {
			return errUnknownVS
		}
		if t.HTTP == nil {
			if del {
				return invalid("rule: %s is not assigned here", name)
			}
			t.HTTP = &config.HTTPSettings{}
			if tp != nil && tp.HTTP != nil {
				// A SubVS without http settings of its own uses its
				// parent's host rewrite and error answers: keep them.
				ph := tp.HTTP
				t.HTTP.HostRewrite, t.HTTP.ErrorCode, t.HTTP.ErrorURL, t.HTTP.ErrorPage = ph.HostRewrite, ph.ErrorCode, ph.ErrorURL, ph.ErrorPage
			}
		}
		l := slot.list(t.HTTP)
		at := slices.Index(*l, name)
		switch {
		case del && at < 0:
			return invalid("rule: %s is not assigned here", name)
		case del:
			*l = slices.Delete(*l, at, at+1)
		case at >= 0:
			return invalid("rule: %s is already assigned here", name)
		default:
			*l = append(*l, name)
		}
		return nil
	})
	if f != nil {
		return f.result()
	}
	return completed()
}

// responseBodyRule answers addresponsebodyrule and delresponsebodyrule:
// they take replace-body rules (type 5), which Fulcrum does not have, so
// no rule can be one.
func (c *call) responseBodyRule() result {
	name, f := ruleParam(c.p)
	if f != nil {
		return f.result()
	}
	cfg := c.s.ctl.Current().Config
	if _, _, f := findVS(cfg, c.p); f != nil {
		return f.result()
	}
	if findRule(cfg, name) < 0 {
		return errUnknownRule.result()
	}
	return invalid("rule: %s is not a replace-body rule (type 5): Fulcrum's content rules do not change response bodies", name).result()
}

// ruleCount is the number of rules in a slot of v, for showvs.
func ruleCount(v *config.VirtualService, slot ruleSlot) int {
	if v.HTTP == nil {
		return 0
	}
	return len(*slot.list(v.HTTP))
}
