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
// fields other than address, port and weight are not carried over.
func FromVirtualService(v *config.VirtualService, name, title string) (*Template, error) {
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
