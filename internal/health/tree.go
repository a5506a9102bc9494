package health

import (
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// tree is the plan of one top-level service and its SubVSs, kept from one
// Sync to the next: a later Sync whose configuration of the service is
// unchanged (config.SameService, the data plane's test too) reuses it as
// it is, so that the cost of a Sync follows what changed.
type tree struct {
	vs       *config.VirtualService // a private copy of the service planned
	services []*vsState             // the service, then its SubVSs, in configuration order
	checks   []keyedCheck           // the checks its real servers should have
	tasks    []*task                // the running checks, one per checks entry; set by apply
	gen      uint64                 // the Sync that last kept it in force
}

// keyedCheck is a wanted check with the key of the real server checked.
type keyedCheck struct {
	key backend.Key
	w   wanted
}

// srvUpdate is a new data-plane server for a real server of a kept tree.
type srvUpdate struct {
	s   *rsState
	srv *backend.Server
}
