package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Difference is one changed leaf between two configurations.
type Difference struct {
	// Path names the field; list items that have an id or name are named by
	// it, e.g. "virtualServices[id=3].realServers[id=7].weight".
	Path string `json:"path"`
	// Old is the value before (absent for an addition), as JSON.
	Old json.RawMessage `json:"old,omitempty"`
	// New is the value after (absent for a removal), as JSON.
	New json.RawMessage `json:"new,omitempty"`
}

// String renders the difference as one line: "+ path: new", "- path: old"
// or "~ path: old -> new".
func (d Difference) String() string {
	switch {
	case d.Old == nil:
		return fmt.Sprintf("+ %s: %s", d.Path, d.New)
	case d.New == nil:
		return fmt.Sprintf("- %s: %s", d.Path, d.Old)
	}
	return fmt.Sprintf("~ %s: %s -> %s", d.Path, d.Old, d.New)
}

// Diff lists the leaves that differ between a and b, sorted by path. Secret
// material (private keys) is never shown: a changed key appears as
// "(changed)".
func Diff(a, b *Config) []Difference {
	fa, fb, ok := flattenChanged(a, b)
	if !ok {
		fa, fb = flatten(a), flatten(b)
	}
	var out []Difference
	for p, va := range fa {
		vb, ok := fb[p]
		switch {
		case !ok:
			out = append(out, Difference{Path: p, Old: va})
		case string(va) != string(vb):
			out = append(out, Difference{Path: p, Old: va, New: vb})
		}
	}
	for p, vb := range fb {
		if _, ok := fa[p]; !ok {
			out = append(out, Difference{Path: p, New: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FormatDiff renders differences one per line.
func FormatDiff(ds []Difference) string {
	var sb strings.Builder
	for _, d := range ds {
		sb.WriteString(d.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// flattenChanged flattens a and b as flatten does, except for the virtual
// services that are deeply equal on both sides: those flatten to the same
// leaves under the same paths ("virtualServices[id=N]..."), so they cannot
// contribute a difference and are left out of both maps. This keeps a
// change to one service of a thousand cheap. It reports false, and does
// nothing, unless every service on both sides has a positive ID that is
// unique on its side (as every validated configuration has), since only
// then are items named by ID alone.
func flattenChanged(a, b *Config) (fa, fb map[string]json.RawMessage, ok bool) {
	if a == nil || b == nil {
		return nil, nil, false
	}
	ia, ok := servicesByID(a.VirtualServices)
	if !ok {
		return nil, nil, false
	}
	ib, ok := servicesByID(b.VirtualServices)
	if !ok {
		return nil, nil, false
	}
	fa, fb = flattenRest(a), flattenRest(b)
	same := map[int]bool{}
	for id, va := range ia {
		if vb := ib[id]; vb != nil && sameValue(reflect.ValueOf(va).Elem(), reflect.ValueOf(vb).Elem()) {
			same[id] = true // equal values encode identically
		}
	}
	for id, v := range ia {
		if !same[id] {
			flattenService(fa, v)
		}
	}
	for id, v := range ib {
		if !same[id] {
			flattenService(fb, v)
		}
	}
	return fa, fb, true
}

// servicesByID indexes vss by ID; false when an ID is not positive or not
// unique.
func servicesByID(vss []VirtualService) (map[int]*VirtualService, bool) {
	out := make(map[int]*VirtualService, len(vss))
	for i := range vss {
		v := &vss[i]
		if v.ID <= 0 || out[v.ID] != nil {
			return nil, false
		}
		out[v.ID] = v
	}
	return out, true
}

// flattenRest flattens c without its virtual services' items.
func flattenRest(c *Config) map[string]json.RawMessage {
	r := *c
	r.VirtualServices = nil
	out := flatten(&r)
	if c.VirtualServices != nil {
		delete(out, "virtualServices") // the null of r's nil list; c's list is a list
	}
	return out
}

// flattenService adds the leaves of one virtual service (with a positive
// ID) to out, under the path flatten gives them.
func flattenService(out map[string]json.RawMessage, v *VirtualService) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return
	}
	flattenInto(out, "virtualServices["+itemKey(generic, 0)+"]", generic)
}

func flatten(c *Config) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	if c == nil {
		return out
	}
	b, err := json.Marshal(c)
	if err != nil {
		return out
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return out
	}
	flattenInto(out, "", generic)
	return out
}

func flattenInto(out map[string]json.RawMessage, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, item := range x {
			p := join(path, k)
			if k == "keyPem" {
				if s, _ := item.(string); s != "" {
					h := sha256.Sum256([]byte(s))
					out[p] = json.RawMessage(fmt.Sprintf(`"(secret, sha256 %x)"`, h[:6]))
				}
				continue
			}
			if k == "password" || k == "secret" {
				// A password may be guessable: a plain hash would let a
				// reader of the history test guesses offline. A keyed hash
				// (a key of this process) still shows that it changed.
				if s, _ := item.(string); s != "" {
					m := hmac.New(sha256.New, diffKey)
					m.Write([]byte(s))
					out[p] = json.RawMessage(fmt.Sprintf(`"(secret %x)"`, m.Sum(nil)[:6]))
				}
				continue
			}
			flattenInto(out, p, item)
		}
	case []any:
		if len(x) == 0 {
			return
		}
		for i, item := range x {
			flattenInto(out, path+"["+itemKey(item, i)+"]", item)
		}
	default:
		b, _ := json.Marshal(x)
		out[path] = b
	}
}

// itemKey names a list item by its id or name when it has one, so that
// inserting an item does not show every later item as changed.
func itemKey(item any, i int) string {
	if m, ok := item.(map[string]any); ok {
		if id, ok := m["id"].(float64); ok && id != 0 {
			return fmt.Sprintf("id=%d", int(id))
		}
		if name, ok := m["name"].(string); ok && name != "" {
			return "name=" + name
		}
	}
	return fmt.Sprint(i)
}

// diffKey keys the hashes that stand for passwords and secrets in diffs.
var diffKey = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()
