package balance

import "github.com/fulcrum-lb/fulcrum/internal/backend"

// urlHash chooses by Request.HashKey ("uhash", URL hash), which the
// layer-7 proxy sets to the request's URL, with rendezvous hashing
// (hash.go): the same URL goes to the same server while it is usable,
// which keeps each server's cache warm for its share of the URLs. Without
// a HashKey (a layer-4 service) it hashes the client address, like sh.
type urlHash struct{ *rendezvous }

func newURLHash(c *core, _ Options) (Picker, error) {
	return urlHash{newRendezvous(c)}, nil
}

// Pick implements Picker.
func (p urlHash) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	if req.HashKey == "" {
		return p.pickKey(addrHash(req.Client.Addr()), req)
	}
	return p.pickKey(mix64(fnv1a(req.HashKey)), req)
}
