package events

import "strings"

// Group is a family of kinds that the Logs page and GET /api/v1/logs
// filter by: a kind filter is a group's prefix or one kind.
type Group struct {
	// Prefix selects the group's kinds (Filter.Kind).
	Prefix string
	// Label names the group for people.
	Label string
}

// Groups are the families of kinds, in the order the Logs page offers
// them.
var Groups = []Group{
	{Prefix: "rs.", Label: "Real server state"},
	{Prefix: "vs.", Label: "Virtual service state"},
	{Prefix: "config.", Label: "Configuration"},
	{Prefix: "admin.", Label: "Logins and administration"},
	{Prefix: "cert.", Label: "Certificates"},
	{Prefix: KindNetwork, Label: "Network"},
	{Prefix: KindSystem, Label: "System"},
}

// Kinds are every kind of event, in the order of the constants.
var Kinds = []string{KindRSDown, KindRSUp, KindRSState, KindVSDown, KindVSUp, KindVSState, KindConfigChange,
	KindLogin, KindLoginFailed, KindLockout, KindAdmin, KindCertExpiring, KindCertExpired, KindNetwork, KindSystem}

// ValidKindFilter reports whether k is a group's prefix, a kind, or ""
// (every kind).
func ValidKindFilter(k string) bool {
	if k == "" {
		return true
	}
	for _, g := range Groups {
		if g.Prefix == k {
			return true
		}
	}
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// KindFilters lists the values ValidKindFilter accepts besides "", for
// error messages.
func KindFilters() string {
	out := make([]string, 0, len(Groups)+len(Kinds))
	seen := map[string]bool{}
	for _, g := range Groups {
		out = append(out, g.Prefix)
		seen[g.Prefix] = true
	}
	for _, k := range Kinds {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}
