// Package hostnet applies a netcfg.Plan to the host: interfaces, VLAN
// children, addresses, MTU and link state, default gateways and static
// routes, the resolver file and the host name (the node's Network), and
// what services need on top of it: VIP addresses announced with
// gratuitous ARP / unsolicited neighbour advertisements, per-service
// gateways as policy routes, the nftables table "inet fulcrum" for
// transparency and SNAT, and the forwarding sysctls.
//
// It uses netlink and nftables through their libraries, never a shell.
// It changes only the difference between what a plan wants and what the
// kernel has, and owns only what it created or changed: those are listed
// in a state file (and routes and rules carry the protocol number
// RouteProtocol, VLAN children the alias "fulcrum"), so that a restarted
// Fulcrum removes the leftovers of a crashed one, and stopping restores
// the host as it was found.
package hostnet

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RouteProtocol is the routing protocol number ("proto 245") of the
// routes and rules Fulcrum adds.
const RouteProtocol = 0xF5

// Priorities of Fulcrum's policy-routing rules (band 4600-4699).
const (
	// PrioTransparent is the rule "fwmark TransparentMark lookup
	// TransparentTable".
	PrioTransparent = 4600
	// PrioSuppress are the rules "from <VIP> / fwmark <Mark> lookup main
	// suppress_prefixlength 0": directly connected and specific routes
	// win over a service's gateway.
	PrioSuppress = 4610
	// PrioGateway are the rules "from <VIP> / fwmark <Mark> lookup
	// <Table>" of per-service gateways.
	PrioGateway = 4620
)

// Alias is the alias ("ip link set … alias") of the VLAN children
// Fulcrum creates.
const Alias = "fulcrum"

// NFTable is the name of Fulcrum's nftables table (family inet).
const NFTable = "fulcrum"

// DefaultResolvConf is the resolver file written when Options.ResolvConf
// is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// Options configure a Manager.
type Options struct {
	// Log receives what the manager changes; nil discards.
	Log *slog.Logger
	// StateFile is the JSON file (in the data directory) listing
	// everything Fulcrum created or changed on the host, written
	// atomically with mode 0600; "" keeps the list in memory only.
	StateFile string
	// ResolvConf is the resolver file written from Network.DNS; default
	// DefaultResolvConf.
	ResolvConf string
	// NetNS is the network namespace managed; the zero value (or
	// netns.None()) is the process's own.
	NetNS netns.NsHandle
}

// Error is a failure of Prepare, naming the setting's field, e.g.
// "network.interfaces[1].name" or "virtualServices[id=3].defaultGateway".
type Error struct {
	// Field is the path of the setting that could not be applied.
	Field string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// FieldError is e as the configuration's field error (for front ends
// that list errors by path).
func (e *Error) FieldError() config.FieldError {
	return config.FieldError{Path: e.Field, Message: e.Err.Error()}
}

// Manager applies plans to one network namespace. Its methods are safe
// for concurrent use.
type Manager struct {
	mu      sync.Mutex
	o       Options
	log     *slog.Logger
	caps    netcfg.Caps
	h       *netlink.Handle
	ns      netns.NsHandle // -1: the process's own
	owned   []*item        // what Fulcrum owns now, in order of application
	cur     *netcfg.Plan
	pending *tx // the prepared plan not yet committed or reverted
	ann     *announcer
	closed  bool
}

// Probe says whether this process can manage the host's network: it has
// CAP_NET_ADMIN and netlink answers.
func Probe() netcfg.Caps {
	if !hasNetAdmin() {
		return netcfg.Caps{Reason: "Fulcrum runs without CAP_NET_ADMIN"}
	}
	if _, err := netlink.LinkList(); err != nil {
		return netcfg.Caps{Reason: fmt.Sprintf("netlink does not answer: %v", err)}
	}
	return netcfg.Caps{Managed: true}
}

func hasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// New returns a manager of the namespace o.NetNS. It reads the state
// file: what a previous (crashed) run left there is owned, removed by the
// first commit if the new plan does not want it, and by Close. Without
// CAP_NET_ADMIN it does not fail: Caps says why it manages nothing.
func New(o Options) (*Manager, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	m := &Manager{o: o, log: o.Log.With("component", "hostnet"), ns: -1, cur: emptyPlan()}
	if o.NetNS > 0 {
		m.ns = o.NetNS
	}
	m.caps = Probe()
	var err error
	if m.ns >= 0 {
		m.h, err = netlink.NewHandleAt(m.ns)
	} else {
		m.h, err = netlink.NewHandle()
	}
	if err != nil {
		if m.caps.Managed {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		m.h = nil
	} else if m.caps.Managed && m.ns >= 0 {
		if _, err := m.h.LinkList(); err != nil {
			m.h.Close()
			return nil, fmt.Errorf("netlink in namespace: %w", err)
		}
	}
	st, err := loadState(o.StateFile)
	if err != nil {
		if m.h != nil {
			m.h.Close()
		}
		return nil, err
	}
	m.owned = st
	if len(st) > 0 {
		m.log.Info("state file lists what a previous run left on the host", "file", o.StateFile, "items", len(st))
	}
	m.ann = newAnnouncer(m)
	return m, nil
}

func emptyPlan() *netcfg.Plan {
	return &netcfg.Plan{Network: &netcfg.Network{}, Services: map[int]netcfg.Service{}}
}

// Caps says whether the manager applies plans, and why not.
func (m *Manager) Caps() netcfg.Caps { return m.caps }

// Prepare adds and changes what p needs that the host lacks, in order:
// links, addresses, routes, VIPs, per-service gateways, transparency,
// SNAT, DNS, host name. On an error it undoes its own changes and returns
// an *Error naming the field. commit removes what the previous plan had
// and p no longer needs and makes p current; revert undoes Prepare's
// changes. Exactly one of them must be called before the next Prepare.
func (m *Manager) Prepare(p *netcfg.Plan) (commit, revert func(), err error) {
	if p == nil {
		p = emptyPlan()
	}
	if p.Network == nil {
		q := *p
		q.Network = &netcfg.Network{}
		p = &q
	}
	wants, err := m.wanted(p)
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, nil, errors.New("hostnet: the manager is closed")
	case m.pending != nil:
		return nil, nil, errors.New("hostnet: the previous Prepare is neither committed nor reverted")
	}
	if len(wants) > 0 && !m.caps.Managed {
		return nil, nil, &Error{Field: wants[0].field, Err: errors.New(m.caps.Reason)}
	}
	var (
		undos []func() error
		next  []*item
		fresh []*item // VIPs added: announced
	)
	for _, w := range wants {
		old := m.find(w.key())
		rec, undo, err := m.ensure(w, old)
		if err != nil && w.optional6 && errors.Is(err, unix.EAFNOSUPPORT) {
			m.log.Info("the kernel has no IPv6: skipped", "item", w.key())
			continue
		}
		if err != nil {
			m.undo(undos)
			return nil, nil, m.fieldError(w, err)
		}
		if undo != nil {
			undos = append(undos, undo)
			if w.Kind == kindVIP {
				fresh = append(fresh, w)
			}
		}
		if rec != nil {
			next = append(next, rec)
		}
	}
	t := &tx{undos: undos}
	m.pending = t
	m.saveLocked(union(next, m.owned))
	for _, v := range fresh {
		m.ann.announce(v.Link, v.Addr)
	}
	var once sync.Once
	commit = func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.pending != t {
				return // reverted by Close
			}
			m.pending = nil
			keys := map[string]bool{}
			for _, w := range next {
				keys[w.key()] = true
			}
			var stale []*item
			for _, o := range m.owned {
				if !keys[o.key()] {
					stale = append(stale, o)
				}
			}
			left := m.removeAll(stale)
			m.owned = union(next, left)
			if cascades(stale) {
				m.reconcile(wants)
			}
			m.cur = p
			m.saveLocked(m.owned)
		})
	}
	revert = func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.pending != t {
				return
			}
			m.pending = nil
			m.undo(t.undos)
			m.saveLocked(m.owned)
		})
	}
	return commit, revert, nil
}

// tx is one prepared plan.
type tx struct {
	undos []func() error
}

// cascades reports whether removing items may have made the kernel drop
// other things: an IPv4 primary address takes its subnet's secondary
// addresses with it (without promote_secondaries) and routes through it.
func cascades(items []*item) bool {
	for _, it := range items {
		switch it.Kind {
		case kindVLAN, kindLinkState, kindAddr:
			return true
		}
	}
	return false
}

// reconcile ensures wants again after removals, re-adding what the
// kernel dropped with them; what it adds is owned.
func (m *Manager) reconcile(wants []*item) {
	for _, w := range wants {
		rec, undo, err := m.ensure(w, m.find(w.key()))
		if err != nil {
			m.log.Error("re-applying after removals", "item", w.key(), "err", err)
			continue
		}
		if undo != nil && rec != nil {
			m.log.Info("re-applied what the kernel dropped with a removal", "item", w.key())
			m.owned = union(m.owned, []*item{rec})
		}
	}
}

// find returns the owned item with key k, or nil.
func (m *Manager) find(k string) *item {
	for _, o := range m.owned {
		if o.key() == k {
			return o
		}
	}
	return nil
}

// undo runs undos in reverse order, logging failures.
func (m *Manager) undo(undos []func() error) {
	for i := len(undos) - 1; i >= 0; i-- {
		if err := undos[i](); err != nil {
			m.log.Error("undoing a change", "err", err)
		}
	}
}

// removeAll removes items (dependants first) and returns those whose
// removal failed (still owned).
func (m *Manager) removeAll(items []*item) []*item {
	items = slices.Clone(items)
	slices.SortStableFunc(items, func(a, b *item) int { return rank(b.Kind) - rank(a.Kind) })
	var left []*item
	for _, it := range items {
		if err := m.remove(it); err != nil {
			m.log.Error("removing", "item", it.key(), "err", err)
			left = append(left, it)
			continue
		}
		m.log.Info("removed", "item", it.key())
	}
	return left
}

// union returns a followed by the items of b whose key a lacks.
func union(a, b []*item) []*item {
	out := slices.Clone(a)
	have := map[string]bool{}
	for _, x := range a {
		have[x.key()] = true
	}
	for _, x := range b {
		if !have[x.key()] {
			out = append(out, x)
		}
	}
	return out
}

func (m *Manager) fieldError(w *item, err error) error {
	f := w.field
	if errors.Is(err, errNoLink) && w.nameField != "" {
		f = w.nameField
	}
	return &Error{Field: f, Err: err}
}

func (m *Manager) saveLocked(items []*item) {
	if err := saveState(m.o.StateFile, items); err != nil {
		m.log.Error("writing the state file", "file", m.o.StateFile, "err", err)
	}
}

// Links returns the kernel's interfaces; Managed marks those listed in
// the current plan's Network.
func (m *Manager) Links() ([]netcfg.Link, error) {
	m.mu.Lock()
	n := m.cur.Network
	m.mu.Unlock()
	if m.h == nil {
		return nil, errors.New("hostnet: netlink is not available")
	}
	return links(m.h, n)
}

// Close stops announcements, reverts a pending Prepare and removes
// everything Fulcrum owns; the interface settings (addresses, VLAN
// children, MTU, link state, gateways, routes, resolver file, host name)
// stay when the current plan's Network.KeepOnStop, and stay listed in the
// state file.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.ann.stop()
	if m.pending != nil {
		m.undo(m.pending.undos)
		m.pending = nil
	}
	keep := m.cur.Network.KeepOnStop
	var drop, kept []*item
	for _, o := range m.owned {
		if keep && o.Setting {
			kept = append(kept, o)
		} else {
			drop = append(drop, o)
		}
	}
	left := m.removeAll(drop)
	m.owned = append(kept, left...)
	m.saveLocked(m.owned)
	if m.h != nil {
		m.h.Close()
	}
	if len(left) > 0 {
		return fmt.Errorf("hostnet: %d changes could not be undone (listed in %s)", len(left), m.o.StateFile)
	}
	return nil
}
