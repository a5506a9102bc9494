//go:build !linux

package sockopt

import "errors"

// errUnsupported is returned outside Linux, where marks and transparency
// do not exist: Fulcrum's data plane targets Linux.
var errUnsupported = errors.New("socket marks and transparency need Linux")

// Set sets o on the socket fd; outside Linux only the zero Options work.
func (o Options) Set(int, bool) error {
	if o.Mark != 0 || o.Transparent {
		return errUnsupported
	}
	return nil
}

// Mark returns the SO_MARK of the socket fd; not available outside Linux.
func Mark(int) (uint32, error) { return 0, errUnsupported }
