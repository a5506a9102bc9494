package netcfg

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Diff lists the settings that differ between a and b (nil is the empty
// settings), sorted by path, in the form of config.Diff: paths like
// "interfaces[name=eth1].mtu" or "routes[destination=10.20.0.0/16].gateway";
// a list of plain values (addresses, VIP ranges, name servers) is one
// leaf, shown whole.
func Diff(a, b *Network) []config.Difference {
	fa, fb := flattenNetwork(a), flattenNetwork(b)
	var out []config.Difference
	for p, va := range fa {
		vb, ok := fb[p]
		switch {
		case !ok:
			out = append(out, config.Difference{Path: p, Old: va})
		case string(va) != string(vb):
			out = append(out, config.Difference{Path: p, Old: va, New: vb})
		}
	}
	for p, vb := range fb {
		if _, ok := fa[p]; !ok {
			out = append(out, config.Difference{Path: p, New: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flattenNetwork maps each leaf of n's JSON form to its value. Zero
// values (false, 0, "", empty lists) are left out, so that a setting at
// its default and one absent compare equal.
func flattenNetwork(n *Network) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if n == nil {
		return out
	}
	b, err := json.Marshal(n)
	if err != nil {
		return out
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return out
	}
	flattenNet(out, "", generic)
	return out
}

func flattenNet(out map[string]json.RawMessage, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, item := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flattenNet(out, p, item)
		}
	case []any:
		if len(x) == 0 {
			return
		}
		if _, objects := x[0].(map[string]any); !objects {
			b, _ := json.Marshal(x)
			out[path] = b
			return
		}
		for i, item := range x {
			flattenNet(out, path+"["+netItemKey(item, i)+"]", item)
		}
	default:
		if x == nil || x == false || x == "" || x == float64(0) {
			return
		}
		b, _ := json.Marshal(x)
		out[path] = b
	}
}

// netItemKey names an interface by its name and a route by its
// destination, so that inserting one does not show every later one as
// changed.
func netItemKey(item any, i int) string {
	if m, ok := item.(map[string]any); ok {
		if s, ok := m["name"].(string); ok && s != "" {
			return "name=" + s
		}
		if s, ok := m["destination"].(string); ok && s != "" {
			return "destination=" + s
		}
	}
	return fmt.Sprint(i)
}
