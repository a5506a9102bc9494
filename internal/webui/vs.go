package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// vsListData is the View/Modify Services page's data.
type vsListData struct {
	Cards []vsCard
}

func (s *Server) vsList(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	s.render(w, r, p, http.StatusOK, "vs_list", view{Title: "Virtual services", Nav: "vs", Revision: snap.Revision,
		Data: vsListData{Cards: s.cards(snap.Config, true)}})
}

// vsListLive is the services list's live fragment: out-of-band swaps of
// each service's state and real-server counts.
func (s *Server) vsListLive(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	s.render(w, r, p, http.StatusOK, "live_vs_list", view{Revision: snap.Revision, Data: vsListData{Cards: s.cards(snap.Config, false)}})
}

// newVSFields are the fields of the Add New form.
var newVSFields = []string{"address", "port", "protocol", "type", "nickname", "template"}

// vsNewData is the Add New page's data.
type vsNewData struct {
	Form      *form
	Templates []templates.Summary
}

func (s *Server) vsNewData(f *form) vsNewData {
	list, err := s.tpl.List()
	if err != nil {
		s.log.Error("webui: list templates", "err", err)
	}
	return vsNewData{Form: f, Templates: list}
}

func (s *Server) vsNewPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(newVSFields...)
	f.set("protocol", "tcp")
	f.set("type", "gen")
	s.render(w, r, p, http.StatusOK, "vs_new", view{Title: "Add a virtual service", Nav: "vs-new", Data: s.vsNewData(f)})
}

func (s *Server) vsCreate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(newVSFields...)
	f.keep(r.PostForm)
	if name := r.PostFormValue("template"); name != "" {
		// A template asks for its own parameters on its page; the address
		// and port typed here carry over.
		q := url.Values{}
		if a := strings.TrimSpace(r.PostFormValue("address")); a != "" {
			q.Set("address", a)
		}
		if port := strings.TrimSpace(r.PostFormValue("port")); port != "" {
			q.Set("port", port)
		}
		http.Redirect(w, r, "/templates/"+url.PathEscape(name)+"?"+q.Encode(), http.StatusSeeOther)
		return
	}
	prefix := fmt.Sprintf("virtualServices[%d]", len(s.ctl.Current().Config.VirtualServices))
	ps := &parser{v: r.PostForm, prefix: prefix}
	v := config.VirtualService{
		NickName: ps.str("nickname"), Address: ps.str("address"), Protocol: ps.str("protocol"), Type: ps.str("type"),
	}
	v.Port = ps.int("port")
	res, err := s.run(r, p, formEdit{parsed: ps.errs, edit: edit.AddVirtualService{VS: v}, mutate: func(c *config.Config) error {
		prefix = fmt.Sprintf("virtualServices[%d]", len(c.VirtualServices))
		return nil
	}})
	if err != nil {
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.render(w, r, p, status, "vs_new", view{Title: "Add a virtual service", Nav: "vs-new", Data: s.vsNewData(f)})
		return
	}
	list := res.Snapshot.Config.VirtualServices
	created := list[len(list)-1]
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d", created.ID), committedMsg(res, "Virtual service "+displayName(&created)+" added"))
}

// certChoice is a certificate that a service may use.
type certChoice struct {
	Info    certs.Info
	Expired bool
}

// kv is one row of a read-only property list.
type kv struct {
	Key, Value string
}

// vsData is a service page's data.
type vsData struct {
	VS        *config.VirtualService
	Name      string
	Sub       bool
	Parent    *config.VirtualService
	Status    status.VS
	HasStatus bool
	RSStatus  map[int]rsStatus
	Sections  []sectionView
	RSForm    *form
	SubForm   *form
	Certs     []certChoice
	// TLSVersions are the versions a service may narrow its profile to.
	TLSVersions []string
	// HTTP lists the layer-7 settings the service has (read-only here).
	HTTP []kv
	// DrainTime and DropOnFail describe what disabling a real server does.
	DrainTime  int
	DropOnFail bool
	// Open is the section with errors, to scroll to.
	Open string
	// Counters are the request counters of a layer-7 service or SubVS; nil
	// for others. RequestRate is the requests per second to the
	// service's own real servers (0 for a service with SubVSs or a SubVS).
	Counters    *status.HTTP
	RequestRate float64
}

// Classes writes counts by status class for the page, e.g. "2xx 67 ·
// 4xx 3"; "none" when all are 0.
func (d vsData) Classes(r status.Responses) string { return classes(r) }

// classes is vsData.Classes.
func classes(r status.Responses) string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int64
	}{{"1xx", r.C1xx}, {"2xx", r.C2xx}, {"3xx", r.C3xx}, {"4xx", r.C4xx}, {"5xx", r.C5xx}, {"other", r.Other}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.name, c.n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " · ")
}

// subRSStatus indexes a SubVS's real-server status by ID.
func subRSStatus(sv status.SubVS) map[int]rsStatus {
	return rsStatusByID(status.VS{RealServers: sv.RealServers})
}

// subVSStatus returns the status of SubVS id of the service whose status
// is parent.
func subVSStatus(parent status.VS, id int) (status.SubVS, bool) {
	if parent.L7 != nil {
		for _, sv := range parent.L7.SubVSs {
			if sv.ID == id {
				return sv, true
			}
		}
	}
	return status.SubVS{}, false
}

// Notes are the "not applied: …" sentences of the service's status
// reason: settings the host does not apply (a default gateway where
// Fulcrum does not manage the host's network, …).
func (d vsData) Notes() []string { return notApplied(d.Status.Reason) }

// notApplied picks the "not applied: …" parts out of a status reason
// (its parts are separated by "; ").
func notApplied(reason string) []string {
	var out []string
	for _, part := range strings.Split(reason, "; ") {
		if i := strings.Index(part, "not applied: "); i >= 0 {
			out = append(out, strings.TrimSpace(part[i:]))
		}
	}
	return out
}

// sectionView is one section's form on the page.
type sectionView struct {
	Key   string
	Title string
	Form  *form
}

// Section returns the section with the key, for the templates.
func (d vsData) Section(key string) sectionView {
	for _, sv := range d.Sections {
		if sv.Key == key {
			return sv
		}
	}
	return sectionView{Key: key, Form: newForm()}
}

// vsView builds a service page's data from the current configuration;
// failed forms (by section key, "rs" or "subvs") replace the fresh ones.
func (s *Server) vsView(cfg *config.Config, v *config.VirtualService, failed map[string]*form) vsData {
	d := vsData{VS: v, Name: displayName(v), Parent: parent(cfg, v.ID), TLSVersions: config.TLSVersions,
		DrainTime: cfg.Options.DrainTime, DropOnFail: cfg.Options.DropOnFail}
	d.Sub = d.Parent != nil
	st := s.statusByID()
	d.Status, d.HasStatus = st[v.ID]
	d.RSStatus = rsStatusByID(d.Status)
	if l := d.Status.L7; l != nil {
		d.Counters, d.RequestRate = &l.HTTP, l.RequestRate
	}
	if d.Sub {
		if sv, ok := subVSStatus(st[d.Parent.ID], v.ID); ok {
			d.Counters = &sv.HTTP
			d.RSStatus = subRSStatus(sv)
		}
	}
	for _, key := range sectionOrder {
		sec := sections[key]
		f, ok := failed[key]
		if !ok {
			f = newForm(sec.Fields...)
			sec.fill(f, v)
		} else {
			d.Open = key
		}
		d.Sections = append(d.Sections, sectionView{Key: key, Title: sec.Title, Form: f.withID(key)})
	}
	if f, ok := failed["rs"]; ok {
		d.RSForm, d.Open = f.withID("rs"), "rs"
	} else {
		d.RSForm = newForm(rsFields...).withID("rs")
		d.RSForm.set("port", v.Port)
		d.RSForm.set("weight", config.DefaultWeight)
		d.RSForm.set("enabled", true)
	}
	if f, ok := failed["subvs"]; ok {
		d.SubForm, d.Open = f.withID("subvs"), "advanced"
	} else {
		d.SubForm = newForm("nickname", "type").withID("subvs")
		d.SubForm.set("type", v.Type)
	}
	now := s.now()
	for _, c := range cfg.Certificates {
		if c.Intermediate {
			continue
		}
		info, err := certs.Describe(c.Name, c.Intermediate, c.CertPEM)
		if err != nil {
			info = certs.Info{Name: c.Name, Subject: "(unreadable: " + err.Error() + ")"}
		}
		d.Certs = append(d.Certs, certChoice{Info: info, Expired: !info.NotAfter.IsZero() && info.NotAfter.Before(now)})
	}
	// Assigned certificates first, in their order (the first is the
	// default), then the others.
	order := map[string]int{}
	for i, n := range v.TLS.Certificates {
		order[n] = i
	}
	sort.SliceStable(d.Certs, func(i, j int) bool {
		oi, ai := order[d.Certs[i].Info.Name]
		oj, aj := order[d.Certs[j].Info.Name]
		if ai != aj {
			return ai
		}
		return oi < oj
	})
	d.HTTP = flattenKV(v.HTTP)
	return d
}

// flattenKV lists the leaves of a JSON-encodable value as key/value rows
// (for settings the UI shows but does not edit yet).
func flattenKV(v any) []kv {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []kv
	for k, val := range m {
		vb, _ := json.Marshal(val)
		out = append(out, kv{Key: k, Value: string(vb)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Server) vsPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v := s.lookupVS(w, r, p, snap.Config)
	if v == nil {
		return
	}
	s.renderVS(w, r, p, http.StatusOK, snap.Config, snap.Revision, v, nil)
}

func (s *Server) renderVS(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, cfg *config.Config, rev uint64, v *config.VirtualService, failed map[string]*form) {
	d := s.vsView(cfg, v, failed)
	s.render(w, r, p, status, "vs", view{Title: d.Name, Nav: "vs", Revision: rev, Data: d})
}

// vsLive is the service page's live fragment (state and real servers).
func (s *Server) vsLive(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v := s.lookupVS(w, r, p, snap.Config)
	if v == nil {
		return
	}
	s.render(w, r, p, http.StatusOK, "live_vs", view{Revision: snap.Revision, Data: s.vsView(snap.Config, v, nil)})
}

// lookupVS finds the service named by the path's {id}, or answers 404.
func (s *Server) lookupVS(w http.ResponseWriter, r *http.Request, p admin.Principal, cfg *config.Config) *config.VirtualService {
	id, ok := pathID(r, "id")
	var v *config.VirtualService
	if ok {
		v = cfg.VirtualServiceByID(id)
	}
	if v == nil {
		s.errorPage(w, r, p, http.StatusNotFound, fmt.Sprintf("There is no virtual service %q. It may have been deleted.", r.PathValue("id")))
	}
	return v
}

// vsUpdate saves one section of a service.
func (s *Server) vsUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	key := r.PathValue("section")
	sec, ok := sections[key]
	id, okID := pathID(r, "id")
	if !ok || !okID {
		s.errorPage(w, r, p, http.StatusNotFound, "No such form.")
		return
	}
	cur := s.ctl.Current().Config
	if cur.VirtualServiceByID(id) == nil {
		s.lookupVS(w, r, p, cur)
		return
	}
	isSub := parent(cur, id) != nil
	f := newForm(sec.Fields...)
	f.keep(r.PostForm)
	prefix := vsPath(cur, id)
	ps := &parser{v: r.PostForm, prefix: prefix}
	sec.apply(ps, &config.VirtualService{}, isSub) // collects the parse errors
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "This service's " + strings.ToLower(sec.Title),
		parsed: ps.errs,
		object: func(c *config.Config) any {
			v := c.VirtualServiceByID(id)
			if v == nil {
				return nil
			}
			probe := newForm(sec.Fields...)
			sec.fill(probe, v)
			return probe.values
		},
		edit: edit.ModifyVirtualService{ID: id, Update: func(c *config.Config, v, _ *config.VirtualService) error {
			prefix = vsPath(c, id)
			sec.apply(&parser{v: r.PostForm, prefix: prefix}, v, isSub)
			return nil
		}}})
	if err != nil {
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		snap := s.ctl.Current()
		v := snap.Config.VirtualServiceByID(id)
		if v == nil {
			s.lookupVS(w, r, p, snap.Config)
			return
		}
		s.renderVS(w, r, p, status, snap.Config, snap.Revision, v, map[string]*form{key: f})
		return
	}
	v := res.Snapshot.Config.VirtualServiceByID(id)
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d#%s", id, key), committedMsg(res, sec.Title+" of "+displayName(v)))
}

func (s *Server) vsDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v := s.lookupVS(w, r, p, snap.Config)
	if v == nil {
		return
	}
	name := displayName(v)
	what := "virtual service " + name
	if len(v.RealServers) > 0 || len(v.SubVSs) > 0 {
		what += fmt.Sprintf(" with its %d real server(s) and %d SubVS(s)", len(v.RealServers), len(v.SubVSs))
	}
	if !s.confirmed(w, r, p, "Delete "+what+"? Its connections are closed. You can undo this from Configuration history.", "Delete", fmt.Sprintf("/vs/%d", v.ID)) {
		return
	}
	id := v.ID
	res, err := s.run(r, p, formEdit{edit: edit.DeleteVirtualService{ID: id}})
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/vs", committedMsg(res, "Virtual service "+name+" deleted"))
}

// subVSCreate adds a SubVS to a service.
func (s *Server) subVSCreate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v := s.lookupVS(w, r, p, snap.Config)
	if v == nil {
		return
	}
	id := v.ID
	f := newForm("nickname", "type")
	f.keep(r.PostForm)
	sub := config.VirtualService{NickName: strings.TrimSpace(r.PostFormValue("nickname")), Type: r.PostFormValue("type"), Protocol: v.Protocol}
	var prefix string
	res, err := s.run(r, p, formEdit{edit: edit.AddSubVS{Parent: id, VS: sub}, mutate: func(c *config.Config) error {
		if pv := c.VirtualServiceByID(id); pv != nil {
			prefix = fmt.Sprintf("%s.subVSs[%d]", vsPath(c, id), len(pv.SubVSs))
		}
		return nil
	}})
	if err != nil {
		// Errors about the parent (it has real servers) show on the form.
		if es, ok := config.IsErrors(err); ok {
			pp := vsPath(snap.Config, id)
			for i := range es {
				if es[i].Path == pp+".subVSs" {
					es[i].Path = prefix
				}
			}
		}
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.renderVS(w, r, p, status, snap.Config, snap.Revision, v, map[string]*form{"subvs": f})
		return
	}
	pv := res.Snapshot.Config.VirtualServiceByID(id)
	created := pv.SubVSs[len(pv.SubVSs)-1]
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d", created.ID), committedMsg(res, "SubVS "+displayName(&created)+" added to "+displayName(pv)))
}

// rsCreate adds a real server (Real Servers > Add New).
func (s *Server) rsCreate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v := s.lookupVS(w, r, p, snap.Config)
	if v == nil {
		return
	}
	id := v.ID
	f := newForm(rsFields...)
	f.keep(r.PostForm)
	prefix := fmt.Sprintf("%s.realServers[%d]", vsPath(snap.Config, id), len(v.RealServers))
	ps := &parser{v: r.PostForm, prefix: prefix}
	var rs config.RealServer
	applyRS(ps, &rs)
	res, err := s.run(r, p, formEdit{parsed: ps.errs, edit: edit.AddRealServer{VS: id, RS: rs},
		mutate: func(c *config.Config) error {
			if pv := c.VirtualServiceByID(id); pv != nil {
				prefix = fmt.Sprintf("%s.realServers[%d]", vsPath(c, id), len(pv.RealServers))
			}
			return nil
		}})
	if err != nil {
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.renderVS(w, r, p, status, snap.Config, snap.Revision, v, map[string]*form{"rs": f})
		return
	}
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d#rs", id), committedMsg(res, "Real server "+endpoint(rs.Address, rs.Port)+" added"))
}

// rsData is the real-server page's data.
type rsData struct {
	VS     *config.VirtualService
	VSName string
	RS     *config.RealServer
	Status rsStatus
	Known  bool
	Form   *form
	// Layer7 shows the request counters (an http or http2 service).
	Layer7 bool
}

// Classes writes counts by status class for the page.
func (d rsData) Classes(r status.Responses) string { return classes(r) }

func (s *Server) lookupRS(w http.ResponseWriter, r *http.Request, p admin.Principal, cfg *config.Config) (*config.VirtualService, *config.RealServer) {
	v := s.lookupVS(w, r, p, cfg)
	if v == nil {
		return nil, nil
	}
	rsID, ok := pathID(r, "rsid")
	var rs *config.RealServer
	if ok {
		rs = v.RealServerByID(rsID)
	}
	if rs == nil {
		s.errorPage(w, r, p, http.StatusNotFound, fmt.Sprintf("Virtual service %s has no real server %q. It may have been deleted.", displayName(v), r.PathValue("rsid")))
		return nil, nil
	}
	return v, rs
}

func (s *Server) rsPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v, rs := s.lookupRS(w, r, p, snap.Config)
	if rs == nil {
		return
	}
	f := newForm(rsFields...)
	fillRS(f, rs)
	s.renderRS(w, r, p, http.StatusOK, snap.Revision, v, rs, f)
}

func (s *Server) renderRS(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, rev uint64, v *config.VirtualService, rs *config.RealServer, f *form) {
	d := rsData{VS: v, VSName: displayName(v), RS: rs, Form: f}
	all := s.statusByID()
	if st, ok := all[v.ID]; ok {
		d.Status, d.Known = rsStatusByID(st)[rs.ID]
	} else if pv := parent(s.ctl.Current().Config, v.ID); pv != nil {
		if sv, ok := subVSStatus(all[pv.ID], v.ID); ok {
			d.Status, d.Known = subRSStatus(sv)[rs.ID]
		}
	}
	d.Layer7 = v.Type == "http" || v.Type == "http2" || d.Status.Requests > 0
	s.render(w, r, p, status, "rs", view{Title: "Real server " + endpoint(rs.Address, rs.Port), Nav: "vs", Revision: rev, Data: d})
}

// rsUpdate saves the real-server form (Modify).
func (s *Server) rsUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v, rs := s.lookupRS(w, r, p, snap.Config)
	if rs == nil {
		return
	}
	vsID, rsID := v.ID, rs.ID
	f := newForm(rsFields...)
	f.keep(r.PostForm)
	prefix := rsPath(snap.Config, vsID, rsID)
	ps := &parser{v: r.PostForm, prefix: prefix}
	next := *rs
	applyRS(ps, &next)
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "This real server", parsed: ps.errs,
		object: func(c *config.Config) any {
			if v := c.VirtualServiceByID(vsID); v != nil {
				return v.RealServerByID(rsID)
			}
			return nil
		},
		mutate: func(c *config.Config) error {
			if p := rsPath(c, vsID, rsID); p != "" {
				prefix = p
			}
			return nil
		},
		edit: edit.ModifyRealServer{VS: vsID, RS: rsID, Update: func(crs *config.RealServer) error {
			*crs = next
			return nil
		}}})
	if err != nil {
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.renderRS(w, r, p, status, snap.Revision, v, rs, f)
		return
	}
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d#rs", vsID), committedMsg(res, "Real server "+endpoint(next.Address, next.Port)))
}

func (s *Server) rsEnable(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.rsSetEnabled(w, r, p, true)
}

func (s *Server) rsDisable(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.rsSetEnabled(w, r, p, false)
}

// rsSetEnabled enables or disables (drains) a real server. Operators may
// do this; it changes nothing else.
func (s *Server) rsSetEnabled(w http.ResponseWriter, r *http.Request, p admin.Principal, on bool) {
	snap := s.ctl.Current()
	v, rs := s.lookupRS(w, r, p, snap.Config)
	if rs == nil {
		return
	}
	vsID, rsID, name := v.ID, rs.ID, endpoint(rs.Address, rs.Port)
	res, err := s.run(r, p, formEdit{edit: edit.SetRealServerEnabled{VS: vsID, RS: rsID, Enabled: on}})
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	msg := "Real server " + name + " enabled"
	if !on {
		msg = "Real server " + name + " disabled: it gets no new connections"
		if d := res.Snapshot.Config.Options.DrainTime; d > 0 && !res.Snapshot.Config.Options.DropOnFail {
			msg += fmt.Sprintf("; open ones drain for up to %s", time.Duration(d)*time.Second)
		}
	}
	s.redirect(w, r, p, backTo(r, fmt.Sprintf("/vs/%d#rs", vsID)), committedMsg(res, msg))
}

// backTo returns the form's "back" field if it is a local UI path, or def.
func backTo(r *http.Request, def string) string {
	if b := r.PostFormValue("back"); b != "" && safeNext(b) == b {
		return b
	}
	return def
}

func (s *Server) rsDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	v, rs := s.lookupRS(w, r, p, snap.Config)
	if rs == nil {
		return
	}
	vsID, rsID, name := v.ID, rs.ID, endpoint(rs.Address, rs.Port)
	if !s.confirmed(w, r, p, fmt.Sprintf("Delete real server %s from %s? Its connections are closed.", name, displayName(v)), "Delete",
		fmt.Sprintf("/vs/%d#rs", vsID)) {
		return
	}
	res, err := s.run(r, p, formEdit{edit: edit.DeleteRealServer{VS: vsID, RS: rsID}})
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, fmt.Sprintf("/vs/%d#rs", vsID), committedMsg(res, "Real server "+name+" deleted"))
}

// fail answers an error that no form shows: a page with the message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p admin.Principal, err error) {
	f := newForm()
	if status := explain(f, err, ""); status != 0 {
		s.errorPage(w, r, p, status, strings.Join(f.General(), " "))
		return
	}
	s.log.Error("webui: request failed", "path", r.URL.Path, "err", err)
	s.errorPage(w, r, p, http.StatusInternalServerError, "The change failed: "+err.Error())
}
