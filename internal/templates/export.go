package templates

import (
	"encoding/json"
	"fmt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// FromVirtualService makes a template of a service and its SubVSs, like
// LoadMaster's exportvstmplt: the address becomes the parameter vip and the
// real servers the parameter servers (both defaulting to the current
// values); everything else is kept as it is. IDs are dropped. Real-server
// fields other than address, port and weight are not carried over. A
// service that uses content rules needs FromService, which carries them.
func FromVirtualService(v *config.VirtualService, name, title string) (*Template, error) {
	return FromService(nil, v, name, title)
}

// ruleLists are the keys of a service's http settings that name content
// rules.
var ruleLists = []string{"selectRules", "preRules", "requestRules", "responseRules"}

// FromService is FromVirtualService for a service of cfg: the content
// rules that the service and its SubVSs use come with it, renamed
// "<name>-${vip}" (and the references with them) so that the template can
// be used at other addresses beside the original. cfg may be nil for a
// service without content rules.
func FromService(cfg *config.Config, v *config.VirtualService, name, title string) (*Template, error) {
	if title == "" {
		title = v.NickName
	}
	if title == "" {
		title = fmt.Sprintf("%s %s:%d", v.Protocol, v.Address, v.Port)
	}
	doc, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("export virtual service: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("export virtual service: %w", err)
	}
	stripIDs(m)
	used := renameRules(m)
	if subs, ok := m["subVSs"].([]any); ok {
		for _, sub := range subs {
			if sm, ok := sub.(map[string]any); ok {
				for k := range renameRules(sm) {
					used[k] = true
				}
			}
		}
	}
	m["address"] = "${vip}"
	t := &Template{Format: Format, Version: Version, Name: name, Title: title,
		Description: fmt.Sprintf("Exported from virtual service %d (%s:%d/%s).", v.ID, v.Address, v.Port, v.Protocol),
		Parameters:  []Parameter{{Name: "vip", Type: TypeIP, Required: false, Default: v.Address, Description: "the service's address"}},
	}
	if len(v.RealServers) > 0 {
		servers := make([]any, len(v.RealServers))
		for i, rs := range v.RealServers {
			servers[i] = map[string]any{"address": rs.Address, "port": float64(rs.Port), "weight": float64(rs.Weight)}
		}
		delete(m, "realServers")
		m["realServersFrom"] = map[string]any{"parameter": "servers", "port": float64(v.RealServers[0].Port)}
		t.Parameters = append(t.Parameters, Parameter{Name: "servers", Type: TypeServers, Default: servers, Description: "the real servers"})
	}
	t.VirtualServices = []map[string]any{m}
	if len(used) > 0 && cfg != nil {
		for _, r := range cfg.ContentRules {
			if !used[r.Name] {
				continue
			}
			rm, err := genericMap(r)
			if err != nil {
				return nil, fmt.Errorf("export virtual service %d: rule %q: %w", v.ID, r.Name, err)
			}
			rm["name"] = r.Name + "-${vip}"
			t.ContentRules = append(t.ContentRules, rm)
		}
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("export virtual service %d: %w", v.ID, err)
	}
	return t, nil
}

func stripIDs(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "id")
		for _, item := range x {
			stripIDs(item)
		}
	case []any:
		for _, item := range x {
			stripIDs(item)
		}
	}
}

// renameRules renames the content rules a service's generic map names to
// "<name>-${vip}" and returns the original names.
func renameRules(m map[string]any) map[string]bool {
	used := map[string]bool{}
	h, ok := m["http"].(map[string]any)
	if !ok {
		return used
	}
	for _, key := range ruleLists {
		list, ok := h[key].([]any)
		if !ok {
			continue
		}
		for i, item := range list {
			if n, ok := item.(string); ok {
				used[n] = true
				list[i] = n + "-${vip}"
			}
		}
	}
	return used
}

// genericMap returns v as a generic JSON map.
func genericMap(v any) (map[string]any, error) {
	doc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	return m, nil
}
