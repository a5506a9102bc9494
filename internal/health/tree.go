package health

import (
	"maps"
	"slices"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// tree is the plan of one top-level service and its SubVSs, kept from one
// Sync to the next: a later Sync whose configuration of the service is
// unchanged in everything the checks and statuses depend on (its sig)
// reuses it as it is, so that the cost of a Sync follows what changed.
type tree struct {
	sig      vsSig
	services []*vsState   // the service, then its SubVSs, in configuration order
	checks   []keyedCheck // the checks its real servers should have
	tasks    []*task      // the running checks, one per checks entry; set by apply
	gen      uint64       // the Sync that last kept it in force
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

// vsSig is the part of a service's configuration that its plan depends
// on, copied so that later changes to the configuration cannot alter it.
type vsSig struct {
	id       int
	address  string
	port     int
	protocol string
	enabled  bool
	sorry    bool
	check    config.HealthCheck // Headers and Codes are copies
	servers  []rsSig
	subs     []vsSig
}

// rsSig is the part of a real server's configuration its plan depends on.
type rsSig struct {
	id           int
	address      string
	port         int
	enabled      bool
	critical     bool
	follow       int
	checkAddress string
}

func newRSSig(rs *config.RealServer) rsSig {
	return rsSig{id: rs.ID, address: rs.Address, port: rs.Port, enabled: rs.Enabled == nil || *rs.Enabled,
		critical: rs.Critical, follow: rs.Follow, checkAddress: rs.CheckAddress}
}

// newVSSig returns the signature of vs and its SubVSs.
func newVSSig(vs *config.VirtualService) vsSig {
	s := vsSig{id: vs.ID, address: vs.Address, port: vs.Port, protocol: vs.Protocol,
		enabled: vs.Enabled == nil || *vs.Enabled, sorry: vs.SorryServer != nil, check: vs.HealthCheck}
	s.check.Headers = maps.Clone(vs.HealthCheck.Headers)
	s.check.Codes = slices.Clone(vs.HealthCheck.Codes)
	s.servers = make([]rsSig, len(vs.RealServers))
	for i := range vs.RealServers {
		s.servers[i] = newRSSig(&vs.RealServers[i])
	}
	if len(vs.SubVSs) > 0 {
		s.subs = make([]vsSig, len(vs.SubVSs))
		for i := range vs.SubVSs {
			s.subs[i] = newVSSig(&vs.SubVSs[i])
		}
	}
	return s
}

// same reports whether vs still has signature s. It allocates nothing.
func (s *vsSig) same(vs *config.VirtualService) bool {
	if s.id != vs.ID || s.address != vs.Address || s.port != vs.Port || s.protocol != vs.Protocol ||
		s.enabled != (vs.Enabled == nil || *vs.Enabled) || s.sorry != (vs.SorryServer != nil) ||
		!sameCheck(&s.check, &vs.HealthCheck) ||
		len(s.servers) != len(vs.RealServers) || len(s.subs) != len(vs.SubVSs) {
		return false
	}
	for i := range vs.RealServers {
		if s.servers[i] != newRSSig(&vs.RealServers[i]) {
			return false
		}
	}
	for i := range vs.SubVSs {
		if !s.subs[i].same(&vs.SubVSs[i]) {
			return false
		}
	}
	return true
}

// sameCheck reports whether a and b are equal in every field. A field
// added to config.HealthCheck must be added here.
func sameCheck(a, b *config.HealthCheck) bool {
	return a.Type == b.Type && a.Port == b.Port && a.URL == b.URL && a.Method == b.Method &&
		a.HTTP11 == b.HTTP11 && a.Host == b.Host && maps.Equal(a.Headers, b.Headers) &&
		a.PostData == b.PostData && slices.Equal(a.Codes, b.Codes) && a.Pattern == b.Pattern &&
		a.Send == b.Send && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.RetryCount == b.RetryCount && a.MinUp == b.MinUp && a.VerifyTLS == b.VerifyTLS &&
		a.StartTLS == b.StartTLS
}
