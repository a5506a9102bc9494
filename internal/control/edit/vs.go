package edit

import (
	"fmt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// AddVirtualService adds a top-level service. The write path assigns the
// IDs of the service and of its real servers and SubVSs.
type AddVirtualService struct {
	// VS is the service to add; it is copied.
	VS config.VirtualService
}

// Apply implements control.Edit: "add virtual service <name>".
func (e AddVirtualService) Apply(cfg *config.Config) (string, error) {
	cfg.VirtualServices = append(cfg.VirtualServices, *config.CloneService(&e.VS))
	return "add virtual service " + Name(&e.VS), nil
}

// ModifyVirtualService changes a service or SubVS in place.
type ModifyVirtualService struct {
	// ID is the service's or SubVS's ID.
	ID int
	// Update changes v, the service in cfg; parent is its parent when v is
	// a SubVS, nil otherwise. An error refuses the whole change.
	Update func(cfg *config.Config, v, parent *config.VirtualService) error
}

// Apply implements control.Edit. Its summary is made from the diff: an
// edit of any fields says best what it changed field by field.
func (e ModifyVirtualService) Apply(cfg *config.Config) (string, error) {
	v, parent, err := lookupVS(cfg, e.ID)
	if err != nil {
		return "", err
	}
	if e.Update == nil {
		return "", nil
	}
	return "", e.Update(cfg, v, parent)
}

// DeleteVirtualService removes a service (with its real servers and
// SubVSs) or a SubVS.
type DeleteVirtualService struct {
	// ID is the service's or SubVS's ID.
	ID int
}

// Apply implements control.Edit: "delete virtual service <name>".
func (e DeleteVirtualService) Apply(cfg *config.Config) (string, error) {
	v := cfg.VirtualServiceByID(e.ID)
	if v == nil {
		return "", notFoundVS(e.ID)
	}
	name := Name(v)
	cfg.DeleteVirtualService(e.ID)
	return "delete virtual service " + name, nil
}

// AddSubVS adds a SubVS to a top-level service.
type AddSubVS struct {
	// Parent is the ID of the service the SubVS is added to.
	Parent int
	// VS is the SubVS to add; it is copied.
	VS config.VirtualService
}

// Apply implements control.Edit: "add SubVS <nickname> to <parent>", or
// "add a SubVS to <parent>" for one without a nickname.
func (e AddSubVS) Apply(cfg *config.Config) (string, error) {
	p := cfg.VirtualServiceByID(e.Parent)
	if p == nil {
		return "", fmt.Errorf("parent virtual service %d: %w", e.Parent, control.ErrNotFound)
	}
	p.SubVSs = append(p.SubVSs, *config.CloneService(&e.VS))
	if e.VS.NickName == "" {
		return "add a SubVS to " + Name(p), nil
	}
	return "add SubVS " + e.VS.NickName + " to " + Name(p), nil
}
