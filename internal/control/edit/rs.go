package edit

import (
	"fmt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// lookupRS returns the service vsID of cfg and its real server rsID.
func lookupRS(cfg *config.Config, vsID, rsID int) (*config.VirtualService, *config.RealServer, error) {
	v := cfg.VirtualServiceByID(vsID)
	if v == nil {
		return nil, nil, notFoundVS(vsID)
	}
	rs := v.RealServerByID(rsID)
	if rs == nil {
		return v, nil, fmt.Errorf("real server %d of virtual service %d: %w", rsID, vsID, control.ErrNotFound)
	}
	return v, rs, nil
}

// AddRealServer adds a real server to a service or SubVS. The write path
// assigns its ID.
type AddRealServer struct {
	// VS is the ID of the service or SubVS.
	VS int
	// RS is the real server to add.
	RS config.RealServer
}

// Apply implements control.Edit: "add real server <address:port> to
// <service>".
func (e AddRealServer) Apply(cfg *config.Config) (string, error) {
	v := cfg.VirtualServiceByID(e.VS)
	if v == nil {
		return "", notFoundVS(e.VS)
	}
	v.RealServers = append(v.RealServers, e.RS)
	return fmt.Sprintf("add real server %s to %s", Endpoint(e.RS.Address, e.RS.Port), Name(v)), nil
}

// ModifyRealServer changes a real server in place.
type ModifyRealServer struct {
	// VS is the ID of the service or SubVS the real server belongs to.
	VS int
	// RS is the real server's ID.
	RS int
	// Update changes rs, the real server in the configuration being
	// edited. An error refuses the whole change.
	Update func(rs *config.RealServer) error
}

// Apply implements control.Edit. Its summary is made from the diff.
func (e ModifyRealServer) Apply(cfg *config.Config) (string, error) {
	_, rs, err := lookupRS(cfg, e.VS, e.RS)
	if err != nil {
		return "", err
	}
	if e.Update == nil {
		return "", nil
	}
	return "", e.Update(rs)
}

// SetRealServerEnabled enables a real server, or disables it: it then gets
// no new connections and its open ones drain.
type SetRealServerEnabled struct {
	// VS is the ID of the service or SubVS the real server belongs to.
	VS int
	// RS is the real server's ID.
	RS int
	// Enabled is the real server's new state.
	Enabled bool
}

// Apply implements control.Edit: "enable real server <address:port> of
// <service>" (or disable).
func (e SetRealServerEnabled) Apply(cfg *config.Config) (string, error) {
	v, rs, err := lookupRS(cfg, e.VS, e.RS)
	if err != nil {
		return "", err
	}
	rs.Enabled = config.Bool(e.Enabled)
	verb := "enable"
	if !e.Enabled {
		verb = "disable"
	}
	return fmt.Sprintf("%s real server %s of %s", verb, Endpoint(rs.Address, rs.Port), Name(v)), nil
}

// DeleteRealServer removes a real server.
type DeleteRealServer struct {
	// VS is the ID of the service or SubVS the real server belongs to.
	VS int
	// RS is the real server's ID.
	RS int
}

// Apply implements control.Edit: "delete real server <address:port> of
// <service>".
func (e DeleteRealServer) Apply(cfg *config.Config) (string, error) {
	v, rs, err := lookupRS(cfg, e.VS, e.RS)
	if err != nil {
		return "", err
	}
	summary := fmt.Sprintf("delete real server %s of %s", Endpoint(rs.Address, rs.Port), Name(v))
	v.DeleteRealServer(e.RS)
	return summary, nil
}
