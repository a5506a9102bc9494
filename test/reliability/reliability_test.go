package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
)

// TestRapidResetMemoryAndLatency runs the HTTP/2 rapid-reset attack
// (HEADERS + RST_STREAM in a loop on 10 connections, reconnecting; from a
// process of its own, so that the kernel, not one Go runtime, shares the
// CPU between attacker and legitimate client) for 5 s
// while a legitimate HTTP/2 client sends 200 requests a second. Issue 14:
// the legitimate client's p99 stays within 2× its unattacked p99 (asserted
// here as < 2× + 20 ms, the machine being shared), and Fulcrum's RSS comes
// back within 20% of its pre-attack value within the idle timeout of the
// attack's connections being closed.
func TestRapidResetMemoryAndLatency(t *testing.T) {
	b := backend(t, attack.ModeHTTP)
	l := webLayout(t, b)
	f := startFulcrum(t, l)
	ctx := context.Background()
	h2addr := fmt.Sprintf("127.0.0.1:%d", l.H2)
	legit := attack.H2Client(10 * time.Second)
	defer attack.CloseIdle(legit)
	get := attack.Get(legit, "https://"+h2addr+"/")

	attack.Steady(ctx, 100, time.Second, 64, get) // warm up
	base := attack.Steady(ctx, 200, 3*time.Second, 64, get)
	pre := attack.RSSKiB(f.pid())
	preFDs := attack.FDs(f.pid())

	var rr attack.RapidResetResult
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rr, rerr = attack.RapidResetProcess(ctx, driver, h2addr, 10, 5*time.Second)
	}()
	during := attack.Steady(ctx, 200, 5*time.Second, 64, get)
	wg.Wait()
	if rerr != nil {
		t.Fatal(rerr)
	}
	peak := attack.RSSKiB(f.pid())

	var series []int64
	end := peak
	for i := 0; i <= idleTimeout; i++ {
		end = attack.RSSKiB(f.pid())
		series = append(series, end)
		if end*10 <= pre*12 {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("attack: %+v", rr)
	t.Logf("legit p50/p99: unattacked %.2f/%.2f ms (%d ok, %d errors), under attack %.2f/%.2f ms (%d ok, %d errors %v)",
		base.P50ms, base.P99ms, base.Count, base.Errors, during.P50ms, during.P99ms, during.Count, during.Errors, during.ErrorKinds)
	t.Logf("RSS KiB: before %d, right after %d, each second after: %v; fds before %d, after %d", pre, peak, series, preFDs, attack.FDs(f.pid()))
	if rr.Streams == 0 {
		t.Fatalf("the attack sent no stream: %+v", rr)
	}
	if during.Errors > 0 || during.P99ms >= 2*base.P99ms+20 {
		t.Errorf("legit HTTP/2 p99 under rapid reset %.2f ms with %d errors; unattacked %.2f ms (issue 14: within 2×)",
			during.P99ms, during.Errors, base.P99ms)
	}
	if end*10 > pre*12 {
		t.Errorf("RSS %d KiB %d s after the attack ended, %.2f× the %d KiB before it (issue 14: within 1.2× by the idle timeout, %d s)",
			end, len(series)-1, float64(end)/float64(pre), pre, idleTimeout)
	}
}

// TestControlFloodsCut floods one HTTP/2 connection that never reads with
// SETTINGS, PING and CONTINUATION frames. Issue 14: the connection is
// cut within 1 s (ideally after a GOAWAY with ENHANCE_YOUR_CALM).
func TestControlFloodsCut(t *testing.T) {
	t.Parallel()
	b := backend(t, attack.ModeHTTP)
	l := webLayout(t, b)
	startFulcrum(t, l)
	h2addr := fmt.Sprintf("127.0.0.1:%d", l.H2)
	for _, kind := range []string{attack.FloodSettings, attack.FloodPing, attack.FloodContinuation} {
		t.Run(kind, func(t *testing.T) {
			r := attack.Flood(context.Background(), h2addr, kind, 5*time.Second)
			t.Logf("%s flood: %+v", kind, r)
			if r.Error != "" {
				t.Fatalf("flood: %s", r.Error)
			}
			if !r.Cut || r.CutMs > 1000 {
				t.Errorf("%s flood from a client that never reads: cut=%v after %.0f ms (%s), %d frames, goaway %q (issue 14: cut within 1 s)",
					kind, r.Cut, r.CutMs, r.How, r.Frames, r.GoAway)
			}
		})
	}
}

// TestUDPFloodSpoofed floods a UDP service from 6,000 distinct source
// addresses in 127.0.0.0/8 while probing an unrelated TCP service (a new
// connection every 20 ms) and the admin API (every 100 ms). Fulcrum runs
// with an open-file limit of 4,096 (prlimit after start), below the
// number of sources. Issue 14: both keep answering with 0 errors.
func TestUDPFloodSpoofed(t *testing.T) {
	t.Parallel()
	echo := backend(t, attack.ModeEcho)
	uecho, err := attack.StartUDPEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uecho.Close)
	p := freePorts(t, 2)
	l := attack.Layout{TCP: p[0], UDP: p[1], Echo: echo.Port(), UDPEcho: uecho.Port(), IdleTimeout: idleTimeout,
		BodyTimeout: bodyTimeout, HeaderTimeout: headerTimeout}
	f := startFulcrum(t, l)
	lim := unix.Rlimit{Cur: 4096, Max: 4096}
	if err := unix.Prlimit(f.pid(), unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	ctx := context.Background()
	probe := f.adminProbe(t, 2*time.Second)
	preFDs := attack.FDs(f.pid())
	var tcp, admin attack.Latency
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tcp = attack.Steady(ctx, 50, 6*time.Second, 32, attack.TCPProbe(fmt.Sprintf("127.0.0.1:%d", l.TCP), 2*time.Second))
	}()
	go func() { defer wg.Done(); admin = attack.Steady(ctx, 10, 6*time.Second, 8, probe) }()
	time.Sleep(500 * time.Millisecond)
	flood := attack.UDPFlood(ctx, fmt.Sprintf("127.0.0.1:%d", l.UDP), 6000, 2, 64, 8, 4*time.Second)
	floodFDs := attack.FDs(f.pid())
	wg.Wait()
	t.Logf("flood: %+v; echo server got %d", flood, uecho.Received())
	t.Logf("fds before %d, after the flood %d, at the end %d", preFDs, floodFDs, attack.FDs(f.pid()))
	t.Logf("tcp probes: %+v", tcp)
	t.Logf("admin probes: %+v", admin)
	if flood.Sent < 6000 {
		t.Fatalf("the flood sent only %d datagrams", flood.Sent)
	}
	if tcp.Errors > 0 || tcp.Count == 0 {
		t.Errorf("TCP service under a spoofed UDP flood: %d errors %v of %d probes (issue 14: 0 errors)", tcp.Errors, tcp.ErrorKinds, tcp.Count+tcp.Errors)
	}
	if admin.Errors > 0 || admin.Count == 0 {
		t.Errorf("admin API under a spoofed UDP flood: %d errors %v of %d probes (issue 14: 0 errors)", admin.Errors, admin.ErrorKinds, admin.Count+admin.Errors)
	}
}

// TestStalledUploadsEndAtBodyTimeout sends an upload that stops after
// 100 bytes of its Content-Length body, and one to a real server that never
// reads it. Issue 14: both end at the service's bodyTimeout (3 s here),
// not at its idle timeout (20 s).
func TestStalledUploadsEndAtBodyTimeout(t *testing.T) {
	t.Parallel()
	b := backend(t, attack.ModeHTTP)
	l := webLayout(t, b)
	startFulcrum(t, l)
	addr := fmt.Sprintf("127.0.0.1:%d", l.HTTP)
	bound := (bodyTimeout + 5) * time.Second
	check := func(t *testing.T, r attack.StallResult) {
		t.Helper()
		t.Logf("%+v", r)
		if r.Error != "" {
			t.Fatal(r.Error)
		}
		if !r.Cut || r.CutMs < (bodyTimeout-1)*1000 || r.CutMs > (bodyTimeout+2)*1000 {
			t.Errorf("stalled upload: cut=%v %.0f ms after its last progress (%s, status %d); want the body timeout, %d s (+2 s slack), not the idle timeout, %d s",
				r.Cut, r.CutMs, r.How, r.Status, bodyTimeout, idleTimeout)
		}
	}
	t.Run("client stops sending", func(t *testing.T) {
		t.Parallel()
		// 100 bytes: Fulcrum waits bodyTimeout plus one second per
		// bodyMinRate (500) bytes moved, so more would measure that
		// credit too (1,000 bytes: 2 s more).
		check(t, attack.StalledUpload(context.Background(), addr, "/upload", 1_000_000, 100, bound))
	})
	t.Run("server never reads", func(t *testing.T) {
		t.Parallel()
		check(t, attack.NeverReadUpload(context.Background(), addr, "/noread", 1<<30, bound))
	})
}

// TestSmugglingCorpus replays the HTTP/1 and h2→h1 smuggling corpora.
// Each case must be safe: refused (4xx, or the HTTP/2 stream or
// connection ended) with nothing reaching the backend, or forwarded as
// exactly one well-formed request; never a smuggled request, never bytes
// the backend cannot parse, never an injected header.
func TestSmugglingCorpus(t *testing.T) {
	t.Parallel()
	b := backend(t, attack.ModeHTTP)
	l := webLayout(t, b)
	startFulcrum(t, l)
	ctx := context.Background()
	h1 := attack.RunSmuggle(ctx, fmt.Sprintf("127.0.0.1:%d", l.HTTP), b, attack.H1SmuggleCorpus(), "t")
	h2 := attack.RunH2Smuggle(ctx, fmt.Sprintf("127.0.0.1:%d", l.H2), b, attack.H2SmuggleCorpus(), "t")
	for _, r := range append(h1, h2...) {
		t.Logf("%-32s status %3d answers %d closed %-5v backend saw %d smuggled %d malformed %d leaked %q %s",
			r.Name, r.Status, r.Answers, r.Closed, r.BackendSaw, r.Smuggled, r.Malformed, r.Leaked, r.Error)
		if !r.OK {
			t.Errorf("smuggling case %q is not safe: %+v", r.Name, r)
		}
	}
}

// TestHugeHeaders sends heads with one header of 8 to 64 KiB, 200 headers
// and a 16 KiB URI, 20 times each: the documented limits answer (431 for
// a head over 16 KiB or over 100 fields, 414 for a target over 8 KiB),
// nothing gets a 5xx, and RSS stays flat.
func TestHugeHeaders(t *testing.T) {
	t.Parallel()
	b := backend(t, attack.ModeHTTP)
	l := webLayout(t, b)
	f := startFulcrum(t, l)
	// A 16 KiB target makes a head over 16 KiB too: 431 or 414 are both
	// the documented limits.
	want := map[string][]int{"header 8 KiB": {200}, "header 16 KiB": {431}, "header 32 KiB": {431}, "header 64 KiB": {431},
		"200 headers": {431}, "URI 16 KiB": {414, 431}}
	before := attack.RSSKiB(f.pid())
	res := attack.RunHuge(context.Background(), fmt.Sprintf("127.0.0.1:%d", l.HTTP), attack.HugeCorpus(), 20, 5)
	after := attack.RSSKiB(f.pid())
	t.Logf("RSS KiB before %d after %d", before, after)
	for _, r := range res {
		t.Logf("%-14s %v errors %d", r.Name, r.Statuses, r.Errors)
		n := 0
		for _, s := range want[r.Name] {
			n += r.Statuses[s]
		}
		if n != 20 {
			t.Errorf("%s: answers %v (errors %d), want 20× %d", r.Name, r.Statuses, r.Errors, want[r.Name])
		}
	}
	if after > before*12/10+4096 {
		t.Errorf("RSS grew from %d to %d KiB over 120 oversized requests", before, after)
	}
}
