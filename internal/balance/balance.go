// Package balance implements the scheduling methods that choose a real
// server for a new connection or request.
//
// A Picker is built for one set of available real servers and is immutable:
// when the set, a weight or a limit changes, a new Picker is built. The
// mutable state it needs (active connection counts) lives on
// backend.Server, so it carries over between Pickers.
//
// Implemented methods: rr, wrr, lc and wlc, one file each. The remaining
// methods of config.Schedules (fixed, sh, uhash, dl, adaptive) are not
// implemented yet: New returns a round-robin Picker for them and
// Implemented reports false, so callers can say so to the user.
package balance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// ErrNoServer is returned by Pick when no real server can take the
// connection: there is none, or every one is at its connection limit.
var ErrNoServer = errors.New("no real server available")

// Request carries what any scheduling method may need to choose, protocol
// neutral. Fields a method does not use may be left zero.
type Request struct {
	// Client is the client's address and port.
	Client netip.AddrPort
	// SNI is the TLS server name sent by the client, if known.
	SNI string
	// HashKey is an explicit key for hashing methods (e.g. a URL), if any.
	HashKey string
	// Avoid lists servers the caller has just failed to reach for this
	// request; Pick treats them as unavailable.
	Avoid []*backend.Server
}

// Picker chooses a real server.
type Picker interface {
	// Pick chooses a real server and reserves a connection slot on it. It
	// never blocks. The caller must call done exactly once when the
	// connection or request ends (or its dial fails), which settles the
	// server's active count. It returns ErrNoServer when no server is
	// available.
	Pick(req *Request) (srv *backend.Server, done func(), err error)
}

// builder makes a Picker for a non-empty set of servers.
type builder func(servers []entry) Picker

// methods maps the implemented scheduling methods to their builders.
var methods = map[string]builder{
	"rr":  newRoundRobin,
	"wrr": newWeightedRoundRobin,
	"lc":  newLeastConn,
	"wlc": newWeightedLeastConn,
}

// fallback lists the methods that config accepts but that are not
// implemented yet; they are served by round robin until they are.
var fallback = map[string]bool{
	"fixed":    true,
	"sh":       true,
	"uhash":    true,
	"dl":       true,
	"adaptive": true,
}

// FallbackMethod is the method used in place of one not yet implemented.
const FallbackMethod = "rr"

// New returns a Picker of the named method over servers, reading each
// server's weight and limit now. A method that config accepts but that is
// not implemented yet (see Implemented) gets a round-robin Picker. An
// unknown method is an error.
func New(method string, servers []*backend.Server) (Picker, error) {
	b, ok := methods[method]
	if !ok {
		if !fallback[method] {
			return nil, fmt.Errorf("unknown scheduling method %q", method)
		}
		b = methods[FallbackMethod]
	}
	if len(servers) == 0 {
		return none{}, nil
	}
	es := make([]entry, len(servers))
	for i, s := range servers {
		set := s.Settings()
		es[i] = entry{srv: s, weight: int64(max(set.Weight, 1)), limit: int64(set.Limit)}
	}
	return b(es), nil
}

// Implemented reports whether method has its own implementation; false for
// a method that New serves with FallbackMethod, and for unknown methods.
func Implemented(method string) bool {
	_, ok := methods[method]
	return ok
}

// Methods returns the implemented methods, sorted.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// entry is a server with the settings captured when the Picker was built.
type entry struct {
	srv    *backend.Server
	weight int64
	limit  int64
}

// acquire reserves a slot on e's server if it is below its limit.
func (e *entry) acquire() bool { return e.srv.Acquire(e.limit) }

// avoided reports whether req asks to pass over e's server.
func (e *entry) avoided(req *Request) bool {
	return len(req.Avoid) > 0 && slices.Contains(req.Avoid, e.srv)
}

// none is the Picker of an empty set.
type none struct{}

// Pick implements Picker: there is never a server.
func (none) Pick(*Request) (*backend.Server, func(), error) { return nil, nil, ErrNoServer }

// randIntN is the default source of random tie-breaking; tests give a
// picker its own.
var randIntN = rand.IntN
