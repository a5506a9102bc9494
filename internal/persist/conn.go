package persist

import (
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// Conn is the persistence state of one client connection of the layer-7
// proxy, which calls its Pick for every request on the connection; it
// applies Settings.Always. A Conn is used by one goroutine at a time.
type Conn struct {
	p   *Persister
	srv *backend.Server
}

// Conn returns the state of a new client connection.
func (p *Persister) Conn() *Conn { return &Conn{p: p} }

// Pick chooses the real server of one request on the connection, like
// PickInput, after "always check persist": with AlwaysNo, requests after
// the first go to the connection's server while it can take them.
func (c *Conn) Pick(in *Input) (*backend.Server, func(balance.Outcome), error) {
	if c.p.set.Always == AlwaysNo && c.srv != nil {
		if i, ok := c.p.byPtr[c.srv]; ok {
			if done, o := c.p.stick(i, in); o == hit {
				return c.srv, done, nil
			}
		}
	}
	srv, done, err := c.p.choose(in, c)
	if err == nil {
		c.srv = srv
	}
	return srv, done, err
}

// Server returns the real server of the connection's last request, or nil.
func (c *Conn) Server() *backend.Server { return c.srv }
