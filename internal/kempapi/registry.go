package kempapi

import (
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// The LoadMaster values of the scheduling methods, persistence modes and
// values of "always check persist" come from where they are registered
// (packages balance and persist). A LoadMaster value nothing is
// registered under is kept as it is, for validation to refuse with its
// list of allowed values.

// scheduleIn is the scheduling method of LoadMaster's Schedule value.
func scheduleIn(val string) string {
	lm := strings.ToLower(strings.TrimSpace(val))
	if m, ok := balance.FromLoadMaster(lm); ok {
		return m.Name
	}
	return lm
}

// scheduleOut is LoadMaster's Schedule value of a scheduling method; a
// method LoadMaster does not have is shown by its own name.
func scheduleOut(name string) string {
	if m, ok := balance.Lookup(name); ok && m.LoadMaster != "" {
		return m.LoadMaster
	}
	return name
}

// persistIn is the persistence mode of LoadMaster's Persist value.
func persistIn(val string) string {
	lm := strings.ToLower(strings.TrimSpace(val))
	if m, ok := persist.FromLoadMaster(lm); ok {
		return m.Name
	}
	return lm
}

// persistOut is LoadMaster's Persist value of a persistence mode; a mode
// LoadMaster does not have is shown by its own name.
func persistOut(name string) string {
	if m, ok := persist.Lookup(name); ok && m.LoadMaster != "" {
		return m.LoadMaster
	}
	return name
}

// alwaysIn is the value of "always check persist" of LoadMaster's
// alwayspersist: its number, or "no" and "yes" for 0 and 1.
func alwaysIn(val string) (string, bool) {
	lm := strings.ToLower(strings.TrimSpace(val))
	switch lm {
	case "no":
		lm = "0"
	case "yes":
		lm = "1"
	}
	a, ok := persist.AlwaysFromLoadMaster(lm)
	return a.Name, ok
}

// alwaysOut is LoadMaster's alwayspersist number of a value of "always
// check persist"; 0 for one not registered.
func alwaysOut(name string) int {
	a, _ := persist.AlwaysLookup(name)
	return a.LoadMaster
}
