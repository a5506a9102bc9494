//go:build linux

package sockopt

import (
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestControlSetsMarkAndTransparency(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs root to set SO_MARK and IP_TRANSPARENT")
		}
		t.Skip("needs root to set SO_MARK and IP_TRANSPARENT")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"none", Options{}},
		{"mark", Options{Mark: 0x46520101}},
		{"transparent", Options{Transparent: true, NoPort: true}},
		{"both", Options{Mark: 7, Transparent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := net.Dialer{Timeout: 5 * time.Second, Control: tc.o.Control()}
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var mark uint32
			var transp int
			var merr, terr error
			if err := rc.Control(func(fd uintptr) {
				mark, merr = Mark(int(fd))
				transp, terr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT)
			}); err != nil || merr != nil || terr != nil {
				t.Fatal(err, merr, terr)
			}
			if mark != tc.o.Mark || (transp != 0) != tc.o.Transparent {
				t.Errorf("socket has mark %#x transparent %d, want %+v", mark, transp, tc.o)
			}
		})
	}
}

// TestSetReportsFailure: a socket option that cannot be set is an error,
// never ignored.
func TestSetReportsFailure(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd) // a closed descriptor: every setsockopt fails
	if err := (Options{Mark: 1}).Set(fd, false); err == nil {
		t.Error("SO_MARK on a closed socket: no error")
	}
	if err := (Options{Transparent: true}).Set(fd, true); err == nil {
		t.Error("IPV6_TRANSPARENT on a closed socket: no error")
	}
	if err := (Options{}).Set(fd, false); err != nil {
		t.Errorf("nothing to set: %v", err)
	}
	if !(Options{}).Zero() || (Options{NoPort: true}).Zero() {
		t.Error("Zero: only the zero Options set nothing")
	}
}
