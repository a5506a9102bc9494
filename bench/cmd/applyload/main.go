// Command applyload measures configuration changes on a large Fulcrum:
// 1,000 layer-4 virtual services with 10 real servers each (by default),
// 100 changes made one after another through the REST API while clients
// load a sample of the services, and how long each change takes to be in
// force as seen from outside.
//
//	applyload -fulcrum /tmp/fulcrum [-vs 1000 -rs 10 -changes 100 -gap 0 -duration-limit 120s] [-v]
//
// It starts `fulcrum serve` in a temporary data directory and the real
// servers itself (Go TCP servers on 127.0.0.1 that answer each line with
// their own name), applies the configuration with `fulcrum apply -f`,
// waits until every service proxies a request, then runs the load and
// the changes. The changes cycle through: a real server's weight, a real
// server disabled, the same enabled again, a real server added, a virtual
// service added, the same deleted. Each is timed from sending the API call
// to its answer (api_ms) and to the change being observed from outside
// (effect_ms: the end of the first observation that saw it, an upper
// bound; effect_low_ms: that observation's start, a lower bound):
//
//   - a disabled real server: a round of new connections to the service
//     (round robin, no other traffic on it) no longer reaches it;
//   - an enabled or added real server: a round reaches it;
//   - an added virtual service: a new connection to it is proxied;
//   - a deleted one: its port refuses connections.
//
// A round is 10 (11) concurrent new connections; observe_round_ms_p50 is
// its duration. A weight is not observable on a single round, so weight
// changes count in api_ms only. apply_ms (and its _p50 and _p99, the
// same single figure) is the time `fulcrum apply -f` took for the whole
// configuration. The load (keep-alive clients and new-connection clients
// on services no change touches) counts requests, failed requests (any
// error or wrong answer) and requests per second while the changes run.
// The changes go back to back unless -gap spaces them; -v logs each one.
// It prints one JSON object. Everything it started is stopped at the end;
// the whole run is bounded by -duration-limit.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/fulcrumproc"
)

// result is the JSON printed at the end.
type result struct {
	VS             int     `json:"vs"`
	RSPerVS        int     `json:"rs_per_vs"`
	Changes        int     `json:"changes"`
	ApplyMs        float64 `json:"apply_ms"`
	ApplyMsP50     float64 `json:"apply_ms_p50"`
	ApplyMsP99     float64 `json:"apply_ms_p99"`
	APIMsP50       float64 `json:"api_ms_p50"`
	APIMsP99       float64 `json:"api_ms_p99"`
	EffectMsP50    float64 `json:"effect_ms_p50"`
	EffectMsP99    float64 `json:"effect_ms_p99"`
	EffectLowP50   float64 `json:"effect_low_ms_p50"`
	EffectLowP99   float64 `json:"effect_low_ms_p99"`
	EffectObserved int     `json:"effect_observed"`
	RoundMsP50     float64 `json:"observe_round_ms_p50"`
	ChangeErrors   int     `json:"change_errors"`
	Requests       int64   `json:"requests"`
	FailedRequests int64   `json:"failed_requests"`
	LoadRPS        float64 `json:"load_requests_per_s"`
	RSSMiB         float64 `json:"rss_mib"`
	Aborted        string  `json:"aborted,omitempty"`
}

const password = "applyload passphrase"

// verbose logs every change (-v).
var verbose bool

func main() {
	bin := flag.String("fulcrum", "", "the fulcrum binary (required)")
	nvs := flag.Int("vs", 1000, "virtual services")
	nrs := flag.Int("rs", 10, "real servers per virtual service (one backend each)")
	changes := flag.Int("changes", 100, "changes to make through the API")
	limit := flag.Duration("duration-limit", 120*time.Second, "the whole run is stopped after this long")
	basePort := flag.Int("base-port", 30000, "first port of the virtual services (vs+changes ports are used)")
	adminPort := flag.Int("admin-port", 29443, "port of Fulcrum's admin plane")
	gap := flag.Duration("gap", 0, "pause between two changes (0: back to back)")
	flag.BoolVar(&verbose, "v", false, "log every change with its times on standard error")
	flag.Parse()
	if *bin == "" || *nvs < 20 || *nrs < 2 || *nrs > 50 || *changes < 1 {
		log.Fatal("applyload: -fulcrum is required; -vs at least 20, -rs 2..50, -changes at least 1")
	}
	if *basePort+*nvs+*changes > 65000 {
		log.Fatal("applyload: -base-port too high for -vs and -changes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	res, err := run(ctx, *bin, *nvs, *nrs, *changes, *basePort, *adminPort, *gap)
	if err != nil {
		log.Printf("applyload: %v", err)
		if res == nil {
			os.Exit(1)
		}
		res.Aborted = err.Error()
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// run does the whole measurement; on an error after the load started it
// returns what was measured with the error.
func run(ctx context.Context, bin string, nvs, nrs, nchanges, basePort, adminPort int, gap time.Duration) (*result, error) {
	dir, err := os.MkdirTemp("", "applyload-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// One backend per real server position, and one more for added ones.
	backends := make([]*backend, nrs+1)
	for i := range backends {
		if backends[i], err = startBackend(i); err != nil {
			return nil, err
		}
		defer backends[i].close()
	}

	f, err := fulcrumproc.Start(ctx, bin, dir, adminPort, password)
	if err != nil {
		return nil, err
	}
	defer f.Stop()

	// The configuration: nvs services, round robin over the first nrs
	// backends.
	var doc strings.Builder
	doc.WriteString("virtualServices:\n")
	for i := range nvs {
		fmt.Fprintf(&doc, "- {address: 127.0.0.1, port: %d, protocol: tcp, schedule: rr, realServers: [", basePort+i)
		for j := range nrs {
			if j > 0 {
				doc.WriteString(", ")
			}
			fmt.Fprintf(&doc, "{address: 127.0.0.1, port: %d}", backends[j].port)
		}
		doc.WriteString("]}\n")
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(doc.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write configuration: %w", err)
	}
	start := time.Now()
	if err := f.Apply(ctx, file); err != nil {
		return nil, err
	}
	applyMs := ms(time.Since(start))
	res := &result{VS: nvs, RSPerVS: nrs, Changes: nchanges, ApplyMs: applyMs, ApplyMsP50: applyMs, ApplyMsP99: applyMs}

	// Every service proxies a request.
	for i := range nvs {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort+i))
		if err := waitProxied(ctx, addr); err != nil {
			return nil, fmt.Errorf("service %s never proxied a request: %w", addr, err)
		}
	}

	api, err := newAPIClient(ctx, f)
	if err != nil {
		return nil, err
	}
	ids, err := api.serviceIDs(ctx)
	if err != nil {
		return nil, err
	}

	// The load: services 0, 10, 20, ... (at most 50 of them); the changes
	// touch the other ones.
	var loadAddrs []string
	loaded := map[int]bool{}
	for i := 0; i < nvs && len(loadAddrs) < 50; i += 10 {
		loadAddrs = append(loadAddrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort+i)))
		loaded[i] = true
	}
	var targets []int // service indexes the changes may touch
	for i := 1; i < nvs; i++ {
		if !loaded[i] {
			targets = append(targets, i)
		}
	}
	var requests, failed atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load(loadCtx, loadAddrs, w, w >= 4, &requests, &failed)
		}()
	}

	var apiTimes, effectTimes, effectLows []float64
	var runErr error
	addedPort := basePort + nvs
	var addedID int
	rsAdded := map[int]bool{}
	loadStart := time.Now()
	for n := range nchanges {
		if n > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if ctx.Err() != nil {
			runErr = fmt.Errorf("time limit reached after %d changes", n)
			break
		}
		vi := targets[(n/6*7)%len(targets)] // a different service for each cycle
		vsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort+vi))
		id := ids[basePort+vi]
		k := n / 6 % nrs // the real server position the cycle works on
		rsPath := fmt.Sprintf("/api/v1/virtual-services/%d/real-servers", id)
		var c change
		switch n % 6 {
		case 0:
			c = change{method: "PATCH", path: rsPath + "/" + strconv.Itoa(api.rsID(ctx, id, backends[k].port)), body: fmt.Sprintf(`{"weight": %d}`, 2000+n)}
		case 1:
			c = change{method: "PATCH", path: rsPath + "/" + strconv.Itoa(api.rsID(ctx, id, backends[k].port)), body: `{"enabled": false}`,
				observe: func(ctx context.Context) (bool, error) {
					seen, err := round(ctx, vsAddr, nrs)
					return err == nil && !seen[k], nil
				}}
		case 2:
			c = change{method: "PATCH", path: rsPath + "/" + strconv.Itoa(api.rsID(ctx, id, backends[k].port)), body: `{"enabled": true}`,
				observe: func(ctx context.Context) (bool, error) {
					seen, err := round(ctx, vsAddr, nrs)
					return err == nil && seen[k], nil
				}}
		case 3:
			if rsAdded[id] {
				c = change{method: "PATCH", path: rsPath + "/" + strconv.Itoa(api.rsID(ctx, id, backends[nrs].port)), body: fmt.Sprintf(`{"weight": %d}`, 3000+n)}
				break
			}
			rsAdded[id] = true
			c = change{method: "POST", path: rsPath, body: fmt.Sprintf(`{"address": "127.0.0.1", "port": %d}`, backends[nrs].port),
				observe: func(ctx context.Context) (bool, error) {
					seen, err := round(ctx, vsAddr, nrs+1)
					return err == nil && seen[nrs], nil
				}}
		case 4:
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(addedPort))
			c = change{method: "POST", path: "/api/v1/virtual-services",
				body: fmt.Sprintf(`{"address": "127.0.0.1", "port": %d, "protocol": "tcp", "schedule": "rr", "realServers": [{"address": "127.0.0.1", "port": %d}]}`, addedPort, backends[0].port),
				observe: func(ctx context.Context) (bool, error) {
					_, err := ask(ctx, addr)
					return err == nil, nil
				},
				created: &addedID}
		case 5:
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(addedPort))
			addedPort++
			c = change{method: "DELETE", path: fmt.Sprintf("/api/v1/virtual-services/%d", addedID),
				observe: func(ctx context.Context) (bool, error) {
					conn, err := net.DialTimeout("tcp", addr, time.Second)
					if err == nil {
						_ = conn.Close()
						return false, nil
					}
					return errors.Is(err, syscall.ECONNREFUSED), nil
				}}
		}
		apiMs, effectMs, effectLow, err := c.make(ctx, api)
		if err != nil {
			res.ChangeErrors++
			log.Printf("applyload: change %d (%s %s): %v", n, c.method, c.path, err)
			continue
		}
		if verbose {
			log.Printf("change %d: %s %s %s: api %.1f ms, effect %.1f ms", n, c.method, c.path, c.body, apiMs, effectMs)
		}
		apiTimes = append(apiTimes, apiMs)
		if effectMs >= 0 {
			effectTimes = append(effectTimes, effectMs)
			effectLows = append(effectLows, effectLow)
		}
	}
	stopLoad()
	wg.Wait()
	res.LoadRPS = math.Round(float64(requests.Load()) / time.Since(loadStart).Seconds())

	res.APIMsP50, res.APIMsP99 = percentile(apiTimes, 50), percentile(apiTimes, 99)
	res.EffectMsP50, res.EffectMsP99 = percentile(effectTimes, 50), percentile(effectTimes, 99)
	res.EffectLowP50, res.EffectLowP99 = percentile(effectLows, 50), percentile(effectLows, 99)
	res.EffectObserved = len(effectTimes)
	roundMu.Lock()
	res.RoundMsP50 = percentile(roundTimes, 50)
	roundMu.Unlock()
	res.Requests, res.FailedRequests = requests.Load(), failed.Load()
	res.RSSMiB = fulcrumproc.RSSMiB(f.Pid())
	if runErr == nil && ctx.Err() != nil {
		runErr = errors.New("time limit reached")
	}
	return res, runErr
}

// change is one API call, with an optional observation of its effect
// (true once in force) and where to put the ID of a created service.
type change struct {
	method, path, body string
	observe            func(context.Context) (bool, error)
	created            *int
}

// make sends the call while, from the same instant, polling the
// observation. It returns the API's answer time and, when there is an
// observation (else -1), bounds of the time the change took effect: the
// end of the first observation that saw it (effectMs) and its start
// (effectLow; 0 when it started before the call was sent).
func (c change) make(ctx context.Context, api *apiClient) (apiMs, effectMs, effectLow float64, err error) {
	start := time.Now()
	type seen struct{ low, high float64 }
	effect := make(chan seen, 1)
	obsCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if c.observe != nil {
		go func() {
			for obsCtx.Err() == nil {
				t := time.Now()
				if ok, _ := c.observe(obsCtx); ok {
					effect <- seen{ms(t.Sub(start)), ms(time.Since(start))}
					return
				}
				time.Sleep(200 * time.Microsecond)
			}
			effect <- seen{-2, -2}
		}()
	}
	body, status, err := api.Call(ctx, c.method, c.path, c.body)
	apiMs = ms(time.Since(start))
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("status %d: %s", status, fulcrumproc.LastLines(body, 3))
	}
	if err == nil && c.created != nil {
		var vs struct {
			ID int `json:"id"`
		}
		if err = json.Unmarshal(body, &vs); err == nil {
			*c.created = vs.ID
		}
	}
	if c.observe == nil {
		return apiMs, -1, -1, err
	}
	e := <-effect
	if err == nil && e.high < 0 {
		err = errors.New("effect not observed within 10 s")
	}
	return apiMs, e.high, e.low, err
}

// load runs one client until ctx ends: keep-alive (100 requests per
// connection) or a new connection per request, over addrs in turn.
func load(ctx context.Context, addrs []string, w int, newConn bool, requests, failed *atomic.Int64) {
	i := w
	for ctx.Err() == nil {
		addr := addrs[i%len(addrs)]
		i++
		if newConn {
			_, err := ask(ctx, addr)
			count(ctx, err, requests, failed)
			continue
		}
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			count(ctx, err, requests, failed)
			continue
		}
		r := bufio.NewReader(conn)
		for range 100 {
			if ctx.Err() != nil {
				break
			}
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			_, err := conn.Write([]byte("who\n"))
			if err == nil {
				_, err = readName(r)
			}
			count(ctx, err, requests, failed)
			if err != nil {
				break
			}
		}
		_ = conn.Close()
	}
}

// count records one request; one cut short by the end of the run is not
// counted.
func count(ctx context.Context, err error, requests, failed *atomic.Int64) {
	if err != nil && ctx.Err() != nil {
		return
	}
	requests.Add(1)
	if err != nil {
		failed.Add(1)
		log.Printf("applyload: failed request: %v", err)
	}
}

// ask makes one request on a new connection and returns the index of the
// backend that answered.
func ask(ctx context.Context, addr string) (int, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("who\n")); err != nil {
		return 0, err
	}
	return readName(bufio.NewReader(conn))
}

// readName reads a backend's answer "b<index>\n".
func readName(r *bufio.Reader) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, "b") {
		return 0, fmt.Errorf("unexpected answer %q", line)
	}
	return strconv.Atoi(strings.TrimSpace(line[1:]))
}

// roundTimes are the durations of the observation rounds, in ms.
var (
	roundMu    sync.Mutex
	roundTimes []float64
)

// round makes n concurrent requests on new connections and returns the
// backends that answered. An effect seen by a round is in force at the
// latest when the round ends and at the earliest when it starts, so
// effect_ms may exceed the true time by up to a round (reported as
// observe_round_ms_p50).
func round(ctx context.Context, addr string, n int) (map[int]bool, error) {
	start := time.Now()
	defer func() {
		roundMu.Lock()
		roundTimes = append(roundTimes, ms(time.Since(start)))
		roundMu.Unlock()
	}()
	// The n requests go out together: round robin hands n picks in a row
	// to n different real servers whatever their order, and the round
	// takes about as long as one request.
	type answer struct {
		b   int
		err error
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			b, err := ask(ctx, addr)
			answers <- answer{b, err}
		}()
	}
	seen := map[int]bool{}
	var err error
	for range n {
		a := <-answers
		if a.err != nil {
			err = a.err
			continue
		}
		seen[a.b] = true
	}
	return seen, err
}

// waitProxied waits until addr proxies a request (at most 30 s).
func waitProxied(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if _, err = ask(ctx, addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// backend is a real server: it answers every line with "b<index>\n".
type backend struct {
	ln   net.Listener
	port int
	name []byte
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   map[net.Conn]bool
}

func startBackend(i int) (*backend, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	b := &backend{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, name: []byte(fmt.Sprintf("b%d\n", i)), cs: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.cs[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.cs, c)
				b.mu.Unlock()
				_ = c.Close()
			}()
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadSlice('\n'); err != nil {
					return
				}
				if _, err := c.Write(b.name); err != nil {
					return
				}
			}
		}()
	}
}

func (b *backend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.cs {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// apiClient is the REST API client with the real server IDs it has
// learnt.
type apiClient struct {
	*fulcrumproc.Client
	mu sync.Mutex
	rs map[[2]int]int // (service ID, real server port) → real server ID
}

// newAPIClient returns a client of f's API that authenticates with an API
// key of its own.
func newAPIClient(ctx context.Context, f *fulcrumproc.Process) (*apiClient, error) {
	c, err := f.Client()
	if err != nil {
		return nil, err
	}
	if err := c.UseAPIKey(ctx, "applyload"); err != nil {
		return nil, err
	}
	return &apiClient{Client: c, rs: map[[2]int]int{}}, nil
}

// serviceIDs returns the IDs of the services by port.
func (a *apiClient) serviceIDs(ctx context.Context) (map[int]int, error) {
	body, err := a.Get(ctx, "/api/v1/config")
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	var cfg struct {
		VirtualServices []struct {
			ID          int `json:"id"`
			Port        int `json:"port"`
			RealServers []struct {
				ID   int `json:"id"`
				Port int `json:"port"`
			} `json:"realServers"`
		} `json:"virtualServices"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	ids := map[int]int{}
	for _, vs := range cfg.VirtualServices {
		ids[vs.Port] = vs.ID
		for _, rs := range vs.RealServers {
			a.rs[[2]int{vs.ID, rs.Port}] = rs.ID
		}
	}
	return ids, nil
}

// rsID returns the ID of the real server on port of service id, asking
// the API for services changed since serviceIDs.
func (a *apiClient) rsID(ctx context.Context, id, port int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rid, ok := a.rs[[2]int{id, port}]; ok {
		return rid
	}
	body, err := a.Get(ctx, fmt.Sprintf("/api/v1/virtual-services/%d/real-servers", id))
	if err != nil {
		return 0
	}
	var list struct {
		RealServers []struct {
			ID   int `json:"id"`
			Port int `json:"port"`
		} `json:"realServers"`
	}
	if json.Unmarshal(body, &list) != nil {
		return 0
	}
	for _, rs := range list.RealServers {
		a.rs[[2]int{id, rs.Port}] = rs.ID
	}
	return a.rs[[2]int{id, port}]
}

// percentile returns the p-th percentile (nearest rank) of xs, or 0.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return math.Round(s[max(i, 0)]*100) / 100
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
