package persist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AlwaysInfo is one value of "always check persist" (configuration
// Options.AlwaysPersist, LoadMaster `alwayspersist`), registered once in
// alwaysModes.
type AlwaysInfo struct {
	// Always is the value.
	Always Always
	// Name is its configuration value.
	Name string
	// Label is how the web UI names it.
	Label string
	// LoadMaster is its number in the LoadMaster API's alwayspersist.
	LoadMaster int
}

// alwaysModes lists every value of "always check persist" once, in the
// order the web UI offers them and validation names them.
var alwaysModes = []AlwaysInfo{
	{Always: AlwaysNo, Name: "no", Label: "No (first request only)", LoadMaster: 0},
	{Always: AlwaysYes, Name: "yes", Label: "Yes (every request)", LoadMaster: 1},
	{Always: AlwaysAcceptChanges, Name: "accept-changes", Label: "Yes, accept changes", LoadMaster: 2},
}

// AlwaysRegistered returns every value of "always check persist", in
// registry order.
func AlwaysRegistered() []AlwaysInfo { return slices.Clone(alwaysModes) }

// AlwaysNames returns the configuration names of the values of "always
// check persist", in registry order.
func AlwaysNames() []string {
	out := make([]string, len(alwaysModes))
	for i, a := range alwaysModes {
		out[i] = a.Name
	}
	return out
}

// AlwaysFromLoadMaster returns the value of "always check persist" whose
// LoadMaster number, written in decimal, is lm.
func AlwaysFromLoadMaster(lm string) (AlwaysInfo, bool) {
	i := slices.IndexFunc(alwaysModes, func(a AlwaysInfo) bool { return strconv.Itoa(a.LoadMaster) == lm })
	if i < 0 {
		return AlwaysInfo{}, false
	}
	return alwaysModes[i], true
}

// AlwaysLookup returns the value of "always check persist" with the
// configuration name.
func AlwaysLookup(name string) (AlwaysInfo, bool) {
	i := slices.IndexFunc(alwaysModes, func(a AlwaysInfo) bool { return a.Name == name })
	if i < 0 {
		return AlwaysInfo{}, false
	}
	return alwaysModes[i], true
}

// ParseAlways reads the configuration's values of "always check persist";
// "" is "no".
func ParseAlways(s string) (Always, error) {
	if s == "" {
		return AlwaysNo, nil
	}
	if a, ok := AlwaysLookup(s); ok {
		return a.Always, nil
	}
	names := AlwaysNames()
	return 0, fmt.Errorf("always persist must be %s or %s, got %q", strings.Join(names[:len(names)-1], ", "), names[len(names)-1], s)
}
