package admission

import (
	"sync"
	"testing"
)

func TestForLimit(t *testing.T) {
	for _, tc := range []struct {
		limit              int
		reserved, udp, tcp int
	}{
		{limit: 1024, reserved: 256, udp: 192, tcp: 288},
		{limit: 65536, reserved: 8192, udp: 14336, tcp: 21504},
		{limit: 1 << 20, reserved: 131072, udp: MaxUDPSessions, tcp: 425984},
		{limit: 100, reserved: 256, udp: 16, tcp: 16},
	} {
		b := ForLimit(tc.limit)
		if b.Reserved != tc.reserved || b.UDPSessions != tc.udp || b.TCPConns != tc.tcp {
			t.Errorf("ForLimit(%d) = %+v, want reserved %d, udp %d, tcp %d", tc.limit, b, tc.reserved, tc.udp, tc.tcp)
		}
		if tc.limit >= 1024 && b.Reserved+b.UDPSessions+2*b.TCPConns > tc.limit {
			t.Errorf("ForLimit(%d) = %+v shares out more descriptors than there are", tc.limit, b)
		}
	}
	if b := Current(); b.Limit <= 0 || b.TCPConns <= 0 {
		t.Errorf("Current() = %+v", b)
	}
}

func TestGate(t *testing.T) {
	g := NewGate(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g.Enter() {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted != 10 || g.Held() != 10 || g.Refused() != 40 {
		t.Fatalf("admitted %d, held %d, refused %d; want 10, 10, 40", admitted, g.Held(), g.Refused())
	}
	g.Leave()
	if !g.Enter() || g.Enter() {
		t.Error("one Leave must make room for exactly one Enter")
	}
	g.ForceEnter() // a connection taking the place of one being closed
	if g.Held() != 11 {
		t.Errorf("held %d after ForceEnter, want 11", g.Held())
	}
	var none *Gate
	if !none.Enter() || none.Max() != 0 || none.Held() != 0 {
		t.Error("a nil gate admits everything")
	}
	none.Leave()
	if DefaultServiceConns(288) != 144 || DefaultServiceConns(1) != 1 {
		t.Error("DefaultServiceConns")
	}
}
