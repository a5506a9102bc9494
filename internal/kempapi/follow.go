package kempapi

// followVSID sets LoadMaster's port following (FollowVSID): the service
// uses the persistence table of another top-level service (its Index), so
// a client stuck to a real server on one port reaches the same server on
// another; 0 turns it off. The configuration model checks that the
// service exists; a SubVS follows its parent's persistence and cannot
// follow another service.
func followVSID(c *vsCtx, display, val string) *failure {
	n, good := parseInt(val)
	if !good || n < 0 {
		return invalid("%s: Invalid value %q (the Index of another top-level Virtual Service, or 0)", display, short(val))
	}
	if c.parent != nil && n != 0 {
		return invalid("%s: a SubVS cannot follow another Virtual Service (only 0 is accepted)", display)
	}
	c.v.FollowVSID = n
	return nil
}
