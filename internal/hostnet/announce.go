package hostnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

// Announcements of a VIP: Announcements packets, AnnounceGap apart.
const (
	Announcements = 3
	AnnounceGap   = 100 * time.Millisecond
)

// announcer sends gratuitous ARP (IPv4) and unsolicited neighbour
// advertisements (IPv6) for VIPs just added, in the background; stop
// ends them and waits.
type announcer struct {
	m      *Manager
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAnnouncer(m *Manager) *announcer {
	ctx, cancel := context.WithCancel(context.Background())
	return &announcer{m: m, ctx: ctx, cancel: cancel}
}

// announce starts the announcements of the VIP addr (a prefix) on link.
func (a *announcer) announce(link, addr string) {
	if a.ctx.Err() != nil {
		return
	}
	pf, err := netip.ParsePrefix(addr)
	if err != nil {
		return
	}
	a.wg.Go(func() {
		if err := a.run(link, pf.Addr()); err != nil {
			a.m.log.Warn("announcing a VIP", "link", link, "vip", pf.Addr(), "err", err)
		}
	})
}

// sender sends one announcement.
type sender interface {
	send() error
	Close() error
}

// run announces vip on link. It runs in the managed namespace throughout:
// the neighbour advertisement's destination names its interface, which
// is looked up when it is sent.
func (a *announcer) run(link string, vip netip.Addr) error {
	return a.m.inNS(func() error {
		s, err := openSender(link, vip)
		if err != nil {
			return err
		}
		defer s.Close()
		t := time.NewTimer(0)
		defer t.Stop()
		for i := range Announcements {
			select {
			case <-a.ctx.Done():
				return nil
			case <-t.C:
			}
			if err := s.send(); err != nil {
				return err
			}
			if i < Announcements-1 {
				t.Reset(AnnounceGap)
			}
		}
		a.m.log.Debug("announced VIP", "link", link, "vip", vip)
		return nil
	})
}

// openSender opens the socket announcing vip on link.
func openSender(link string, vip netip.Addr) (sender, error) {
	ifi, err := net.InterfaceByName(link)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) == 0 {
		return nil, fmt.Errorf("%s has no hardware address", link)
	}
	if vip.Is4() {
		c, err := arp.Dial(ifi)
		if err != nil {
			return nil, fmt.Errorf("ARP socket: %w", err)
		}
		return &garp{c: c, ifi: ifi, vip: vip}, nil
	}
	c, _, err := ndp.Listen(ifi, ndp.Addr(vip.String()))
	if err != nil {
		return nil, fmt.Errorf("NDP socket: %w", err)
	}
	return &una{c: c, ifi: ifi, vip: vip}, nil
}

// stop ends the announcements and waits for them.
func (a *announcer) stop() {
	a.cancel()
	a.wg.Wait()
}

// garp sends gratuitous ARP requests: sender and target address the VIP.
type garp struct {
	c   *arp.Client
	ifi *net.Interface
	vip netip.Addr
}

func (g *garp) send() error {
	p, err := arp.NewPacket(arp.OperationRequest, g.ifi.HardwareAddr, g.vip, net.HardwareAddr{0, 0, 0, 0, 0, 0}, g.vip)
	if err != nil {
		return err
	}
	if err := g.c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	return g.c.WriteTo(p, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
}

func (g *garp) Close() error { return g.c.Close() }

// una sends unsolicited neighbour advertisements to all nodes.
type una struct {
	c   *ndp.Conn
	ifi *net.Interface
	vip netip.Addr
}

func (u *una) send() error {
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: u.vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: u.ifi.HardwareAddr}},
	}
	if err := u.c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	return u.c.WriteTo(na, nil, netip.MustParseAddr("ff02::1"))
}

func (u *una) Close() error { return u.c.Close() }
