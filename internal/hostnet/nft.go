package hostnet

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nft opens an nftables connection to the managed namespace.
func (m *Manager) nft() (*nftables.Conn, error) {
	if m.ns >= 0 {
		return nftables.New(nftables.WithNetNSFd(int(m.ns)))
	}
	return nftables.New()
}

var fulcrumTable = &nftables.Table{Family: nftables.TableFamilyINet, Name: NFTable}

// chains lists the chains of the table inet fulcrum (none when it does
// not exist).
func chains(c *nftables.Conn) ([]*nftables.Chain, error) {
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing nftables chains: %w", err)
	}
	var out []*nftables.Chain
	for _, ch := range all {
		if ch.Table.Name == NFTable {
			out = append(out, ch)
		}
	}
	return out, nil
}

func findChain(cs []*nftables.Chain, name string) *nftables.Chain {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// addChain queues the base chain name with the rules of s.
func addChain(c *nftables.Conn, name string, s *chainSpec) error {
	ch := &nftables.Chain{Name: name, Table: fulcrumTable}
	var rules [][]expr.Any
	if name == "prerouting" {
		ch.Type, ch.Hooknum, ch.Priority = nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle
		if s.Transparent {
			for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
				// meta l4proto tcp|udp socket transparent 1 meta mark set TransparentMark accept
				rules = append(rules, []expr.Any{
					&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
					&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
					&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(netcfg.TransparentMark)},
					&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
					&expr.Verdict{Kind: expr.VerdictAccept},
				})
			}
		}
	} else {
		ch.Type, ch.Hooknum, ch.Priority = nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource
		for _, r := range s.SNAT {
			srv, err1 := netip.ParseAddr(r.Server)
			to, err2 := netip.ParseAddr(r.To)
			if err1 != nil || err2 != nil || srv.Is4() != to.Is4() {
				return fmt.Errorf("SNAT of %s to %s: not two addresses of one family", r.Server, r.To)
			}
			// ip saddr <Server> snat to <To> (ip6 for IPv6)
			proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
			if !srv.Is4() {
				proto, off, n = unix.NFPROTO_IPV6, 8, 16
			}
			rules = append(rules, []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: srv.AsSlice()},
				&expr.Immediate{Register: 1, Data: to.AsSlice()},
				&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(proto), RegAddrMin: 1},
			})
		}
	}
	c.AddTable(fulcrumTable)
	ch = c.AddChain(ch)
	for _, e := range rules {
		c.AddRule(&nftables.Rule{Table: fulcrumTable, Chain: ch, Exprs: e})
	}
	return nil
}

func sameChain(a, b *chainSpec) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func (m *Manager) ensureChain(w, old *item) (*item, func() error, error) {
	c, err := m.nft()
	if err != nil {
		return nil, nil, fmt.Errorf("nftables: %w", err)
	}
	cs, err := chains(c)
	if err != nil {
		return nil, nil, err
	}
	cur := findChain(cs, w.Name)
	switch {
	case cur != nil && old == nil:
		return nil, nil, fmt.Errorf("the nftables chain inet %s %s exists and is not Fulcrum's (not in its state file): remove it", NFTable, w.Name)
	case cur != nil && sameChain(old.Chain, w.Chain):
		return old, nil, nil
	}
	if cur != nil {
		c.FlushChain(cur)
		c.DelChain(cur)
	}
	if err := addChain(c, w.Name, w.Chain); err != nil {
		return nil, nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, nil, fmt.Errorf("nftables chain inet %s %s: %w", NFTable, w.Name, err)
	}
	m.log.Info("nftables chain set", "table", "inet "+NFTable, "chain", w.Name)
	undo := func() error { return m.delChain(w.Name) }
	if cur != nil {
		prev := old.Chain
		undo = func() error { return m.setChain(w.Name, prev) }
	}
	return w, undo, nil
}

// setChain replaces the chain name with s.
func (m *Manager) setChain(name string, s *chainSpec) error {
	c, err := m.nft()
	if err != nil {
		return err
	}
	cs, err := chains(c)
	if err != nil {
		return err
	}
	if cur := findChain(cs, name); cur != nil {
		c.FlushChain(cur)
		c.DelChain(cur)
	}
	if err := addChain(c, name, s); err != nil {
		return err
	}
	return c.Flush()
}

// delChain deletes the chain name, and the table with its last chain.
func (m *Manager) delChain(name string) error {
	c, err := m.nft()
	if err != nil {
		return err
	}
	cs, err := chains(c)
	if err != nil {
		return err
	}
	cur := findChain(cs, name)
	if cur == nil {
		return nil
	}
	if len(cs) == 1 {
		c.DelTable(fulcrumTable)
	} else {
		c.FlushChain(cur)
		c.DelChain(cur)
	}
	return c.Flush()
}
