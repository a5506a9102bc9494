// Package edit holds the typed edits of the configuration that the front
// ends offer — add, change or remove a virtual service, SubVS, real server
// or certificate. Each is a control.Edit: it changes a private copy of the
// configuration and names itself for the history and the audit log. The
// web UI, the native API and the LoadMaster API only translate their wire
// format into these edits and their results into answers; the write path
// (control.Controller.Apply) validates, compiles, commits and audits them.
// See docs/architecture.md.
package edit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// Name is how a service is named in summaries and lists: its nickname, or
// its address and port, or for a SubVS without a nickname "SubVS <id>".
func Name(v *config.VirtualService) string {
	if v.NickName != "" {
		return v.NickName
	}
	if v.Address == "" {
		return "SubVS " + strconv.Itoa(v.ID)
	}
	return Endpoint(v.Address, v.Port)
}

// Endpoint joins an address and port, bracketing IPv6 addresses.
func Endpoint(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:" + strconv.Itoa(port)
	}
	return addr + ":" + strconv.Itoa(port)
}

// maxJoined is the longest summary All makes by joining its edits'.
const maxJoined = 200

// All is several edits made as one change, in order. Its summary joins
// theirs with "; " when each has one and the result is short (at most
// about 200 characters); otherwise it is made from the diff, which
// shortens itself.
type All []control.Edit

// Apply implements control.Edit.
func (a All) Apply(cfg *config.Config) (string, error) {
	var parts []string
	described := true
	for _, e := range a {
		s, err := e.Apply(cfg)
		if err != nil {
			return "", err
		}
		described = described && s != ""
		parts = append(parts, s)
	}
	joined := strings.Join(parts, "; ")
	if !described || (len(parts) > 1 && len(joined) > maxJoined) {
		return "", nil
	}
	return joined, nil
}

// notFoundVS is the error of a service or SubVS that does not exist.
func notFoundVS(id int) error {
	return fmt.Errorf("virtual service %d: %w", id, control.ErrNotFound)
}

// lookupVS returns the service or SubVS id of cfg and its parent (nil for
// a top-level service).
func lookupVS(cfg *config.Config, id int) (v, parent *config.VirtualService, err error) {
	cfg.Walk(func(x, p *config.VirtualService) {
		if x.ID == id && v == nil {
			v, parent = x, p
		}
	})
	if v == nil {
		return nil, nil, notFoundVS(id)
	}
	return v, parent, nil
}
