package kempapi

import (
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// globalParam is one LoadMaster get/set parameter that Fulcrum has.
type globalParam struct {
	name string // as LoadMaster names it, lower-case
	get  func(s *Server, o *config.Options) node
	set  func(o *config.Options, val string) *failure // nil: read-only
}

// globalParams are the get/set parameters in getall order. Booleans read
// as yes/no in v1 and true/false in v2, as on a LoadMaster.
var globalParams []globalParam

// paramAliases are other names LoadMaster accepts for a parameter.
var paramAliases = map[string]string{"subnetoriginating": "subnetorigin", "l7connectiondraintimeout": "finalpersist"}

func init() {
	boolean := func(name string, field func(o *config.Options) *bool) globalParam {
		return globalParam{name: name,
			get: func(_ *Server, o *config.Options) node { return yesno(name, *field(o)) },
			set: func(o *config.Options, val string) *failure {
				b, good := parseBool(val)
				if !good {
					return invalid("Invalid value %q for %s (yes or no)", short(val), name)
				}
				*field(o) = b
				return nil
			}}
	}
	integer := func(name string, field func(o *config.Options) *int) globalParam {
		return globalParam{name: name,
			get: func(_ *Server, o *config.Options) node { return inum(name, *field(o)) },
			set: func(o *config.Options, val string) *failure {
				n, good := parseInt(val)
				if !good {
					return invalid("Invalid value %q for %s (a whole number)", short(val), name)
				}
				*field(o) = n
				return nil
			}}
	}
	conntimeout := integer("conntimeout", func(o *config.Options) *int { return &o.ConnTimeout })
	setTimeout := conntimeout.set
	conntimeout.set = func(o *config.Options, val string) *failure {
		if f := setTimeout(o, val); f != nil {
			return f
		}
		if o.ConnTimeout == 0 { // LoadMaster: 0 resets to the default
			o.ConnTimeout = config.DefaultConnTimeout
		}
		return nil
	}
	globalParams = []globalParam{
		{name: "version", get: func(s *Server, _ *config.Options) node { return str("version", s.version) }},
		boolean("enableapi", func(o *config.Options) *bool { return &o.EnableAPI }),
		boolean("snat", func(o *config.Options) *bool { return &o.SNAT }),
		boolean("subnetorigin", func(o *config.Options) *bool { return &o.SubnetOriginating }),
		boolean("droponfail", func(o *config.Options) *bool { return &o.DropOnFail }),
		boolean("dropatdrainend", func(o *config.Options) *bool { return &o.DropAtDrainEnd }),
		integer("finalpersist", func(o *config.Options) *int { return &o.DrainTime }),
		conntimeout,
		{name: "alwayspersist",
			get: func(_ *Server, o *config.Options) node {
				return inum("alwayspersist", alwaysOut(o.AlwaysPersist))
			},
			set: func(o *config.Options, val string) *failure {
				a, ok := alwaysIn(val)
				if !ok {
					return invalid("Invalid value %q for alwayspersist (0, 1, 2, no or yes)", short(val))
				}
				o.AlwaysPersist = a
				return nil
			}},
		integer("slowstart", func(o *config.Options) *int { return &o.SlowStart }),
		integer("minpassword", func(o *config.Options) *int { return &o.AdminLockout.MinPassword }),
		integer("sessionidletime", func(o *config.Options) *int { return &o.AdminLockout.SessionIdle }),
		integer("sessionmaxfailattempts", func(o *config.Options) *int { return &o.AdminLockout.Attempts }),
	}
}

func lookupParam(name string) (globalParam, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	if a, ok := paramAliases[name]; ok {
		name = a
	}
	for _, g := range globalParams {
		if g.name == name {
			return g, true
		}
	}
	return globalParam{}, false
}

var errUnknownParam = &failure{status: 422, msg: "Unknown parameter value"}

func (c *call) get() result {
	name, ok := c.p.get("param")
	if !ok || strings.TrimSpace(name) == "" {
		return missing("param").result()
	}
	g, ok := lookupParam(name)
	if !ok {
		if np, ok := lookupNetParam(name); ok {
			return c.getNet(np)
		}
		return errUnknownParam.result()
	}
	o := c.s.ctl.Current().Config.Options
	return withData(g.get(c.s, &o))
}

func (c *call) getall() result {
	o := c.s.ctl.Current().Config.Options
	out := make([]node, 0, len(globalParams))
	for _, g := range globalParams {
		out = append(out, g.get(c.s, &o))
	}
	return withData(append(out, c.netNodes()...)...)
}

func (c *call) set() result {
	name, ok := c.p.get("param")
	if !ok || strings.TrimSpace(name) == "" {
		return missing("param").result()
	}
	val, ok := c.p.get("value")
	if !ok {
		val, ok = c.p.get("val") // the APIv2 spelling in LoadMaster's own example
	}
	if !ok {
		return missing("value").result()
	}
	g, found := lookupParam(name)
	if !found {
		if np, ok := lookupNetParam(name); ok {
			return c.setNet(np, val)
		}
		return errUnknownParam.result()
	}
	if g.set == nil {
		return invalid("Command Failed: %s is read-only", g.name).result()
	}
	_, f := c.apply("", func(cfg *config.Config) error {
		return nilIfNone(g.set(&cfg.Options, val))
	})
	if f != nil {
		return f.result()
	}
	return completed()
}

func healthNodes(o *config.Options) []node {
	return []node{
		inum("RetryInterval", o.Health.Interval),
		inum("Timeout", o.Health.Timeout),
		inum("RetryCount", o.Health.RetryCount),
	}
}

func (c *call) showhealth() result {
	o := c.s.ctl.Current().Config.Options
	return withData(healthNodes(&o)...)
}

func (c *call) modhealth() result {
	snap, f := c.apply("", func(cfg *config.Config) error {
		h := &cfg.Options.Health
		return c.setInts(intField{"RetryInterval", &h.Interval}, intField{"Timeout", &h.Timeout}, intField{"RetryCount", &h.RetryCount})
	})
	if f != nil {
		return f.result()
	}
	return withData(healthNodes(&snap.Config.Options)...)
}

// intField is an integer parameter (as LoadMaster spells it) and the
// field it sets.
type intField struct {
	name  string
	field *int
}

// setInts sets each field whose parameter the call has; the first bad
// value is returned as a failure (an error) naming its parameter.
func (c *call) setInts(fields ...intField) error {
	for _, x := range fields {
		n, ok, f := intParam(c.p, strings.ToLower(x.name), x.name)
		if f != nil {
			return f
		}
		if ok {
			*x.field = n
		}
	}
	return nil
}
