package balance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// agentConcurrency bounds the agents read at the same time by one poller.
const agentConcurrency = 8

// maxAgentReply bounds how much of an agent's answer is read.
const maxAgentReply = 512

// agentPoller reads the load agents of one adaptive Picker's servers every
// interval and records the answers in each server's backend.Metrics
// (SetLoad, or ClearLoad when an agent cannot be read or answers nonsense).
// It runs one goroutine, plus at most agentConcurrency short-lived ones
// during a round, all of which stop returns after.
type agentPoller struct {
	c      *core
	cfg    Adaptive
	log    *slog.Logger
	client *http.Client
	tr     *http.Transport
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	failed []bool // per server: last read failed (logged once per change)

	rounds atomic.Int64 // completed rounds, for tests and benchmarks
}

func startPoller(ctx context.Context, c *core, cfg Adaptive, log *slog.Logger) *agentPoller {
	ctx, cancel := context.WithCancel(ctx)
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, MaxResponseHeaderBytes: 4096}
	timeout := min(cfg.Interval, 5*time.Second)
	a := &agentPoller{
		c: c, cfg: cfg, log: log, tr: tr, cancel: cancel, done: make(chan struct{}),
		client: &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		failed: make([]bool, len(c.es)),
	}
	go a.run(ctx)
	return a
}

// stop ends the poller and waits for it; it is safe to call more than once.
func (a *agentPoller) stop() {
	a.cancel()
	<-a.done
	a.tr.CloseIdleConnections()
}

func (a *agentPoller) run(ctx context.Context) {
	defer close(a.done)
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.round(ctx)
		a.rounds.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round reads every agent once.
func (a *agentPoller) round(ctx context.Context) {
	sem := make(chan struct{}, agentConcurrency)
	var wg sync.WaitGroup
	for i := range a.c.es {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a.poll(ctx, i)
		}()
	}
	wg.Wait()
}

// poll reads server i's agent.
func (a *agentPoller) poll(ctx context.Context, i int) {
	e := &a.c.es[i]
	k := e.srv.Key()
	port := a.cfg.Port
	if port == 0 {
		port = k.Port
	}
	u := "http://" + net.JoinHostPort(k.Address, strconv.Itoa(port)) + a.cfg.URL
	load, err := a.read(ctx, u)
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	was := a.failed[i]
	a.failed[i] = err != nil
	a.mu.Unlock()
	if err != nil {
		e.m.ClearLoad()
		if !was {
			a.log.Warn("adaptive: cannot read agent", "server", k.String(), "url", u, "err", err)
		}
		return
	}
	if load > 100 {
		a.log.Warn("adaptive: server reports overload", "server", k.String(), "load", load)
	}
	if was {
		a.log.Info("adaptive: agent answers again", "server", k.String(), "load", load)
	}
	e.m.SetLoad(load, a.c.now())
}

// read fetches and parses one agent's answer.
func (a *agentPoller) read(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentReply))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("agent answered %s", resp.Status)
	}
	return ParseLoad(body)
}

// MaxAgentLoad is the largest load ParseLoad accepts. Agents may report a
// little above 100 (LoadMaster logs 101 and 102 as overload); adaptive
// treats anything above 100 as 100.
const MaxAgentLoad = 1000

// ParseLoad parses an adaptive agent's answer: a whole number of percent,
// 0 (idle) to 100 (overloaded), on the first line, optionally followed by
// "%", with surrounding blanks. It accepts up to MaxAgentLoad.
func ParseLoad(b []byte) (int, error) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSpace(b)
	b = bytes.TrimSuffix(b, []byte("%"))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, errors.New("agent reply is empty")
	}
	if len(b) > 4 {
		return 0, fmt.Errorf("agent reply %q is not a load 0-%d", truncate(b), MaxAgentLoad)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("agent reply %q is not a load 0-%d", truncate(b), MaxAgentLoad)
		}
		n = n*10 + int(c-'0')
	}
	if n > MaxAgentLoad {
		return 0, fmt.Errorf("agent reply %d is above %d", n, MaxAgentLoad)
	}
	return n, nil
}

func truncate(b []byte) string {
	if len(b) > 16 {
		return string(b[:16]) + "…"
	}
	return string(b)
}
