package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
)

// caseDef is one case of the suite.
type caseDef struct {
	name, what, acceptance string
	// notFor maps a proxy to why the case does not apply to it.
	notFor map[string]string
	// restartAfter restarts the proxy after the case (it leaves state
	// behind that would spoil the next one).
	restartAfter bool
	// issue is the issue whose acceptance the case checks (0: 14).
	issue int
	run   func(ctx context.Context, r *runner, x *proxy) (*cell, error)
}

// cases is the suite, in the order it runs.
func cases() []caseDef {
	fulcrumOnly := func(why string) map[string]string { return map[string]string{"haproxy": why} }
	return []caseDef{
		{name: "rapid-reset", what: "HTTP/2 rapid reset (CVE-2023-44487): 10 connections sending HEADERS + RST_STREAM(CANCEL) in a loop, reconnecting when closed, for the attack window, from a process of its own; a legitimate HTTP/2 client at -legit-rate requests/s before and during.",
			acceptance: "RSS back within 1.2× of its pre-attack value within the idle timeout after the attack's connections closed (sampled each second), and the legitimate client's p99 during the attack within 2× its unattacked p99.",
			run:        caseRapidReset},
		{name: "floods", what: "One HTTP/2 connection that never reads (4 KiB receive buffer) sending SETTINGS, PING or CONTINUATION frames as fast as it can, at most 5 s each; the cut is seen in the kernel's TCP state (FIN or RST received).",
			acceptance: "each flood's connection cut within 1 s (ideally after GOAWAY ENHANCE_YOUR_CALM).",
			run:        caseFloods},
		{name: "stalled-upload", what: "A POST whose client stops after 100 bytes of a 1,000,000-byte Content-Length body (few, so that Fulcrum's bodyMinRate credit, a second per 500 bytes moved, stays under 0.2 s), and a 1 GiB POST to a real server that reads the head and never the body (/noread); both at once, waited for up to the idle timeout + 5 s.",
			acceptance: "both end at the service's bodyTimeout (-body-timeout), not at the idle timeout. HAProxy has no body timeout: its figures are reported (timeout client/server at the idle timeout apply).",
			run:        caseStalled},
		{name: "backend-kill", what: "Keep-alive GET load (300 requests/s) on a service over three real servers in processes of their own, one of which is killed with SIGKILL every 5 s and restarted 2 s later.",
			acceptance: "none in the issue; errors should be 0 for GETs (retried on another real server).",
			run:        caseBackendKill},
		{name: "rst-backend", what: "GET load (100 requests/s, a new connection each, so that round robin reaches both: Fulcrum keeps a keep-alive connection on its first real server) on a service over a good real server and one that accepts and resets at once: client-visible errors and time to answer.",
			run: func(ctx context.Context, r *runner, x *proxy) (*cell, error) {
				return caseBadBackend(ctx, r, x, x.l.RST, 100, 10*time.Second)
			}},
		{name: "hang-backend", what: "GET load (20 requests/s, a new connection each) on a service over a good real server and one that accepts and never answers: client-visible errors and time to answer (the client waits up to the idle timeout + 10 s).",
			run: func(ctx context.Context, r *runner, x *proxy) (*cell, error) {
				return caseBadBackend(ctx, r, x, x.l.Hang, 20, time.Duration(r.e.o.idleTimeout+10)*time.Second)
			}},
		{name: "config-churn", what: "New-connection load (a connection per GET, 300/s) while the configuration changes every second: Fulcrum through its REST API (a real server's weight, and a service added or deleted, alternately, each a new configuration revision); HAProxy through its runtime API (set weight: it cannot add a listener without a reload).",
			run: caseConfigChurn},
		{name: "slowloris", what: "-slow-conns connections each sending a request head one header line every 2 s and never ending it, for max(window, header timeout + 5 s); a legitimate HTTP/1.1 client before and during.",
			run: caseSlowloris},
		{name: "slow-post", what: "-slow-conns/5 connections each sending a POST with a 1,000,000-byte Content-Length and one body byte a second (progress, so no body timeout applies), for max(window, 15 s): how long they are held and how many real-server connections they hold.",
			run: caseSlowPOST},
		{name: "smuggling", what: "The HTTP/1 smuggling corpus (CL.TE, TE.CL, TE.TE variants, duplicate/empty/signed/hex/list Content-Length, obs-fold, bare LF and CR, NUL, underscore X_Forwarded_For, leading CRLF, two Host) on the HTTP listener, and the h2→h1 corpus (two content-lengths, content-length against DATA, connection-specific fields, CR/LF/NUL in values, :path and :authority) on the HTTP/2 listener, one connection per case.",
			acceptance: "none in the issue; each case must be refused with nothing reaching the real server, or forwarded as exactly one well-formed request; never a smuggled request or an injected header.",
			run:        caseSmuggling},
		{name: "idle-10k", what: "-idle-conns idle keep-alive client connections, each after one GET /: RSS per connection and descriptors, a legitimate client while they are held, and memory after they are closed.",
			run: caseIdle},
		{name: "huge-headers", what: "Heads with one header of 8, 16, 32 and 64 KiB, 200 headers and a 16 KiB URI, 50 of each, 10 at once: status codes and RSS.",
			acceptance: "none in the issue; documented limits answer (431 over 16 KiB or 100 fields, 414 or 431 for a 16 KiB target, 200 for 8 KiB), no 5xx, RSS flat (within 1.2× + 4 MiB).",
			run:        caseHuge},
		{name: "udp-flood", what: "A UDP flood from -udp-sources distinct spoofed sources in 127.0.0.0/8 (2 datagrams each) on a UDP service, with Fulcrum's open-file limit set to -udp-nofile for the case; an unrelated TCP service probed with a new connection every 20 ms and the admin API every 100 ms (a new connection each, API key) during and 2 s after.",
			acceptance: "the TCP service and the admin API answer with 0 errors.",
			notFor:     fulcrumOnly("HAProxy does not proxy UDP"), restartAfter: true,
			run: caseUDPFlood},
		{name: "crash-atomicity", what: "A Fulcrum of its own: -crash-runs times, PUT /api/v1/config with 200 services, SIGKILL at a random moment while the write runs, restart, and read the configuration back.",
			acceptance: "none in the issue; the configuration read back is always exactly the old or the new one.",
			notFor:     fulcrumOnly("HAProxy has no configuration API that writes its configuration"),
			run:        caseCrash},
		{name: "admin-guessing", issue: 15, what: "A Fulcrum of its own: bal's password guessed with HTTP Basic on GET /api/v1/status, 3 guesses from each source address (127.3.x.y) then the next, 4 at once as fast as answered, for -duration and on until 40 s after the first guess refused early (when none is refused within 60 s, it ends then); the real administrator, who logged in from 127.2.0.1 before, logs in every second during and once after. A 401 is a guess evaluated (password compared); 429, 423 or 403 a guess refused early. Extrapolated to 10 minutes at the pace the server sets at the end (its last Retry-After), an upper bound.",
			acceptance: fmt.Sprintf("at most %d guesses evaluated per 10 minutes (the issue measured ~3,800), and the real administrator never refused.", attack.MaxGuessesPerTenMinutes),
			notFor:     fulcrumOnly("no admin plane of this kind"),
			run:        caseAdminGuessing},
		{name: "audit-flood", issue: 15, what: "A Fulcrum of its own: the administrator logs in (POST /api/v1/login from 127.2.0.2) and adds a disabled service; then bad API keys (Authorization: Bearer, random) on GET /api/v1/status, 3 from each source address (127.5.x.y) then the next, 32 at once, for -duration; Fulcrum is then stopped and started again (so that entries it defers, such as aggregated failures, are written) and the audit log read back (GET /api/v1/audit, newest first, before=/limit=): the entries the flood added are its failures and lockouts.",
			acceptance: fmt.Sprintf("at most %d audit entries appended per second of flood, whatever its rate (the issue measured 50), and the login and change entries still in the log.", attack.MaxAuditPerSecond),
			notFor:     fulcrumOnly("no admin plane of this kind"),
			run:        caseAuditFlood},
		{name: "unauth-bodies", issue: 15, what: "The LoadMaster-compatible API enabled (PATCH /api/v1/options, put back after); after a warm-up of 25 small bodies, 25 concurrent 16 MiB POSTs without credentials to /accessv2 (a JSON object with a long member), then 25 to /access/addvs (a form with a long field), each from its own source address (127.6.x.y); RSS sampled every 100 ms, then each 0.5 s up to the idle timeout until back within 1.2×.",
			acceptance: fmt.Sprintf("RSS growth at the peak at most %d MiB (the issue measured +1.6 GB) and RSS back within 1.2× of before.", attack.MaxBodyGrowthKiB>>10),
			notFor:     fulcrumOnly("no admin plane of this kind"),
			run:        caseUnauthBodies},
		{name: "forged-restore", issue: 15, what: "A Fulcrum of its own: GET /api/v1/backup, add an administrator mallory (bcrypt cost 4) and an API key for her, recompute the checksum, and POST /api/v1/restore with the signature kept and removed; then as a preview (allowUnsigned=true&dryRun=true, and with users=true), and restored with allowUnsigned=true&users=true and allowUnsigned=true; then GET /api/v1/users, mallory's password and her key (from 127.4.0.1).",
			acceptance: "the forged backup refused without allowUnsigned (signature kept or removed), and mallory never listed nor authenticated.",
			notFor:     fulcrumOnly("no admin plane of this kind"),
			run:        caseForgedRestore},
	}
}

// snap is a proxy's memory and descriptors at one moment.
type snap struct {
	rss int64
	fds int
}

func (r *runner) snap(x *proxy) snap { return snap{attack.RSSKiB(x.pid()), attack.FDs(x.pid())} }

// memFigures adds RSS and descriptors before and after, waiting (up to
// wait, sampling each second) for RSS to come back within 1.2× of before;
// it returns whether it did.
func (r *runner) memFigures(ctx context.Context, c *cell, x *proxy, before snap, peak int64, wait time.Duration) bool {
	start := time.Now()
	var after int64
	var series []int64
	for {
		after = attack.RSSKiB(x.pid())
		series = append(series, after)
		if after*10 <= before.rss*12 || time.Since(start) >= wait || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	back := after*10 <= before.rss*12
	c.add("RSS before, KiB", before.rss)
	if peak > 0 {
		c.add("RSS at the end of the attack, KiB", peak)
	}
	c.add("RSS after, KiB", after)
	c.add("RSS after ÷ before", float64(after)/float64(max(before.rss, 1)))
	c.add("memory came back (≤ 1.2×)", back)
	c.add("seconds waited for it", float64(len(series)-1))
	c.add("descriptors before", before.fds)
	c.add("descriptors after", attack.FDs(x.pid()))
	return back
}

func latFigures(c *cell, label string, l attack.Latency) {
	c.add(label+" p50 ms", l.P50ms)
	c.add(label+" p99 ms", l.P99ms)
	c.add(label+" answered", l.Count)
	c.add(label+" errors", l.Errors)
	if len(l.ErrorKinds) > 0 {
		c.add(label+" error kinds", l.ErrorKinds)
		c.add(label+" errors after ms, p50", l.ErrP50ms)
		c.add(label+" errors after ms, max", l.ErrMaxMs)
	}
}

func (r *runner) window() time.Duration { return r.e.o.duration }

func caseRapidReset(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	addr := fmt.Sprintf("127.0.0.1:%d", x.l.H2)
	legit := attack.H2Client(10 * time.Second)
	defer attack.CloseIdle(legit)
	get := attack.Get(legit, "https://"+addr+"/")
	rate := r.e.o.legitRate
	attack.Steady(ctx, rate, time.Second, 256, get)
	base := attack.Steady(ctx, rate, 3*time.Second, 256, get)
	before := r.snap(x)
	var rr attack.RapidResetResult
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rr, rerr = attack.RapidResetProcess(ctx, r.e.self, addr, 10, r.window())
	}()
	during := attack.Steady(ctx, rate, r.window(), 256, get)
	wg.Wait()
	if rerr != nil {
		return nil, rerr
	}
	peak := attack.RSSKiB(x.pid())
	c.add("streams opened and reset", rr.Streams)
	c.add("attack connections", rr.Connections)
	c.add("closed by the proxy", rr.ClosedByServer)
	c.add("GOAWAYs", rr.GoAways)
	latFigures(c, "legit unattacked", base)
	latFigures(c, "legit under attack", during)
	ratio := during.P99ms / max(base.P99ms, 0.001)
	c.add("legit p99 ratio", ratio)
	back := r.memFigures(ctx, c, x, before, peak, time.Duration(r.e.o.idleTimeout)*time.Second)
	c.verdict(back && ratio <= 2 && during.Errors == 0)
	return c, nil
}

func caseFloods(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	addr := fmt.Sprintf("127.0.0.1:%d", x.l.H2)
	before := r.snap(x)
	ok := true
	for _, kind := range []string{attack.FloodSettings, attack.FloodPing, attack.FloodContinuation} {
		f := attack.Flood(ctx, addr, kind, 5*time.Second)
		if f.Error != "" {
			return nil, fmt.Errorf("%s flood: %s", kind, f.Error)
		}
		cut := f.Cut && f.CutMs <= 1000
		ok = ok && cut
		c.Rows = append(c.Rows, map[string]any{"name": kind, "ok": cut, "cut": f.Cut, "cut ms": f.CutMs, "how": f.How,
			"goaway": f.GoAway, "frames sent": f.Frames, "writes blocked": f.Stalled})
		c.add(kind+" cut after ms", f.CutMs)
		c.add(kind+" GOAWAY", f.GoAway)
		time.Sleep(200 * time.Millisecond)
	}
	r.memFigures(ctx, c, x, before, 0, 5*time.Second)
	c.verdict(ok)
	return c, nil
}

func caseStalled(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	addr := fmt.Sprintf("127.0.0.1:%d", x.l.HTTP)
	bound := time.Duration(r.e.o.idleTimeout+5) * time.Second
	var a, b attack.StallResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = attack.StalledUpload(ctx, addr, "/upload", 1_000_000, 100, bound) }()
	go func() { defer wg.Done(); b = attack.NeverReadUpload(ctx, addr, "/noread", 1<<30, bound) }()
	wg.Wait()
	body := float64(r.e.o.bodyTimeout * 1000)
	within := func(s attack.StallResult) bool { return s.Cut && s.CutMs >= body-1000 && s.CutMs <= body+2000 }
	for _, s := range []struct {
		name string
		r    attack.StallResult
	}{{"client stops sending", a}, {"server never reads", b}} {
		if s.r.Error != "" {
			return nil, fmt.Errorf("%s: %s", s.name, s.r.Error)
		}
		c.add(s.name+": cut after ms", s.r.CutMs)
		c.add(s.name+": status", s.r.Status)
		c.add(s.name+": how", s.r.How)
		c.add(s.name+": bytes sent", s.r.SentBytes)
	}
	if x.name == "fulcrum" {
		c.verdict(within(a) && within(b))
	} else {
		c.note("no body timeout: timeout client/server (%d s, the idle timeout) apply", r.e.o.idleTimeout)
	}
	return c, nil
}

func caseBackendKill(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	h := attack.H1Client(10 * time.Second)
	defer attack.CloseIdle(h)
	kctx, cancel := context.WithCancel(ctx)
	kills := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
			}
			port := r.e.kill.ports[i%len(r.e.kill.ports)]
			r.e.kill.kill9(port)
			kills++
			select {
			case <-kctx.Done():
			case <-time.After(2 * time.Second):
			}
			if err := r.e.kill.start(ctx, port); err != nil {
				r.log.Warn("backend restart", "port", port, "err", err)
			}
		}
	}()
	window := max(r.window(), 16*time.Second)
	load := attack.Steady(ctx, 300, window, 256, attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", x.l.Kill)))
	cancel()
	wg.Wait()
	c.add("kills", kills)
	latFigures(c, "GET", load)
	c.verdict(load.Errors == 0)
	return c, nil
}

func caseBadBackend(ctx context.Context, r *runner, x *proxy, port, rate int, timeout time.Duration) (*cell, error) {
	c := &cell{}
	h := newConnClient(timeout)
	before := r.snap(x)
	load := attack.Steady(ctx, rate, r.window(), 4096, attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", port)))
	latFigures(c, "GET", load)
	c.add("GET max ms", load.MaxMs)
	r.memFigures(ctx, c, x, before, 0, time.Second)
	return c, nil
}

// newConnClient makes a new connection for every request.
func newConnClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
}

func caseConfigChurn(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	h := newConnClient(10 * time.Second)
	var change func(i int) error
	switch x.name {
	case "fulcrum":
		vsID, rsID, err := webIDs(ctx, x)
		if err != nil {
			return nil, err
		}
		dummy := 0
		change = func(i int) error {
			var body []byte
			var status int
			var err error
			switch {
			case i%2 == 0:
				body, status, err = x.api.Call(ctx, http.MethodPatch, fmt.Sprintf("/api/v1/virtual-services/%d/real-servers/%d", vsID, rsID),
					fmt.Sprintf(`{"weight":%d}`, 500+500*(i/2%2)))
			case dummy == 0:
				body, status, err = x.api.Call(ctx, http.MethodPost, "/api/v1/virtual-services",
					fmt.Sprintf(`{"address":"127.0.0.1","port":%d,"type":"gen","realServers":[{"address":"127.0.0.1","port":%d}]}`,
						r.e.port(190), r.e.port(6)))
				var vs struct {
					ID int `json:"id"`
				}
				if err == nil && json.Unmarshal(body, &vs) == nil {
					dummy = vs.ID
				}
			default:
				body, status, err = x.api.Call(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/virtual-services/%d", dummy), "")
				dummy = 0
			}
			if err == nil && status/100 != 2 {
				err = fmt.Errorf("status %d: %s", status, strings.TrimSpace(string(body)))
			}
			return err
		}
	default:
		change = func(i int) error {
			out, err := haproxyCmd(x.statsSock, fmt.Sprintf("set weight web/s1 %d", 50+50*(i%2)))
			if err == nil && strings.TrimSpace(out) != "" {
				err = fmt.Errorf("haproxy: %s", strings.TrimSpace(out))
			}
			return err
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	var changes, changeErrs int
	var apiLat []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			if err := change(i); err != nil {
				changeErrs++
				r.log.Warn("change", "proxy", x.name, "err", err)
			} else {
				changes++
				apiLat = append(apiLat, time.Since(start))
			}
		}
	}()
	load := attack.Steady(ctx, 300, r.window(), 512, attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", x.l.HTTP)))
	cancel()
	wg.Wait()
	c.add("changes", changes)
	c.add("failed changes", changeErrs)
	if len(apiLat) > 0 {
		sort.Slice(apiLat, func(i, j int) bool { return apiLat[i] < apiLat[j] })
		c.add("change call p50 ms", attack.Ms(attack.Percentile(apiLat, 50)))
	}
	latFigures(c, "new-connection GET", load)
	return c, nil
}

// webIDs finds the IDs of Fulcrum's plain HTTP service and its real server.
func webIDs(ctx context.Context, x *proxy) (int, int, error) {
	body, err := x.api.Get(ctx, "/api/v1/virtual-services")
	if err != nil {
		return 0, 0, err
	}
	var list struct {
		VirtualServices []struct {
			ID          int `json:"id"`
			Port        int `json:"port"`
			RealServers []struct {
				ID int `json:"id"`
			} `json:"realServers"`
		} `json:"virtualServices"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, 0, fmt.Errorf("virtual services: %w", err)
	}
	for _, vs := range list.VirtualServices {
		if vs.Port == x.l.HTTP && len(vs.RealServers) > 0 {
			return vs.ID, vs.RealServers[0].ID, nil
		}
	}
	return 0, 0, fmt.Errorf("no service on port %d in %.200s", x.l.HTTP, body)
}

func caseSlowloris(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	h := attack.H1Client(10 * time.Second)
	defer attack.CloseIdle(h)
	get := attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", x.l.HTTP))
	base := attack.Steady(ctx, r.e.o.legitRate, 3*time.Second, 256, get)
	before := r.snap(x)
	window := max(r.window(), time.Duration(r.e.o.headerTimeout+5)*time.Second)
	var s attack.SlowResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s = attack.Slowloris(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.HTTP), r.e.o.slowConns, 2*time.Second, window)
	}()
	time.Sleep(window / 2)
	held := r.snap(x)
	during := attack.Steady(ctx, r.e.o.legitRate, window/2-time.Second, 256, get)
	wg.Wait()
	c.add("slow connections opened", s.Opened)
	c.add("dial errors", s.DialErrors)
	c.add("cut by the proxy", s.Cut)
	c.add("cut after s, median", s.CutP50s)
	c.add("cut after s, max", s.CutMaxS)
	c.add("still open at the end", s.StillOpen)
	c.add("answers to slow connections", s.Statuses)
	c.add("descriptors mid-attack", held.fds)
	latFigures(c, "legit unattacked", base)
	latFigures(c, "legit under attack", during)
	c.add("legit p99 ratio", during.P99ms/max(base.P99ms, 0.001))
	r.memFigures(ctx, c, x, before, held.rss, time.Duration(r.e.o.idleTimeout)*time.Second)
	return c, nil
}

func caseSlowPOST(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	before := r.snap(x)
	window := max(r.window(), 15*time.Second)
	bstart := r.e.web.Stats()
	var s attack.SlowResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s = attack.SlowPOST(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.HTTP), "/upload", max(1, r.e.o.slowConns/5), time.Second, window)
	}()
	time.Sleep(window * 2 / 3)
	mid := r.e.web.Stats()
	held := r.snap(x)
	wg.Wait()
	c.add("slow POSTs opened", s.Opened)
	c.add("cut by the proxy", s.Cut)
	c.add("cut after s, median", s.CutP50s)
	c.add("answers to slow POSTs", s.Statuses)
	c.add("held to the end of the window", s.StillOpen)
	c.add("window s", window.Seconds())
	c.add("real-server connections open mid-attack", mid.Active)
	c.add("real-server requests reading a body mid-attack", mid.InBody)
	c.add("real-server connections open before", bstart.Active)
	c.add("descriptors mid-attack", held.fds)
	r.memFigures(ctx, c, x, before, held.rss, time.Duration(r.e.o.idleTimeout)*time.Second)
	return c, nil
}

func caseSmuggling(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	h1 := attack.RunSmuggle(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.HTTP), r.e.web, attack.H1SmuggleCorpus(), x.name)
	h2 := attack.RunH2Smuggle(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.H2), r.e.web, attack.H2SmuggleCorpus(), x.name)
	safe := 0
	var unsafe []string
	for i, s := range append(h1, h2...) {
		proto := "h1"
		if i >= len(h1) {
			proto = "h2"
		}
		if s.OK {
			safe++
		} else {
			unsafe = append(unsafe, proto+" "+s.Name)
		}
		status := fmt.Sprint(s.Status)
		if s.Status == 0 {
			status = s.Error
		}
		c.Rows = append(c.Rows, map[string]any{"name": proto + " " + s.Name, "ok": s.OK, "status": status, "closed": s.Closed,
			"backend saw": s.BackendSaw, "smuggled": s.Smuggled, "malformed at backend": s.Malformed, "leaked header": s.Leaked})
		if s.Leaked != "" {
			c.note("%s %s: the real server received %s", proto, s.Name, s.Leaked)
		}
	}
	c.add("cases", len(h1)+len(h2))
	c.add("safe", safe)
	c.add("not safe", unsafe)
	c.verdict(len(unsafe) == 0)
	return c, nil
}

func caseIdle(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	n := min(r.e.o.idleConns, r.e.fdLimit-2000)
	before := r.snap(x)
	held, failed := attack.IdleConns(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.HTTP), n, 32)
	defer func() {
		for _, hc := range held {
			_ = hc.Close()
		}
	}()
	time.Sleep(2 * time.Second)
	during := r.snap(x)
	h := attack.H1Client(10 * time.Second)
	defer attack.CloseIdle(h)
	legit := attack.Steady(ctx, r.e.o.legitRate, 3*time.Second, 256, attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", x.l.HTTP)))
	c.add("connections held", len(held))
	c.add("connections failed", failed)
	c.add("RSS held, KiB", during.rss)
	if len(held) > 0 {
		c.add("KiB per idle connection", float64(during.rss-before.rss)/float64(len(held)))
	}
	c.add("descriptors held", during.fds)
	latFigures(c, "legit while held", legit)
	for _, hc := range held {
		_ = hc.Close()
	}
	held = nil
	r.memFigures(ctx, c, x, before, during.rss, time.Duration(r.e.o.idleTimeout)*time.Second)
	return c, nil
}

func caseHuge(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	before := r.snap(x)
	res := attack.RunHuge(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.HTTP), attack.HugeCorpus(), 50, 10)
	ok := true
	for _, h := range res {
		rowOK := h.Errors == 0
		for s := range h.Statuses {
			if s >= 500 || h.Name != "header 8 KiB" && s/100 == 2 || h.Name == "header 8 KiB" && s != 200 {
				rowOK = false
			}
		}
		ok = ok && rowOK
		c.Rows = append(c.Rows, map[string]any{"name": h.Name, "ok": rowOK, "statuses": h.Statuses, "errors": h.Errors})
	}
	after := attack.RSSKiB(x.pid())
	flat := after <= before.rss*12/10+4096
	r.memFigures(ctx, c, x, before, 0, time.Second)
	c.add("RSS flat (≤ 1.2× + 4 MiB)", flat)
	c.verdict(ok && flat)
	return c, nil
}

func caseUDPFlood(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	if n := r.e.o.udpNoFile; n > 0 {
		lim := unix.Rlimit{Cur: uint64(n), Max: uint64(n)}
		if err := unix.Prlimit(x.pid(), unix.RLIMIT_NOFILE, &lim, nil); err != nil {
			return nil, fmt.Errorf("prlimit: %w", err)
		}
		c.note("open-file limit set to %d for this case (the proxy is restarted after it)", n)
	}
	probe, err := adminProbe(ctx, x)
	if err != nil {
		return nil, err
	}
	before := r.snap(x)
	window := r.window() + 2500*time.Millisecond
	var tcp, admin attack.Latency
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tcp = attack.Steady(ctx, 50, window, 64, attack.TCPProbe(fmt.Sprintf("127.0.0.1:%d", x.l.TCP), 2*time.Second))
	}()
	go func() { defer wg.Done(); admin = attack.Steady(ctx, 10, window, 16, probe) }()
	time.Sleep(500 * time.Millisecond)
	flood := attack.UDPFlood(ctx, fmt.Sprintf("127.0.0.1:%d", x.l.UDP), r.e.o.udpSources, 2, 64, 8, r.window())
	peak := r.snap(x)
	wg.Wait()
	c.add("sources", flood.Sources)
	c.add("datagrams sent", flood.Sent)
	c.add("flood seconds", flood.Duration)
	c.add("descriptors at the end of the flood", peak.fds)
	latFigures(c, "TCP probe", tcp)
	latFigures(c, "admin API probe", admin)
	r.memFigures(ctx, c, x, before, peak.rss, time.Second)
	c.verdict(tcp.Errors == 0 && admin.Errors == 0 && tcp.Count > 0 && admin.Count > 0)
	return c, nil
}

// adminProbe creates an API key and returns a probe that GETs
// /api/v1/status with it on a new connection each time.
func adminProbe(ctx context.Context, x *proxy) (func(context.Context) error, error) {
	body, status, err := x.api.Call(ctx, http.MethodPost, "/api/v1/api-keys", `{"description":"reliability probe"}`)
	if err != nil || status/100 != 2 {
		return nil, fmt.Errorf("API key: status %d %w", status, err)
	}
	var key struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &key); err != nil {
		return nil, fmt.Errorf("API key: %w", err)
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test tool
	url := "https://" + x.fulcrum.AdminAddr + "/api/v1/status"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key.Secret)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status: %d", resp.StatusCode)
		}
		return nil
	}, nil
}

// crashDoc is the configuration of crash run i: 200 disabled layer-4
// services whose nicknames carry i.
func crashDoc(i, echoPort int) string {
	var vss []string
	for j := range 200 {
		vss = append(vss, fmt.Sprintf(`{"nickname":"crash-%d-%d","address":"127.0.0.1","port":%d,"enabled":false,"type":"gen","realServers":[{"address":"127.0.0.1","port":%d}]}`,
			i, j, 40000+j, echoPort))
	}
	return `{"virtualServices":[` + strings.Join(vss, ",") + `]}`
}

// crashMarker reads the configuration back and returns the run whose
// document it is, or -1 (and why) when it is neither a whole document
// nor the empty start.
func crashMarker(body []byte) (int, string) {
	var cfg struct {
		VirtualServices []struct {
			Nickname string `json:"nickname"`
		} `json:"virtualServices"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return -1, "unreadable: " + err.Error()
	}
	if len(cfg.VirtualServices) == 0 {
		return 0, ""
	}
	run := -1
	for _, vs := range cfg.VirtualServices {
		var i, j int
		if _, err := fmt.Sscanf(vs.Nickname, "crash-%d-%d", &i, &j); err != nil {
			return -1, "foreign service " + vs.Nickname
		}
		if run >= 0 && i != run {
			return -1, fmt.Sprintf("services of runs %d and %d", run, i)
		}
		run = i
	}
	if len(cfg.VirtualServices) != 200 {
		return -1, fmt.Sprintf("%d services, not 200", len(cfg.VirtualServices))
	}
	return run, ""
}

func caseCrash(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	dir := r.e.tmp + "/crash"
	start := func() (*crashProc, error) { return startCrashProc(ctx, r.e.fulcrum, dir, r.e.port(98)) }
	p, err := start()
	if err != nil {
		return nil, err
	}
	defer func() { p.stop() }()
	// how long one write takes, to aim the kills inside it
	t0 := time.Now()
	if err := p.put(ctx, crashDoc(1, r.e.port(6))); err != nil {
		return nil, err
	}
	writeTime := time.Since(t0)
	prev := 1
	var old, fresh, other, startFail int
	var restarts []time.Duration
	for i := 2; i < 2+r.e.o.crashRuns && ctx.Err() == nil; i++ {
		done := make(chan error, 1)
		go func() { done <- p.put(ctx, crashDoc(i, r.e.port(6))) }()
		time.Sleep(time.Duration(rand.Int64N(int64(writeTime*3/2) + 1)))
		p.kill9()
		<-done
		t := time.Now()
		p, err = start()
		if err != nil {
			startFail++
			c.note("run %d: restart failed: %v", i, err)
			if p, err = start(); err != nil {
				return c, fmt.Errorf("restart after run %d: %w", i, err)
			}
		}
		restarts = append(restarts, time.Since(t))
		body, err := p.api.Get(ctx, "/api/v1/config")
		if err != nil {
			other++
			c.note("run %d: reading the configuration: %v", i, err)
			continue
		}
		got, why := crashMarker(body)
		switch got {
		case prev:
			old++
		case i:
			fresh++
			prev = i
		default:
			other++
			c.note("run %d: the configuration is neither run %d's nor run %d's: %s", i, prev, i, why)
		}
	}
	sort.Slice(restarts, func(i, j int) bool { return restarts[i] < restarts[j] })
	c.add("kills", old+fresh+other)
	c.add("one write, ms", attack.Ms(writeTime))
	c.add("old configuration after restart", old)
	c.add("new configuration after restart", fresh)
	c.add("neither", other)
	c.add("restarts that failed", startFail)
	if len(restarts) > 0 {
		c.add("restart p50 s", attack.Percentile(restarts, 50).Seconds())
	}
	c.verdict(other == 0 && startFail == 0)
	return c, nil
}
