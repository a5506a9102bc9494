package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
)

// vsList is the response of GET /virtual-services.
type vsList struct {
	// Revision is the configuration revision listed.
	Revision uint64 `json:"revision"`
	// VirtualServices are the services, in order.
	VirtualServices []config.VirtualService `json:"virtualServices"`
}

func (s *Server) listVS(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, vsList{Revision: snap.Revision, VirtualServices: snap.Config.VirtualServices})
}

// currentVS returns the current snapshot and the service named by the
// {id} path parameter, or answers the error and returns ok false.
func (s *Server) currentVS(w http.ResponseWriter, r *http.Request) (snap *control.Snapshot, v *config.VirtualService, ok bool) {
	id, err := pathInt(r, "id")
	if err != nil {
		s.fail(w, err)
		return nil, nil, false
	}
	snap = s.ctl.Current()
	if v = snap.Config.VirtualServiceByID(id); v == nil {
		s.fail(w, fmt.Errorf("virtual service %d: %w", id, control.ErrNotFound))
		return nil, nil, false
	}
	setETag(w, snap.Revision)
	return snap, v, true
}

func (s *Server) getVS(w http.ResponseWriter, r *http.Request) {
	if _, v, ok := s.currentVS(w, r); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// createVS adds a service; with ?parent=ID it adds a SubVS to that service.
func (s *Server) createVS(w http.ResponseWriter, r *http.Request) {
	var v config.VirtualService
	if err := decodeBody(w, r, &v); err != nil {
		s.fail(w, err)
		return
	}
	if v.ID != 0 {
		s.fail(w, config.Errors{{Path: "id", Message: "is assigned by Fulcrum; leave it out"}})
		return
	}
	parent, err := queryUint(r, "parent", 0)
	if err != nil {
		s.fail(w, err)
		return
	}
	var add control.Edit = edit.AddVirtualService{VS: v}
	if parent != 0 {
		add = edit.AddSubVS{Parent: int(parent), VS: v}
	}
	res, ok := s.apply(w, r, control.Change{Edit: add})
	if !ok {
		return
	}
	created := newest(res.Snapshot.Config, int(parent))
	if created == nil {
		writeJSON(w, http.StatusOK, result(res))
		return
	}
	w.Header().Set("Location", "/api/v1/virtual-services/"+strconv.Itoa(created.ID))
	writeJSON(w, http.StatusCreated, created)
}

// newest returns the last service (or last SubVS of parent).
func newest(c *config.Config, parent int) *config.VirtualService {
	list := c.VirtualServices
	if parent != 0 {
		p := c.VirtualServiceByID(parent)
		if p == nil {
			return nil
		}
		list = p.SubVSs
	}
	if len(list) == 0 {
		return nil
	}
	return &list[len(list)-1]
}

// updateVS serves PUT (replace the service) and PATCH (merge the body into
// it: fields present replace, absent ones stay; lists are replaced whole).
func (s *Server) updateVS(w http.ResponseWriter, r *http.Request) {
	id, err := pathInt(r, "id")
	if err != nil {
		s.fail(w, err)
		return
	}
	body, err := readBody(w, r, maxBody, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	merge := r.Method == http.MethodPatch
	res, ok := s.apply(w, r, control.Change{Edit: edit.ModifyVirtualService{ID: id, Update: func(_ *config.Config, v, _ *config.VirtualService) error {
		next := config.VirtualService{}
		if merge {
			next = *v
		}
		if err := config.DecodeInto(body, &next); err != nil {
			return err
		}
		if next.ID != id && next.ID != 0 {
			return config.Errors{{Path: "id", Message: fmt.Sprintf("cannot be changed (is %d)", id)}}
		}
		next.ID = id
		if !merge && next.SubVSs == nil {
			next.SubVSs = v.SubVSs // a PUT without subVSs keeps them
		}
		*v = next
		return nil
	}}})
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, res.Snapshot.Config.VirtualServiceByID(id))
}

func (s *Server) deleteVS(w http.ResponseWriter, r *http.Request) {
	id, err := pathInt(r, "id")
	if err != nil {
		s.fail(w, err)
		return
	}
	res, ok := s.apply(w, r, control.Change{Edit: edit.DeleteVirtualService{ID: id}})
	if ok {
		writeJSON(w, http.StatusOK, result(res))
	}
}

// rsList is the response of GET .../real-servers.
type rsList struct {
	// Revision is the configuration revision listed.
	Revision uint64 `json:"revision"`
	// RealServers are the service's real servers.
	RealServers []config.RealServer `json:"realServers"`
}

func (s *Server) listRS(w http.ResponseWriter, r *http.Request) {
	snap, v, ok := s.currentVS(w, r)
	if !ok {
		return
	}
	list := v.RealServers
	if list == nil {
		list = []config.RealServer{}
	}
	writeJSON(w, http.StatusOK, rsList{Revision: snap.Revision, RealServers: list})
}

func (s *Server) findRS(w http.ResponseWriter, r *http.Request) (vsID, rsID int, ok bool) {
	vsID, err := pathInt(r, "id")
	if err == nil {
		rsID, err = pathInt(r, "rsid")
	}
	if err != nil {
		s.fail(w, err)
		return 0, 0, false
	}
	return vsID, rsID, true
}

func lookupRS(c *config.Config, vsID, rsID int) (*config.VirtualService, *config.RealServer, error) {
	v := c.VirtualServiceByID(vsID)
	if v == nil {
		return nil, nil, fmt.Errorf("virtual service %d: %w", vsID, control.ErrNotFound)
	}
	rs := v.RealServerByID(rsID)
	if rs == nil {
		return v, nil, fmt.Errorf("real server %d of virtual service %d: %w", rsID, vsID, control.ErrNotFound)
	}
	return v, rs, nil
}

func (s *Server) getRS(w http.ResponseWriter, r *http.Request) {
	vsID, rsID, ok := s.findRS(w, r)
	if !ok {
		return
	}
	snap := s.ctl.Current()
	_, rs, err := lookupRS(snap.Config, vsID, rsID)
	if err != nil {
		s.fail(w, err)
		return
	}
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, rs)
}

func (s *Server) createRS(w http.ResponseWriter, r *http.Request) {
	vsID, err := pathInt(r, "id")
	if err != nil {
		s.fail(w, err)
		return
	}
	var rs config.RealServer
	if err := decodeBody(w, r, &rs); err != nil {
		s.fail(w, err)
		return
	}
	if rs.ID != 0 {
		s.fail(w, config.Errors{{Path: "id", Message: "is assigned by Fulcrum; leave it out"}})
		return
	}
	res, ok := s.apply(w, r, control.Change{Edit: edit.AddRealServer{VS: vsID, RS: rs}})
	if !ok {
		return
	}
	v := res.Snapshot.Config.VirtualServiceByID(vsID)
	created := &v.RealServers[len(v.RealServers)-1]
	w.Header().Set("Location", fmt.Sprintf("/api/v1/virtual-services/%d/real-servers/%d", vsID, created.ID))
	writeJSON(w, http.StatusCreated, created)
}

// updateRS serves PUT and PATCH of a real server. An operator may only
// PATCH the enabled field (enable or disable a real server).
func (s *Server) updateRS(w http.ResponseWriter, r *http.Request) {
	vsID, rsID, ok := s.findRS(w, r)
	if !ok {
		return
	}
	body, err := readBody(w, r, maxBody, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	p := principal(r)
	if !p.Can(admin.PermWrite) {
		if r.Method != http.MethodPatch || !onlyKeys(body, "enabled") {
			writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: role %s may only change a real server's enabled field", p.Role), nil)
			return
		}
	}
	merge := r.Method == http.MethodPatch
	res, ok := s.apply(w, r, control.Change{Edit: edit.ModifyRealServer{VS: vsID, RS: rsID, Update: func(rs *config.RealServer) error {
		next := config.RealServer{}
		if merge {
			next = *rs
		}
		if err := config.DecodeInto(body, &next); err != nil {
			return err
		}
		if next.ID != rsID && next.ID != 0 {
			return config.Errors{{Path: "id", Message: fmt.Sprintf("cannot be changed (is %d)", rsID)}}
		}
		next.ID = rsID
		*rs = next
		return nil
	}}})
	if !ok {
		return
	}
	_, rs, _ := lookupRS(res.Snapshot.Config, vsID, rsID)
	writeJSON(w, http.StatusOK, rs)
}

// onlyKeys reports whether a JSON object has no keys but the allowed ones.
func onlyKeys(body []byte, allowed ...string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	for k := range m {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Server) deleteRS(w http.ResponseWriter, r *http.Request) {
	vsID, rsID, ok := s.findRS(w, r)
	if !ok {
		return
	}
	res, ok := s.apply(w, r, control.Change{Edit: edit.DeleteRealServer{VS: vsID, RS: rsID}})
	if ok {
		writeJSON(w, http.StatusOK, result(res))
	}
}
