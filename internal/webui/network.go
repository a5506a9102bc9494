package webui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// The Network page (LoadMaster's System Configuration > Network Setup):
// interfaces with their addresses, MTU, link state and VIP ranges
// ("additional addresses"), VLAN children, default gateways, static
// routes, DNS, the host name and the switches of the node's network
// settings. Every save is a network change through
// control.Controller.ApplyNetwork with the confirm window: while it is
// pending every page shows a banner with a countdown and a Confirm button.

// netMainFields are the fields of the main form, relative to "network".
var netMainFields = []string{"hostname", "dns.servers", "dns.search", "gateway", "gateway6", "enforceVipRanges",
	"keepOnStop", "confirmSeconds"}

// netIfaceFields are the fields of an interface's form, relative to its
// entry in network.interfaces.
var netIfaceFields = []string{"addresses", "mtu", "down", "vipRanges"}

// netIface is one row of the interface list: the kernel's link merged
// with its settings.
type netIface struct {
	Name, MAC, Kind, Parent string
	VLAN                    int
	// Link is "up", "down", or "absent" (configured, not in the kernel).
	Link    string
	Carrier bool
	// MTU is the kernel's MTU (0 when absent).
	MTU int
	// Addresses are the kernel's addresses, or the configured ones when
	// the link is absent.
	Addresses []string
	// Configured is true when the network settings list the interface.
	Configured bool
	// Managed is true when the kernel's link is one Fulcrum configures.
	Managed bool
	// Form edits the interface's settings.
	Form *form
}

// VLANChild reports whether the interface is a VLAN child.
func (i netIface) VLANChild() bool { return i.Parent != "" }

// networkData is the Network page's data.
type networkData struct {
	// Revision is the network settings' revision (not the configuration's).
	Revision uint64
	Change   store.Change
	Net      *netcfg.Network
	Ifaces   []netIface
	// LinksErr says why the kernel's interfaces are not shown.
	LinksErr string
	// Unmanaged says why the settings are not applied to this host, "" when
	// they are.
	Unmanaged string
	Main      *form
	VLAN      *form
	Route     *form
	// Parents are the interfaces a VLAN child can be added to.
	Parents []option
	// Open is the id of the form with errors, to scroll to.
	Open string
}

// ifaceFormID is the id prefix of an interface's form inputs.
func ifaceFormID(name string) string {
	var b strings.Builder
	b.WriteString("if-")
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func fillIface(f *form, c *netcfg.Interface) {
	f.set("addresses", strings.Join(c.Addresses, "\n"))
	f.set("mtu", c.MTU)
	f.set("down", c.Down)
	f.set("vipRanges", strings.Join(c.VIPRanges, "\n"))
}

func fillNetMain(f *form, n *netcfg.Network) {
	f.set("hostname", n.Hostname)
	f.set("dns.servers", strings.Join(n.DNS.Servers, " "))
	f.set("dns.search", strings.Join(n.DNS.Search, " "))
	f.set("gateway", n.Gateway)
	f.set("gateway6", n.Gateway6)
	f.set("enforceVipRanges", n.EnforceVIPRanges)
	f.set("keepOnStop", n.KeepOnStop)
	f.set("confirmSeconds", n.ConfirmSeconds)
}

// words splits a list typed with spaces, commas or new lines.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\n' || r == '\r' || r == '\t' })
}

// netView builds the page's data; failed replaces the fresh form of that
// id ("main", "vlan", "route" or an interface's ifaceFormID). The
// interface named extra is listed even where it is neither in the kernel
// nor configured (its form failed).
func (s *Server) netView(failed map[string]*form, extra string) networkData {
	snap := s.ctl.Network()
	n := snap.Network
	if n == nil {
		n = &netcfg.Network{}
	}
	d := networkData{Revision: snap.Revision, Change: snap.Change, Net: n}
	if snap.Plan != nil && !snap.Plan.Managed {
		d.Unmanaged = snap.Plan.Reason
	}
	pick := func(id string, fresh func() *form) *form {
		if f, ok := failed[id]; ok {
			d.Open = id
			return f.withID(id)
		}
		return fresh().withID(id)
	}
	d.Main = pick("main", func() *form { f := newForm(netMainFields...); fillNetMain(f, n); return f })
	d.VLAN = pick("vlan", func() *form { return newForm("parent", "vlan") })
	d.Route = pick("route", func() *form { return newForm("destination", "gateway") })

	links, err := s.ctl.Links()
	if err != nil {
		d.LinksErr = err.Error()
	}
	seen := map[string]bool{}
	for _, l := range links {
		if l.Name == "lo" {
			continue
		}
		row := netIface{Name: l.Name, MAC: l.MAC, Kind: l.Kind, Parent: l.Parent, VLAN: l.VLAN, Link: "down", Carrier: l.Carrier,
			MTU: l.MTU, Addresses: l.Addresses, Managed: l.Managed}
		if l.Up {
			row.Link = "up"
		}
		seen[l.Name] = true
		d.Ifaces = append(d.Ifaces, row)
	}
	for _, c := range n.Interfaces {
		if !seen[c.Name] {
			seen[c.Name] = true
			d.Ifaces = append(d.Ifaces, netIface{Name: c.Name, Parent: c.Parent, VLAN: c.VLAN, Link: "absent", Addresses: c.Addresses})
		}
	}
	if extra != "" && !seen[extra] {
		d.Ifaces = append(d.Ifaces, netIface{Name: extra, Link: "absent"})
	}
	slices.SortFunc(d.Ifaces, func(a, b netIface) int { return cmp.Compare(a.Name, b.Name) })
	for i := range d.Ifaces {
		row := &d.Ifaces[i]
		c := n.Interface(row.Name)
		row.Configured = c != nil
		if c != nil && c.Parent != "" {
			row.Parent, row.VLAN = c.Parent, c.VLAN
		}
		row.Form = pick(ifaceFormID(row.Name), func() *form {
			f := newForm(netIfaceFields...)
			if c != nil {
				fillIface(f, c)
			}
			return f
		})
		if !row.VLANChild() {
			d.Parents = append(d.Parents, option{Value: row.Name, Label: row.Name})
		}
	}
	return d
}

func (s *Server) networkPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.renderNet(w, r, p, http.StatusOK, nil, "")
}

func (s *Server) renderNet(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, failed map[string]*form, extra string) {
	s.render(w, r, p, status, "network", view{Title: "Network setup", Nav: "network", Data: s.netView(failed, extra)})
}

// netRevision reads the form's "netrev" field: the network revision the
// page showed.
func netRevision(r *http.Request) uint64 {
	n, _ := strconv.ParseUint(r.PostFormValue("netrev"), 10, 64)
	return n
}

// applyNet applies a network change made from a form. With parse errors
// it only validates and returns the parse and validation errors together.
func (s *Server) applyNet(r *http.Request, p admin.Principal, summary string, parsed config.Errors,
	mutate func(n *netcfg.Network) error) (control.NetResult, error) {
	res, err := s.ctl.ApplyNetwork(control.NetChange{Base: netRevision(r), CheckBase: true, Actor: actor(r, p),
		Summary: summary, DryRun: len(parsed) > 0, Mutate: mutate})
	if len(parsed) > 0 {
		if es, ok := config.IsErrors(err); ok {
			return res, withoutParsed(es, parsed)
		}
		if err == nil {
			return res, parsed
		}
	}
	return res, err
}

// netDone ends a network post: on success back to the page with the
// message, on error the page again with f (named id) showing the errors.
func (s *Server) netDone(w http.ResponseWriter, r *http.Request, p admin.Principal, res control.NetResult, err error,
	id string, f *form, prefix, what string) {
	s.netDoneIface(w, r, p, res, err, id, f, prefix, what, "")
}

// netDoneIface is netDone for the form of interface iface.
func (s *Server) netDoneIface(w http.ResponseWriter, r *http.Request, p admin.Principal, res control.NetResult, err error,
	id string, f *form, prefix, what, iface string) {
	if err == nil {
		msg := what + ": nothing changed."
		if res.Committed {
			msg = fmt.Sprintf("%s — network revision %d.", what, res.Revision)
			if !res.Deadline.IsZero() {
				msg += " Confirm it (banner above) or it is rolled back."
			}
		}
		s.redirect(w, r, p, "/network", msg)
		return
	}
	status := explain(f, err, prefix)
	var host *control.HostError
	if status == 0 && errors.As(err, &host) && len(host.Fields()) > 0 {
		// The host refused it, naming the setting: shown beside its field
		// where the form has it.
		var es config.Errors
		for _, fe := range host.Fields() {
			es = append(es, config.FieldError{Path: fe.Path, Message: "the host's network refused it: " + fe.Message})
		}
		f.addErrors(es, prefix)
		status = http.StatusUnprocessableEntity
	}
	if status == 0 {
		var conflict *store.ConflictError
		if errors.As(err, &conflict) {
			f.addGeneral(fmt.Sprintf("The network settings changed since you opened this page (now revision %d). Review your entries and save again.", conflict.Current))
			status = http.StatusConflict
		} else if errors.Is(err, store.ErrNoSpace) || errors.Is(err, store.ErrDamaged) {
			s.fail(w, r, p, err)
			return
		} else {
			// The host refused it (package hostnet names the field).
			f.addGeneral(err.Error() + ". Nothing was changed.")
			status = http.StatusUnprocessableEntity
		}
	}
	s.renderNet(w, r, p, status, map[string]*form{id: f}, iface)
}

// networkUpdate saves the main form: host name, DNS, default gateways and
// the switches.
func (s *Server) networkUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(netMainFields...)
	f.keep(r.PostForm)
	ps := &parser{v: r.PostForm, prefix: "network"}
	confirm := ps.int("confirmSeconds")
	res, err := s.applyNet(r, p, "", ps.errs, func(n *netcfg.Network) error {
		n.Hostname = ps.str("hostname")
		n.DNS.Servers = words(ps.str("dns.servers"))
		n.DNS.Search = words(ps.str("dns.search"))
		n.Gateway = ps.str("gateway")
		n.Gateway6 = ps.str("gateway6")
		n.EnforceVIPRanges = ps.bool("enforceVipRanges")
		n.KeepOnStop = ps.bool("keepOnStop")
		n.ConfirmSeconds = confirm
		return nil
	})
	s.netDone(w, r, p, res, err, "main", f, "network", "Network settings")
}

// ifaceUpdate saves one interface's addresses, MTU, link state and VIP
// ranges; an interface Fulcrum did not configure yet is added.
func (s *Server) ifaceUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	f := newForm(netIfaceFields...)
	f.keep(r.PostForm)
	idx := -1
	cur := s.ctl.Network().Network
	if cur != nil {
		idx = slices.IndexFunc(cur.Interfaces, func(i netcfg.Interface) bool { return i.Name == name })
	}
	if idx < 0 && cur != nil {
		idx = len(cur.Interfaces)
	} else if idx < 0 {
		idx = 0
	}
	prefix := fmt.Sprintf("network.interfaces[%d]", idx)
	ps := &parser{v: r.PostForm, prefix: prefix}
	mtu := ps.int("mtu")
	res, err := s.applyNet(r, p, "interface "+name+": addresses, MTU, link and VIP ranges", ps.errs, func(n *netcfg.Network) error {
		c := n.Interface(name)
		if c == nil {
			n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: name})
			c = &n.Interfaces[len(n.Interfaces)-1]
		}
		c.Addresses = words(ps.v.Get("addresses"))
		c.MTU = mtu
		c.Down = ps.bool("down")
		c.VIPRanges = lines(ps.v.Get("vipRanges"))
		return nil
	})
	s.netDoneIface(w, r, p, res, err, ifaceFormID(name), f, prefix, "Interface "+name, name)
}

// lines splits a text into its non-empty lines (a VIP range may hold a
// '-' but no space).
func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ifaceDelete deletes a VLAN child, or stops configuring an interface
// (Fulcrum then leaves it alone).
func (s *Server) ifaceDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	cur := s.ctl.Network().Network
	if cur == nil || cur.Interface(name) == nil {
		s.errorPage(w, r, p, http.StatusNotFound, "Fulcrum does not configure an interface "+name+".")
		return
	}
	what, msg := "Interface "+name, "Stop configuring interface "+name+"? Fulcrum leaves it as it is (and removes the addresses it added)."
	if cur.Interface(name).Parent != "" {
		what, msg = "VLAN "+name, "Delete VLAN interface "+name+"? Its addresses and VIP ranges go with it."
	}
	if !s.confirmed(w, r, p, msg, "Delete", "/network") {
		return
	}
	f := newForm()
	res, err := s.applyNet(r, p, "delete interface "+name, nil, func(n *netcfg.Network) error {
		i := slices.IndexFunc(n.Interfaces, func(c netcfg.Interface) bool { return c.Name == name })
		if i < 0 {
			return fmt.Errorf("interface %s: %w", name, control.ErrNotFound)
		}
		n.Interfaces = slices.Delete(n.Interfaces, i, i+1)
		return nil
	})
	s.netDone(w, r, p, res, err, "main", f, "network", what+" deleted")
}

// vlanName is the name of VLAN id's child of parent: "eth1.10", or
// "vlan10" where that would be too long for an interface name.
func vlanName(parent string, id int) string {
	if name := parent + "." + strconv.Itoa(id); len(name) <= 15 {
		return name
	}
	return "vlan" + strconv.Itoa(id)
}

// vlanAdd adds a VLAN child (parent, VLAN ID).
func (s *Server) vlanAdd(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("parent", "vlan")
	f.keep(r.PostForm)
	idx := 0
	if cur := s.ctl.Network().Network; cur != nil {
		idx = len(cur.Interfaces)
	}
	prefix := fmt.Sprintf("network.interfaces[%d]", idx)
	ps := &parser{v: r.PostForm, prefix: prefix}
	parentName, id := ps.str("parent"), ps.int("vlan")
	if parentName == "" {
		ps.errs = append(ps.errs, config.FieldError{Path: prefix + ".parent", Message: "is required"})
	}
	res, err := s.applyNet(r, p, fmt.Sprintf("add VLAN %d on %s", id, parentName), ps.errs, func(n *netcfg.Network) error {
		n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: vlanName(parentName, id), Parent: parentName, VLAN: id})
		return nil
	})
	s.netDone(w, r, p, res, err, "vlan", f, prefix, fmt.Sprintf("VLAN %d on %s", id, parentName))
}

// routeAdd adds a static route.
func (s *Server) routeAdd(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("destination", "gateway")
	f.keep(r.PostForm)
	idx := 0
	if cur := s.ctl.Network().Network; cur != nil {
		idx = len(cur.Routes)
	}
	prefix := fmt.Sprintf("network.routes[%d]", idx)
	ps := &parser{v: r.PostForm, prefix: prefix}
	dest, gw := ps.str("destination"), ps.str("gateway")
	res, err := s.applyNet(r, p, "add route "+dest+" via "+gw, nil, func(n *netcfg.Network) error {
		if d, err := netip.ParsePrefix(dest); err == nil {
			for i, rt := range n.Routes {
				if o, err := netip.ParsePrefix(rt.Destination); err == nil && o.Masked() == d.Masked() {
					return config.Errors{{Path: prefix + ".destination", Message: fmt.Sprintf("a route to %s exists already (routes[%d])", d.Masked(), i)}}
				}
			}
		}
		n.Routes = append(n.Routes, netcfg.Route{Destination: dest, Gateway: gw})
		return nil
	})
	s.netDone(w, r, p, res, err, "route", f, prefix, "Route to "+dest)
}

// routeDelete deletes the static route to the posted destination.
func (s *Server) routeDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	dest := strings.TrimSpace(r.PostFormValue("destination"))
	res, err := s.applyNet(r, p, "delete route "+dest, nil, func(n *netcfg.Network) error {
		i := slices.IndexFunc(n.Routes, func(rt netcfg.Route) bool { return rt.Destination == dest })
		if i < 0 {
			return fmt.Errorf("route to %s: %w", dest, control.ErrNotFound)
		}
		n.Routes = slices.Delete(n.Routes, i, i+1)
		return nil
	})
	s.netDone(w, r, p, res, err, "route", newForm("destination", "gateway"), "network.routes", "Route to "+dest+" deleted")
}

// networkConfirm confirms the pending network change, then returns to the
// page the banner was on.
func (s *Server) networkConfirm(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	rev, err := strconv.ParseUint(r.PostFormValue("revision"), 10, 64)
	if err != nil {
		s.errorPage(w, r, p, http.StatusBadRequest, "The confirmation names no network revision.")
		return
	}
	back := safeNext(r.PostFormValue("back"))
	if err := s.ctl.ConfirmNetwork(rev, actor(r, p)); err != nil {
		s.setFlash(p, "error", fmt.Sprintf("Network revision %d was not confirmed: %v", rev, err))
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	s.redirect(w, r, p, back, fmt.Sprintf("Network change (revision %d) confirmed: it stays.", rev))
}

// netPending is the banner of a network change waiting for confirmation.
type netPending struct {
	Revision uint64
	// Seconds are left before the rollback.
	Seconds int
	// DeadlineMS is the rollback time in Unix milliseconds, for the
	// countdown.
	DeadlineMS int64
}

// pendingNet returns the banner's data, or nil when no network change is
// pending.
func (s *Server) pendingNet() *netPending {
	if s.ctl == nil {
		return nil
	}
	snap := s.ctl.Network()
	if snap.Deadline.IsZero() {
		return nil
	}
	left := snap.Deadline.Sub(s.now())
	return &netPending{Revision: snap.Revision, Seconds: max(int((left+time.Second-1)/time.Second), 0),
		DeadlineMS: snap.Deadline.UnixMilli()}
}

// FormID is the id prefix of the interface's form.
func (i netIface) FormID() string { return ifaceFormID(i.Name) }
