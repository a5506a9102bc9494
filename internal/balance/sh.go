package balance

import "github.com/fulcrum-lb/fulcrum/internal/backend"

// sourceHash chooses by the client's IP address ("sh") with rendezvous
// hashing (hash.go): a client keeps its server while that server is usable,
// and when one of n servers fails only its clients, about 1/n of them,
// move. The port is not hashed, so all connections of a client go
// together.
type sourceHash struct{ *rendezvous }

func newSourceHash(c *core, _ Options) (Picker, error) {
	return sourceHash{newRendezvous(c)}, nil
}

// Pick implements Picker.
func (p sourceHash) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	return p.pickKey(addrHash(req.Client.Addr()), req)
}
