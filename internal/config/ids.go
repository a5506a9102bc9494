package config

import (
	"strings"
)

// AssignIDs gives every virtual service, SubVS and real server whose ID is 0
// an ID. A service without an ID that has the same address, port and
// protocol as a service of prev (or, for a SubVS, the same nickname under the
// same parent) takes that service's ID, and likewise a real server takes the
// ID of the real server with the same address and port in the matching
// service, so that runtime state (counters, health, persistence) survives a
// declarative apply of a document without IDs. Other objects get the next
// free number. prev may be nil.
func (c *Config) AssignIDs(prev *Config) { c.AssignIDsAbove(prev, 0, 0) }

// AssignIDsAbove is AssignIDs where new IDs are also above vsFloor and
// rsFloor: the highest IDs ever used, so that a deleted object's ID is never
// given to another.
func (c *Config) AssignIDsAbove(prev *Config, vsFloor, rsFloor int) {
	used := map[int]bool{}
	usedRS := map[int]bool{}
	maxVS, maxRS := vsFloor, rsFloor
	note := func(v *VirtualService) {
		if v.ID > 0 {
			used[v.ID] = true
			maxVS = max(maxVS, v.ID)
		}
		for _, rs := range v.RealServers {
			if rs.ID > 0 {
				usedRS[rs.ID] = true
				maxRS = max(maxRS, rs.ID)
			}
		}
	}
	c.Walk(func(v *VirtualService, _ *VirtualService) { note(v) })
	if prev != nil {
		// IDs of prev are remembered so that deleted ones are not handed
		// to a different object in the same change.
		prev.Walk(func(v *VirtualService, _ *VirtualService) {
			maxVS = max(maxVS, v.ID)
			for _, rs := range v.RealServers {
				maxRS = max(maxRS, rs.ID)
			}
		})
	}
	c.Walk(func(v *VirtualService, parent *VirtualService) {
		var match *VirtualService
		if prev != nil {
			match = prev.findMatch(v, parent)
		}
		if v.ID == 0 {
			if match != nil && !used[match.ID] {
				v.ID = match.ID
			} else {
				maxVS++
				v.ID = maxVS
			}
			used[v.ID] = true
		}
		for i := range v.RealServers {
			rs := &v.RealServers[i]
			if rs.ID != 0 {
				continue
			}
			if match != nil {
				for _, old := range match.RealServers {
					if strings.EqualFold(old.Address, rs.Address) && old.Port == rs.Port && !usedRS[old.ID] {
						rs.ID = old.ID
						break
					}
				}
			}
			if rs.ID == 0 {
				maxRS++
				rs.ID = maxRS
			}
			usedRS[rs.ID] = true
		}
	})
}

// findMatch finds the service of c that v (with the given parent, nil for a
// top-level service) stands for: the same address, port and protocol, or for
// a SubVS the same nickname under the matching parent.
func (c *Config) findMatch(v, parent *VirtualService) *VirtualService {
	if parent == nil {
		for i := range c.VirtualServices {
			o := &c.VirtualServices[i]
			if o.Address == v.Address && o.Port == v.Port && o.Protocol == v.Protocol {
				return o
			}
		}
		return nil
	}
	p := c.findMatch(parent, nil)
	if p == nil && parent.ID != 0 {
		p = c.VirtualServiceByID(parent.ID)
	}
	if p == nil || v.NickName == "" {
		return nil
	}
	for i := range p.SubVSs {
		if p.SubVSs[i].NickName == v.NickName {
			return &p.SubVSs[i]
		}
	}
	return nil
}

// Walk calls fn for every virtual service, then for each of its SubVSs
// (with the parent), in order.
func (c *Config) Walk(fn func(v, parent *VirtualService)) {
	for i := range c.VirtualServices {
		v := &c.VirtualServices[i]
		fn(v, nil)
		for j := range v.SubVSs {
			fn(&v.SubVSs[j], v)
		}
	}
}

// VirtualServiceByID returns the service or SubVS with the given ID, or nil.
func (c *Config) VirtualServiceByID(id int) *VirtualService {
	var found *VirtualService
	c.Walk(func(v, _ *VirtualService) {
		if v.ID == id && found == nil {
			found = v
		}
	})
	return found
}

// RealServerByID returns the real server with the given ID of v, or nil.
func (v *VirtualService) RealServerByID(id int) *RealServer {
	for i := range v.RealServers {
		if v.RealServers[i].ID == id {
			return &v.RealServers[i]
		}
	}
	return nil
}

// DeleteVirtualService removes the service or SubVS with the given ID and
// reports whether it existed.
func (c *Config) DeleteVirtualService(id int) bool {
	for i := range c.VirtualServices {
		v := &c.VirtualServices[i]
		if v.ID == id {
			c.VirtualServices = append(c.VirtualServices[:i], c.VirtualServices[i+1:]...)
			return true
		}
		for j := range v.SubVSs {
			if v.SubVSs[j].ID == id {
				v.SubVSs = append(v.SubVSs[:j], v.SubVSs[j+1:]...)
				return true
			}
		}
	}
	return false
}

// DeleteRealServer removes the real server with the given ID from v and
// reports whether it existed.
func (v *VirtualService) DeleteRealServer(id int) bool {
	for i := range v.RealServers {
		if v.RealServers[i].ID == id {
			v.RealServers = append(v.RealServers[:i], v.RealServers[i+1:]...)
			return true
		}
	}
	return false
}
