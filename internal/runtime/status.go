package runtime

// VSStatus is the state and counters of one top-level virtual service.
type VSStatus struct {
	// ID is the service's configuration ID.
	ID int `json:"id"`
	// Address is the virtual IP address.
	Address string `json:"address"`
	// Port is the main port.
	Port int `json:"port"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// State is StateUp, StateDown, StateDisabled or StateNotServed.
	State string `json:"state"`
	// Reason explains a Down or NotServed state and anything the service
	// does not do yet; "" when there is nothing to say.
	Reason string `json:"reason,omitempty"`
	// ActiveConns is the number of client connections open now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of client connections accepted.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes received from clients.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes sent to clients.
	BytesOut int64 `json:"bytesOut"`
	// RealServers are the service's real servers, in configuration order.
	RealServers []RSStatus `json:"realServers"`
}

// RSStatus is the state and counters of one real server.
type RSStatus struct {
	// ID is the real server's configuration ID.
	ID int `json:"id"`
	// Address is the real server's address.
	Address string `json:"address"`
	// Port is the real server's port.
	Port int `json:"port"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// Enabled is the configured enabled flag.
	Enabled bool `json:"enabled"`
	// State is RSEnabled or RSDisabled (there are no health checks yet).
	State string `json:"state"`
	// ActiveConns is the number of connections open or being dialled now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of connections established.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes sent to the real server on behalf of clients.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes received from the real server for clients.
	BytesOut int64 `json:"bytesOut"`
	// Failures is the number of failed dials.
	Failures int64 `json:"failures"`
}

// Status returns the state and counters of every top-level virtual service
// of the configuration in force, in configuration order. It takes no lock
// that the data path uses.
func (e *Engine) Status() []VSStatus {
	snap := e.snap.Load()
	out := make([]VSStatus, 0, len(snap.services))
	for _, s := range snap.services {
		vs := s.vs
		st := VSStatus{
			ID:          vs.ID,
			Address:     vs.Address,
			Port:        vs.Port,
			Protocol:    vs.Protocol,
			State:       s.state,
			Reason:      s.reason,
			ActiveConns: s.stats.Active(),
			TotalConns:  s.stats.Total(),
			BytesIn:     s.stats.BytesIn(),
			BytesOut:    s.stats.BytesOut(),
			RealServers: make([]RSStatus, 0, len(s.servers)),
		}
		for _, r := range s.servers {
			rs := RSStatus{
				ID:      r.rs.ID,
				Address: r.rs.Address,
				Port:    r.rs.Port,
				Weight:  r.rs.Weight,
				Enabled: isEnabled(r.rs.Enabled),
				State:   RSDisabled,
			}
			if rs.Enabled {
				rs.State = RSEnabled
			}
			if r.srv != nil {
				rs.ActiveConns = r.srv.Active()
				rs.TotalConns = r.srv.Total()
				rs.BytesIn = r.srv.BytesIn()
				rs.BytesOut = r.srv.BytesOut()
				rs.Failures = r.srv.Failures()
			}
			st.RealServers = append(st.RealServers, rs)
		}
		out = append(out, st)
	}
	return out
}
