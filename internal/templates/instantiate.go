package templates

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Instance is the result of instantiating a template: the virtual services
// (with defaults set, without IDs) and the smoke checks.
type Instance struct {
	// VirtualServices are the services to add.
	VirtualServices []config.VirtualService
	// ContentRules are the content rules the services use.
	ContentRules []config.ContentRule
	// Checks are the template's smoke checks with placeholders filled.
	Checks []map[string]any
}

// AddTo appends the instance's services and content rules to c and
// returns the index of the first added service.
func (inst *Instance) AddTo(c *config.Config) int {
	first := len(c.VirtualServices)
	c.VirtualServices = append(c.VirtualServices, inst.VirtualServices...)
	c.ContentRules = append(c.ContentRules, inst.ContentRules...)
	return first
}

// Instantiate fills the template's placeholders with params (missing ones
// take their defaults) and decodes the services. Unknown, missing or
// ill-typed parameters and services that do not decode are reported with
// their paths. The caller applies the services as one change, where the
// whole configuration is validated (duplicate addresses, certificates).
func (t *Template) Instantiate(params map[string]any) (*Instance, error) {
	return t.instantiate(params, false)
}

func (t *Template) instantiate(params map[string]any, trial bool) (*Instance, error) {
	var es config.Errors
	add := func(path, format string, args ...any) {
		es = append(es, config.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	values := map[string]any{}
	known := map[string]bool{}
	for _, p := range t.Parameters {
		known[p.Name] = true
		v, given := params[p.Name]
		if !given || v == nil {
			if p.Required && !trial {
				add("parameters."+p.Name, "required: %s", p.Description)
				continue
			}
			v = p.Default
		}
		if v == nil {
			continue
		}
		cv, err := convert(p, v)
		if err != nil {
			add("parameters."+p.Name, "%v", err)
			continue
		}
		values[p.Name] = cv
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known[k] {
			add("parameters."+k, "unknown parameter of template %s", t.Name)
		}
	}
	if len(es) > 0 {
		return nil, es
	}
	inst := &Instance{}
	for i, raw := range t.VirtualServices {
		path := fmt.Sprintf("virtualServices[%d]", i)
		filled, err := fill(raw, values, path)
		if err != nil {
			es = append(es, err...)
			continue
		}
		m := filled.(map[string]any)
		if err := expandServers(m, values, path); err != nil {
			es = append(es, err...)
			continue
		}
		if subs, ok := m["subVSs"].([]any); ok {
			for j, sub := range subs {
				if sm, ok := sub.(map[string]any); ok {
					es = append(es, expandServers(sm, values, fmt.Sprintf("%s.subVSs[%d]", path, j))...)
				}
			}
		}
		doc, jerr := json.Marshal(m)
		if jerr != nil {
			add(path, "%v", jerr)
			continue
		}
		var vs config.VirtualService
		if err := config.DecodeInto(doc, &vs); err != nil {
			es = append(es, prefixed(err, path)...)
			continue
		}
		if vs.ID != 0 {
			add(path+".id", "a template does not set ids")
			continue
		}
		inst.VirtualServices = append(inst.VirtualServices, vs)
	}
	for i, raw := range t.ContentRules {
		path := fmt.Sprintf("contentRules[%d]", i)
		filled, err := fill(raw, values, path)
		if err != nil {
			es = append(es, err...)
			continue
		}
		doc, jerr := json.Marshal(filled)
		if jerr != nil {
			add(path, "%v", jerr)
			continue
		}
		var cr config.ContentRule
		if err := config.DecodeInto(doc, &cr); err != nil {
			es = append(es, prefixed(err, path)...)
			continue
		}
		inst.ContentRules = append(inst.ContentRules, cr)
	}
	for i, raw := range t.Checks {
		path := fmt.Sprintf("checks[%d]", i)
		filled, err := fill(raw, values, path)
		if err != nil {
			es = append(es, err...)
			continue
		}
		m := filled.(map[string]any)
		inst.Checks = append(inst.Checks, m)
		if len(inst.VirtualServices) == len(t.VirtualServices) {
			es = append(es, attachCheck(inst.VirtualServices, m, path)...)
		}
	}
	if len(es) > 0 {
		return nil, es
	}
	if trial {
		if err := trialValidate(inst); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// trialValidate validates the services of a trial instantiation on their
// own; references to certificates (which the sample values cannot satisfy)
// are not checked.
func trialValidate(inst *Instance) error {
	c := config.Default()
	inst.AddTo(c)
	c.SetDefaults()
	c.AssignIDs(nil)
	err := c.Validate()
	es, ok := config.IsErrors(err)
	if !ok {
		return err
	}
	var keep config.Errors
	for _, e := range es {
		if !strings.Contains(e.Path, ".tls.certificates") {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return keep
}

func prefixed(err error, path string) config.Errors {
	es, ok := config.IsErrors(err)
	if !ok {
		return config.Errors{{Path: path, Message: err.Error()}}
	}
	out := make(config.Errors, len(es))
	for i, e := range es {
		out[i] = e
		if e.Path == "" {
			out[i].Path = path
		} else {
			out[i].Path = path + "." + e.Path
		}
	}
	return out
}

// fill returns a copy of v with placeholders replaced.
func fill(v any, values map[string]any, path string) (any, config.Errors) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		var es config.Errors
		for k, item := range x {
			f, err := fill(item, values, path+"."+k)
			es = append(es, err...)
			out[k] = f
		}
		return out, es
	case []any:
		out := make([]any, len(x))
		var es config.Errors
		for i, item := range x {
			f, err := fill(item, values, fmt.Sprintf("%s[%d]", path, i))
			es = append(es, err...)
			out[i] = f
		}
		return out, es
	case string:
		return fillString(x, values, path)
	}
	return v, nil
}

func fillString(s string, values map[string]any, path string) (any, config.Errors) {
	if m := placeRE.FindStringSubmatch(s); m != nil && m[0] == s {
		v, ok := values[m[1]]
		if !ok {
			return nil, config.Errors{{Path: path, Message: fmt.Sprintf("parameter %s has no value and no default", m[1])}}
		}
		if servers, ok := v.([]Server); ok {
			list := make([]any, len(servers))
			for i, sv := range servers {
				list[i] = sv.Address
			}
			return list, nil
		}
		return v, nil
	}
	var es config.Errors
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			sb.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			sb.WriteByte('$')
			i++
			continue
		}
		loc := placeRE.FindStringSubmatchIndex(s[i:])
		if loc == nil || loc[0] != 0 {
			sb.WriteByte('$')
			continue
		}
		name := s[i+loc[2] : i+loc[3]]
		v, ok := values[name]
		if !ok {
			es = append(es, config.FieldError{Path: path, Message: fmt.Sprintf("parameter %s has no value and no default", name)})
		}
		sb.WriteString(text(v))
		i += loc[1] - 1
	}
	return sb.String(), es
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case []Server:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = s.Address
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// expandServers turns realServersFrom: {parameter, port, weight, ...} into
// realServers, one per server of the parameter; the other keys are copied
// into every real server.
func expandServers(m map[string]any, values map[string]any, path string) config.Errors {
	raw, ok := m["realServersFrom"]
	if !ok {
		return nil
	}
	delete(m, "realServersFrom")
	p := path + ".realServersFrom"
	spec, ok := raw.(map[string]any)
	if !ok {
		return config.Errors{{Path: p, Message: "must be a mapping with parameter and port"}}
	}
	name, _ := spec["parameter"].(string)
	v, ok := values[name]
	servers, isServers := v.([]Server)
	if !ok || !isServers {
		return config.Errors{{Path: p + ".parameter", Message: fmt.Sprintf("must name a parameter of type servers, got %q", name)}}
	}
	if _, both := m["realServers"]; both {
		return config.Errors{{Path: p, Message: "give realServers or realServersFrom, not both"}}
	}
	list := make([]any, 0, len(servers))
	for _, s := range servers {
		rs := map[string]any{}
		for k, val := range spec {
			if k != "parameter" {
				rs[k] = val
			}
		}
		rs["address"] = s.Address
		if s.Port != 0 {
			rs["port"] = s.Port
		}
		if s.Weight != 0 {
			rs["weight"] = s.Weight
		}
		list = append(list, rs)
	}
	m["realServers"] = list
	return nil
}

// templateCheck is a template's smoke check: a config.SmokeCheck and the
// nickname of the service it goes through.
type templateCheck struct {
	// Name says what is checked.
	Name string `json:"name"`
	// URL is the URL a client would open.
	URL string `json:"url"`
	// Expect are the status codes that pass.
	Expect []int `json:"expect,omitempty"`
	// Service is the nickname of one of the template's services.
	Service string `json:"service"`
}

// attachCheck adds a filled smoke check to the service it names.
func attachCheck(services []config.VirtualService, m map[string]any, path string) config.Errors {
	doc, err := json.Marshal(m)
	if err != nil {
		return config.Errors{{Path: path, Message: err.Error()}}
	}
	var c templateCheck
	if err := config.DecodeInto(doc, &c); err != nil {
		return prefixed(err, path)
	}
	for i := range services {
		if services[i].NickName == c.Service {
			services[i].Checks = append(services[i].Checks, config.SmokeCheck{Name: c.Name, URL: c.URL, Expect: c.Expect})
			return nil
		}
	}
	return config.Errors{{Path: path + ".service", Message: fmt.Sprintf("no service of this template has the nickname %q", c.Service)}}
}
