package persist

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// Persister is the persistence decorator of one virtual service for one
// configuration generation. It is a balance.Picker. Its methods are safe
// for concurrent use.
type Persister struct {
	inner   balance.Picker
	reserve func(*backend.Server) (func(balance.Outcome), bool)
	table   *Table
	set     Settings
	spec    spec
	ttl     time.Duration
	refresh time.Duration // ttl with Refresh, else 0

	servers []*backend.Server
	ids     []uint32 // per server: its number in the table
	byPtr   map[*backend.Server]int32
	byKey   map[backend.Key]int32
	byAddr  map[string]int32 // first server with each address

	signer *signer
	sids   []serverID
	bySID  map[serverID]int32
	byHost map[[serverIDLen / 2]byte]int32

	localMu sync.Mutex
	local   atomic.Pointer[[]int32] // table server number → index in servers, -1
}

// New returns a Persister of s.Mode over inner, which was built over
// servers, keeping its entries in table. It checks s and returns an error
// naming the field at fault.
func New(inner balance.Picker, servers []*backend.Server, table *Table, s Settings) (*Persister, error) {
	if s.Mode == "" {
		s.Mode = ModeNone
	}
	sp, ok := specs[s.Mode]
	if !ok {
		return nil, fmt.Errorf("unknown persistence mode %q", s.Mode)
	}
	if inner == nil {
		return nil, errors.New("persist: no picker")
	}
	if table == nil && s.Mode != ModeNone {
		return nil, errors.New("persist: no table")
	}
	switch {
	case s.Timeout < 0 || s.Timeout > MaxTimeout:
		return nil, fmt.Errorf("persistence timeout must be 0-28 days, got %s", s.Timeout)
	case s.Timeout == 0:
		s.Timeout = DefaultTimeout
	}
	if s.Mask < 0 || s.Mask > 32 {
		return nil, fmt.Errorf("persistence mask must be 0-32, got %d", s.Mask)
	}
	if s.Mask6 < 0 || s.Mask6 > 128 {
		return nil, fmt.Errorf("persistence IPv6 mask must be 0-128, got %d", s.Mask6)
	}
	switch s.Mode {
	case ModeCookie, ModeCookieSrc:
		if s.Name == "" {
			return nil, fmt.Errorf("persistence mode %s needs a cookie name", s.Mode)
		}
	case ModeActiveCookie, ModeActiveCookieSrc:
		if s.Name == "" {
			s.Name = DefaultActiveCookie
		}
	case ModeHeader:
		if !isToken(s.Name) {
			return nil, fmt.Errorf("persistence mode header needs a valid header name, got %q", s.Name)
		}
	case ModeQueryHash:
		if s.QueryTag == "" {
			return nil, errors.New("persistence mode query-hash needs a query tag")
		}
	}
	if (s.Mode == ModeCookie || s.Mode == ModeCookieSrc || sp.kind == kindToken) && !isToken(s.Name) {
		return nil, fmt.Errorf("persistence cookie name %q is not a valid cookie name", s.Name)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	p := &Persister{
		inner: inner, table: table, set: s, spec: sp, ttl: s.Timeout,
		servers: servers,
		ids:     make([]uint32, len(servers)),
		byPtr:   make(map[*backend.Server]int32, len(servers)),
		byKey:   make(map[backend.Key]int32, len(servers)),
		byAddr:  make(map[string]int32, len(servers)),
	}
	if s.Refresh {
		p.refresh = s.Timeout
	}
	if r, ok := inner.(balance.Reserver); ok {
		p.reserve = r.Reserve
	} else {
		p.reserve = func(srv *backend.Server) (func(balance.Outcome), bool) {
			if srv.Acquire(int64(srv.Limit())) {
				return balance.Release(srv), true
			}
			return nil, false
		}
	}
	for i, srv := range servers {
		k := srv.Key()
		p.byPtr[srv] = int32(i)
		p.byKey[k] = int32(i)
		if _, dup := p.byAddr[k.Address]; !dup {
			p.byAddr[k.Address] = int32(i)
		}
		if table != nil {
			p.ids[i] = table.ServerID(k)
		}
	}
	if sp.kind == kindToken {
		sg, err := newSigner(s.Secret, table.ID())
		if err != nil {
			return nil, err
		}
		p.signer = sg
		p.sids = make([]serverID, len(servers))
		p.bySID = make(map[serverID]int32, len(servers))
		p.byHost = make(map[[serverIDLen / 2]byte]int32, len(servers))
		for i, srv := range servers {
			k := srv.Key()
			id := sg.serverID(k.Address, k.Port)
			p.sids[i] = id
			p.bySID[id] = int32(i)
			if _, dup := p.byHost[id.hostPart()]; !dup {
				p.byHost[id.hostPart()] = int32(i)
			}
		}
	}
	return p, nil
}

// Settings returns the settings in force (with defaults filled in).
func (p *Persister) Settings() Settings { return p.set }

// Table returns the table the Persister keeps its entries in.
func (p *Persister) Table() *Table { return p.table }

// Close closes the Picker behind the Persister, if it has background work.
func (p *Persister) Close() error {
	if c, ok := p.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Reserve implements balance.Reserver through the Picker it wraps, so
// that a proxy holding a client to a server it chose earlier (layer 7
// scheduling per connection) reserves and reports as a pick does.
func (p *Persister) Reserve(srv *backend.Server) (func(balance.Outcome), bool) {
	return p.reserve(srv)
}

// Pick implements balance.Picker for proxies that only know the request
// of the scheduling method (a layer-4 TCP connection): the source-IP modes
// work, the others schedule.
func (p *Persister) Pick(req *balance.Request) (*backend.Server, func(balance.Outcome), error) {
	in := Input{Request: *req}
	return p.choose(&in, nil)
}

// PickInput chooses a real server for in: the one in is persisted to if it
// can take it, or else the Picker's choice, which is then persisted. The
// caller must call done exactly once when the connection or request ends,
// with its outcome (see balance.Picker).
// Layer-4 proxies call it once per connection.
func (p *Persister) PickInput(in *Input) (srv *backend.Server, done func(balance.Outcome), err error) {
	return p.choose(in, nil)
}

// isToken reports whether name is an HTTP token (RFC 9110), as cookie and
// header names must be.
func isToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
