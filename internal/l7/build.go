package l7

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
)

// Build holds what BuildService needs besides the service: the rest of the
// configuration and the data plane's view of real servers.
type Build struct {
	// Config is the whole (validated) configuration.
	Config *config.Config
	// Rules are the configuration's compiled content rules (rules.Compile
	// of Config.ContentRules, once per generation).
	Rules *rules.Set
	// Certs are the configuration's parsed certificates; required for
	// services with TLS offload.
	Certs *certs.Store
	// Tickets encrypts the service's session tickets; keep one per service
	// across generations so resumption survives reloads. nil: Go's own.
	Tickets *certs.TicketKeys
	// Pools are the real servers of the service (when it has no SubVSs)
	// and of each of its SubVSs, as the data plane compiled them, by the
	// service or SubVS they serve (pointers into Config). Required.
	Pools map[*config.VirtualService]Servers
}

// Servers are the real-server side of one pool (a service or a SubVS),
// compiled by the data plane.
type Servers struct {
	// Picker chooses among the real servers of the pool. Required.
	Picker balance.Picker
	// Persist decorates Picker; nil for none.
	Persist Persistence
	// Sorry receives the requests when Picker has no server; nil for none.
	Sorry *backend.Server
	// Stats counts the pool's requests; may be nil.
	Stats *backend.Counters
	// HTTP counts the requests of a SubVS; nil for the service's own
	// pool (ServiceConfig.HTTP counts those).
	HTTP *backend.HTTPCounters
}

// BuildService compiles an http or http2 virtual service into a
// ServiceConfig. Errors name the service's field. The service-wide
// counters (Stats), limits and IdleTimeout are the caller's to set: the
// data plane resolves them (ServiceConfig's zero values take the
// package defaults).
func (b *Build) BuildService(name string, vs *config.VirtualService) (ServiceConfig, error) {
	if b.Rules == nil {
		set, err := rules.Compile(b.Config.ContentRules)
		if err != nil {
			return ServiceConfig{}, err
		}
		b.Rules = set
	}
	h := vs.HTTP
	if h == nil {
		h = &config.HTTPSettings{}
	}
	sc := ServiceConfig{
		Name:            name,
		AddVia:          vs.AddVia,
		PerRequest:      b.Config.Options.AlwaysPersist != "no",
		MaxHeaderBytes:  h.MaxHeaderBytes,
		MaxHeaders:      h.MaxHeaders,
		MaxURI:          h.MaxURI,
		HeaderTimeout:   time.Duration(h.HeaderTimeout) * time.Second,
		BodyTimeout:     time.Duration(h.BodyTimeout) * time.Second,
		BodyMinRate:     int64(h.BodyMinRate), // 0: the default; -1: none
		ResponseTimeout: time.Duration(h.ResponseTimeout) * time.Second,
		MaxStreams:      h.MaxStreams,
		Retries:         DefaultRetries,
		RetryTimeout:    time.Duration(h.RetryTimeout) * time.Second,
	}
	if h.Retries != nil {
		sc.Retries = *h.Retries
	}
	for i, c := range h.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, err2 := netip.ParseAddr(c)
			if err2 != nil {
				return sc, fmt.Errorf("%s: http.trustedProxies[%d]: %w", name, i, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		sc.TrustedProxies = append(sc.TrustedProxies, p)
	}
	var err error
	if sc.PreRules, err = b.Rules.Lookup(h.PreRules); err != nil {
		return sc, fmt.Errorf("%s: http.preRules: %w", name, err)
	}
	if vs.TLS.Offload {
		if b.Certs == nil {
			return sc, fmt.Errorf("%s: tls: no certificate store", name)
		}
		protos := []string{"http/1.1"}
		if vs.Type == "http2" {
			protos = []string{"h2", "http/1.1"}
		}
		sc.TLS, err = b.Certs.ServerConfig(vs.TLS, certs.ServerOptions{NextProtos: protos, Tickets: b.Tickets})
		if err != nil {
			return sc, fmt.Errorf("%s: tls: %w", name, err)
		}
	}
	if len(vs.SubVSs) == 0 {
		if sc.Pool, err = b.pool(name, vs, vs); err != nil {
			return sc, err
		}
		// The service's own rules are the pool's: nothing at service level.
		return sc, nil
	}
	if sc.RequestRules, err = b.Rules.Lookup(h.RequestRules); err != nil {
		return sc, fmt.Errorf("%s: http.requestRules: %w", name, err)
	}
	if sc.ResponseRules, err = b.Rules.Lookup(h.ResponseRules); err != nil {
		return sc, fmt.Errorf("%s: http.responseRules: %w", name, err)
	}
	for i := range vs.SubVSs {
		sub := &vs.SubVSs[i]
		sname := fmt.Sprintf("%s.subVSs[%d]", name, i)
		pl, err := b.pool(sname, sub, vs)
		if err != nil {
			return sc, err
		}
		pl.SubVS, pl.SubVSName = sub.ID, sub.NickName
		if pl.SubVSName == "" {
			pl.SubVSName = fmt.Sprintf("SubVS %d", sub.ID)
		}
		sv := SubVS{Pool: pl}
		if sub.HTTP != nil {
			if sv.Select, err = b.Rules.Lookup(sub.HTTP.SelectRules); err != nil {
				return sc, fmt.Errorf("%s: http.selectRules: %w", sname, err)
			}
		}
		sc.SubVSs = append(sc.SubVSs, sv)
	}
	return sc, nil
}

// pool compiles a service or SubVS (vs) whose parent is parent (vs itself
// for a service with real servers).
func (b *Build) pool(name string, vs, parent *config.VirtualService) (*Pool, error) {
	srv, ok := b.Pools[vs]
	if !ok || srv.Picker == nil {
		return nil, fmt.Errorf("%s: no real servers compiled for it", name)
	}
	pl := &Pool{Name: name, Picker: srv.Picker, Persist: srv.Persist, Sorry: srv.Sorry, Stats: srv.Stats,
		HTTP: srv.HTTP, HashURL: vs.Schedule == "uhash"}
	var err error
	t := vs.TLS
	if vs != parent && !t.Reencrypt && parent.TLS.Reencrypt {
		t = parent.TLS // a SubVS without TLS settings of its own re-encrypts as its parent does
	}
	if t.Reencrypt {
		if pl.Reencrypt, err = certs.ClientConfig(t); err != nil {
			return nil, fmt.Errorf("%s: tls: %w", name, err)
		}
		pl.PassSNI = t.PassSNI
	}
	h := vs.HTTP
	if h == nil {
		h = parent.HTTP
	}
	if h == nil {
		return pl, nil
	}
	pl.HostRewrite = h.HostRewrite
	pl.ErrorCode, pl.ErrorURL = h.ErrorCode, h.ErrorURL
	if h.ErrorPage != "" {
		pl.ErrorPage = []byte(h.ErrorPage)
	}
	if pl.RequestRules, err = b.Rules.Lookup(h.RequestRules); err != nil {
		return nil, fmt.Errorf("%s: http.requestRules: %w", name, err)
	}
	if pl.ResponseRules, err = b.Rules.Lookup(h.ResponseRules); err != nil {
		return nil, fmt.Errorf("%s: http.responseRules: %w", name, err)
	}
	if vs != parent && vs.HTTP == nil {
		// Inherited settings only: the parent's rules already run at
		// service level.
		pl.RequestRules, pl.ResponseRules = nil, nil
	}
	return pl, nil
}
