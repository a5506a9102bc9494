package dataplane

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// compilePicker builds the picker of a served service over all of its
// real servers (pickers skip disabled, Down and draining ones at pick
// time, so a draining server still keeps its persisted clients), with the
// global slow start and adaptive settings, and wraps it in a Persister
// when the service persists. The picker's background work ends with the
// candidate's context.
func (c *compiled) compilePicker(s *service, all []*backend.Server) error {
	picker, p, table, err := c.newPicker(s.vs, s.label, all)
	if err != nil {
		return err
	}
	s.picker, s.table = picker, table
	if p != nil && s.vs.Persistence.Mode == persist.ModeUDPSIP && s.vs.Protocol == "udp" {
		s.picker = sipPicker{p}
	}
	return nil
}

// newPicker builds the picker of a service or SubVS vs over all (see
// compilePicker). When vs persists, the picker is the returned Persister
// and table its persistence table.
func (c *compiled) newPicker(vs *config.VirtualService, label string, all []*backend.Server) (balance.Picker, *persist.Persister, *persist.Table, error) {
	o := c.cfg.Options
	inner, err := balance.NewWithOptions(vs.Schedule, all, balance.Options{
		SlowStart: time.Duration(o.SlowStart) * time.Second,
		Adaptive: balance.Adaptive{
			URL:        o.Adaptive.URL,
			Port:       o.Adaptive.Port,
			Interval:   time.Duration(o.Adaptive.Interval) * time.Second,
			MinPercent: o.Adaptive.MinPercent,
		},
		Context: c.ctx,
		Logger:  c.log,
		Observe: c.observe,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: schedule: %w", label, err)
	}
	if vs.Schedule == "dl" {
		c.dl = true
	}
	mode := vs.Persistence.Mode
	if mode == "" || mode == persist.ModeNone {
		return inner, nil, nil, nil
	}
	always, err := persist.ParseAlways(o.AlwaysPersist)
	if err != nil {
		closePicker(inner)
		return nil, nil, nil, fmt.Errorf("options.alwaysPersist: %w", err)
	}
	id := tableID(vs)
	table := c.registry.Table(id, 0)
	p, err := persist.New(inner, all, table, persist.Settings{
		Mode:     mode,
		Timeout:  time.Duration(vs.Persistence.Timeout) * time.Second,
		Refresh:  vs.Persistence.Refresh,
		Name:     vs.Persistence.Cookie,
		QueryTag: vs.Persistence.QueryTag,
		Mask:     vs.Persistence.Mask,
		Mask6:    vs.Persistence.Mask6,
		Always:   always,
		Secret:   c.secret,
	})
	if err != nil {
		closePicker(inner)
		return nil, nil, nil, fmt.Errorf("%s: persistence: %w", label, err)
	}
	c.tables = append(c.tables, id)
	return p, p, table, nil
}

// tableID is the ID of the persistence table of vs: its own, or the
// followed service's with port following.
func tableID(vs *config.VirtualService) int {
	if vs.FollowVSID > 0 {
		return vs.FollowVSID
	}
	return vs.ID
}

// sipPicker is the Persister of a udpsip service: the UDP proxy hands it
// the header of the session's first datagram as Request.HashKey (see
// sipHashKey), which it passes on as the SIP message; the scheduling
// method behind it hashes the Call-ID.
type sipPicker struct{ *persist.Persister }

// Pick implements balance.Picker.
func (p sipPicker) Pick(req *balance.Request) (*backend.Server, func(balance.Outcome), error) {
	in := persist.Input{Request: *req}
	in.Request.HashKey = ""
	if req.HashKey != "" {
		in.SIP = []byte(req.HashKey)
		if id, err := persist.CallID(in.SIP); err == nil {
			in.Request.HashKey = string(id)
		}
	}
	return p.PickInput(&in)
}

// sipHashKey is the udp.ServiceConfig.HashKey of udpsip services: the
// header of a SIP datagram that has a Call-ID (what persist.CallID
// reads), or "" for anything else, which is then scheduled without
// persistence on a Call-ID.
func sipHashKey(p []byte) string {
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 {
		p = p[:i+4]
	}
	if _, err := persist.CallID(p); err != nil {
		return ""
	}
	return string(p)
}

// persistNotes explain, in a served service's Status reason, what its
// persistence mode cannot do where it is served.
func persistNotes(vs *config.VirtualService) []string {
	mode := vs.Persistence.Mode
	switch {
	case mode == "" || mode == persist.ModeNone:
		return nil
	case persist.NeedsHTTP(mode):
		n := fmt.Sprintf("persistence %s needs the layer-7 proxy", mode)
		if strings.HasSuffix(mode, "-src") {
			n += ": only its source-address part applies"
		}
		return []string{n}
	case mode == persist.ModeSSL:
		return []string{"persistence ssl needs the TLS session ID of the ClientHello, which the layer-4 proxy does not read: connections are scheduled by " + scheduleName(vs)}
	case mode == persist.ModeUDPSIP && vs.Protocol != "udp":
		return []string{"persistence udpsip applies to udp services: connections are scheduled by " + scheduleName(vs)}
	}
	return nil
}

// scheduleName is the method a service is scheduled by, for messages.
func scheduleName(vs *config.VirtualService) string {
	if !balance.Implemented(vs.Schedule) {
		return balance.FallbackMethod
	}
	return vs.Schedule
}
