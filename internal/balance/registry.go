package balance

import "slices"

// MethodInfo is one scheduling method as the configuration, the web UI
// and the LoadMaster-compatible API name it. Every method is registered
// once, in registry; the configuration's allowed values, the web UI's
// choices and the LoadMaster mapping are derived from it.
type MethodInfo struct {
	// Name is the method's configuration value (VirtualService.Schedule).
	Name string
	// Label is how the web UI names the method, as LoadMaster's WUI does.
	Label string
	// LoadMaster is the method's value of the LoadMaster API's Schedule
	// parameter; "" for a method LoadMaster does not have.
	LoadMaster string
	// build makes the method's Picker.
	build builder
}

// registry lists every scheduling method once, in the order the web UI
// offers them and validation names them.
var registry = []MethodInfo{
	{Name: "rr", Label: "Round robin", LoadMaster: "rr", build: newRoundRobin},
	{Name: "wrr", Label: "Weighted round robin", LoadMaster: "wrr", build: newWeightedRoundRobin},
	{Name: "lc", Label: "Least connection", LoadMaster: "lc", build: newLeastConn},
	{Name: "wlc", Label: "Weighted least connection", LoadMaster: "wlc", build: newWeightedLeastConn},
	{Name: "fixed", Label: "Fixed weighting", LoadMaster: "fixed", build: newFixed},
	{Name: "sh", Label: "Source IP hash", LoadMaster: "sh", build: newSourceHash},
	{Name: "uhash", Label: "URL hash", LoadMaster: "uhash", build: newURLHash},
	{Name: "dl", Label: "Weighted response time", LoadMaster: "dl", build: newWeightedResponse},
	{Name: "adaptive", Label: "Resource based (adaptive)", LoadMaster: "adaptive", build: newAdaptive},
}

// methods maps each scheduling method's name to its builder.
var methods = func() map[string]builder {
	m := make(map[string]builder, len(registry))
	for _, r := range registry {
		m[r.Name] = r.build
	}
	return m
}()

// Registered returns every scheduling method, in registry order.
func Registered() []MethodInfo { return slices.Clone(registry) }

// Names returns the configuration names of the scheduling methods, in
// registry order.
func Names() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.Name
	}
	return out
}

// Lookup returns the scheduling method with the configuration name.
func Lookup(name string) (MethodInfo, bool) {
	i := slices.IndexFunc(registry, func(r MethodInfo) bool { return r.Name == name })
	if i < 0 {
		return MethodInfo{}, false
	}
	return registry[i], true
}

// FromLoadMaster returns the scheduling method whose LoadMaster Schedule
// value is lm.
func FromLoadMaster(lm string) (MethodInfo, bool) {
	i := slices.IndexFunc(registry, func(r MethodInfo) bool { return r.LoadMaster != "" && r.LoadMaster == lm })
	if i < 0 {
		return MethodInfo{}, false
	}
	return registry[i], true
}
