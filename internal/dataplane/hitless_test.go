package dataplane

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestHitless200Changes is the acceptance test of hitless
// reconfiguration: 200 configuration changes, to other services and to the
// real servers of the service under load, while a bounded load generator
// runs against it: no connection fails, and a long-lived session on an
// unchanged service survives every change.
func TestHitless200Changes(t *testing.T) {
	a, b, c := startTag(t, "a"), startTag(t, "b"), startTag(t, "c")
	long := startTag(t, "L")
	e := newEngine(t)
	pLoad, pLong := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.5")
	others := testkit.FreePorts(t, "127.0.0.6", 4)
	loadAddr, longAddr := hostPort("127.0.0.1", pLoad), hostPort("127.0.0.5", pLong)

	longVS := vsOf(9, "127.0.0.5", pLong, rsOf(91, long, 1))
	longVS.Idletime = 86400
	build := func(i int) *config.Config {
		load := vsOf(1, "127.0.0.1", pLoad, rsOf(11, a, 1000+i%7), rsOf(12, b, 1000))
		switch i % 4 {
		case 1:
			load.RealServers = append(load.RealServers, rsOf(13, c, 500))
		case 2:
			load.Schedule = "lc"
		case 3:
			load.RealServers = append(load.RealServers, rsOf(13, c, 500))
			load.Schedule = "wlc"
		}
		vss := []config.VirtualService{load, longVS}
		for j := range i % 5 { // other services come and go
			vss = append(vss, vsOf(20+j, "127.0.0.6", others[j], rsOf(200+j, c, 1)))
		}
		return conf(t, vss...)
	}
	mustApply(t, e, build(0))

	kept := mustDial(t, longAddr)
	_ = kept.c.SetDeadline(time.Now().Add(5 * time.Minute))
	if tag, err := kept.ask("start"); err != nil || tag != "L" {
		t.Fatalf("long session: %q %v", tag, err)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(90 * time.Second)
			for i := 0; i < 200000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := askOnce(loadAddr); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		mustApply(t, e, build(i))
		if i%20 == 0 {
			if tag, err := kept.ask(fmt.Sprint(i)); err != nil || tag != "L" {
				t.Fatalf("long session after %d changes: %q %v", i, tag, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d connections failed across 200 changes; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 200 {
		t.Errorf("only %d connections made during the changes", ok.Load())
	}
	if tag, err := kept.ask("end"); err != nil || tag != "L" {
		t.Errorf("long session after 200 changes: %q %v", tag, err)
	}
	if g := e.Snapshot().Generation(); g != 201 {
		t.Errorf("generation %d, want 201", g)
	}
	t.Logf("%d connections across 200 changes, 0 failed; long session intact", ok.Load())
}

// TestNoLeakAfterRemoval removes TCP and UDP services with open
// connections and sessions and checks that, once their drain time ended,
// no goroutine of theirs is left.
func TestNoLeakAfterRemoval(t *testing.T) {
	a := startTag(t, "a")
	uas := startUAS(t, "127.0.0.41", "uas")
	e := newEngine(t)
	before := goleak.IgnoreCurrent()
	pTCP := testkit.FreePort(t, "127.0.0.40")
	pUDP := testkit.FreeUDPPort(t, "127.0.0.40")
	withDrain := func(vss ...config.VirtualService) *config.Config {
		cfg := conf(t, vss...)
		cfg.Options.DrainTime = 1
		return cfg
	}
	tcpVS := vsOf(1, "127.0.0.40", pTCP, rsOf(11, a, 1))
	udpVS := config.VirtualService{ID: 2, Address: "127.0.0.40", Port: pUDP, Protocol: "udp", HealthCheck: config.HealthCheck{Type: "none"},
		RealServers: []config.RealServer{{ID: 21, Address: "127.0.0.41", Port: uas.port}}}
	udpVS.Idletime = 3600
	mustApply(t, e, withDrain(tcpVS, udpVS))
	var conns []*client
	for range 5 {
		c := mustDial(t, hostPort("127.0.0.40", pTCP))
		if _, err := c.ask("x"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	vip := mustAP(t, "127.0.0.40", pUDP)
	sipExchange(t, phone, vip, "OPTIONS", "leak-check", 1)
	if e.udp.Active() != 1 || e.proxy.Active() != 5 {
		t.Fatalf("sessions %d, connections %d", e.udp.Active(), e.proxy.Active())
	}

	mustApply(t, e, withDrain())
	for i, c := range conns {
		if !c.closed() {
			t.Errorf("connection %d not closed at the end of the drain time", i)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return e.udp.Active() == 0 && e.proxy.Active() == 0 }, "sessions to end")
	// The health monitor's idle check workers belong to the Engine, not to
	// the services; they end on their own after 10 s.
	if err := goleak.Find(before, goleak.IgnoreTopFunction("github.com/fulcrum-lb/fulcrum/internal/health.(*Monitor).work")); err != nil {
		t.Errorf("goroutines left after the services were removed: %v", err)
	}
}
