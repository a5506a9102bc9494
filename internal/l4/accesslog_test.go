package l4

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// logLine is an access log line in the JSON format.
type logLine struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	VS          int       `json:"vs"`
	VSName      string    `json:"vsName"`
	Client      string    `json:"client"`
	Frontend    string    `json:"frontend"`
	Server      string    `json:"server"`
	ServerID    int       `json:"serverId"`
	BytesIn     int64     `json:"bytesIn"`
	BytesOut    int64     `json:"bytesOut"`
	DurationMs  float64   `json:"durationMs"`
	Termination string    `json:"termination"`
}

// startLog returns a real access log Writer to a JSON file, and a func
// that closes it and returns its lines.
func startLog(t *testing.T) (*accesslog.Writer, func() []logLine) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	w := accesslog.New(accesslog.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = w.Close() })
	if err := w.Configure(config.AccessLog{File: path, Format: "json"}, nil); err != nil {
		t.Fatal(err)
	}
	return w, func() []logLine {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []logLine
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l logLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%v: %s", err, sc.Bytes())
			}
			out = append(out, l)
		}
		return out
	}
}

func TestAccessLogPerConnection(t *testing.T) {
	w, lines := startLog(t)
	back := serve(t, echo)
	srv := backend.NewServer(backend.Key{VS: 7, Address: "127.0.0.1", Port: back.Port()}, backend.Settings{ID: 5, Weight: 1, Enabled: true})
	picker, err := balance.New("rr", []*backend.Server{srv})
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { p.Close() })
	f := startFrontCfg(t, p, ServiceConfig{ID: 7, Name: "test", VSName: "echo", Picker: picker, AccessLog: w})

	// A real server whose port refuses, and one that is disabled.
	deadPort := testkit.FreePort(t, "127.0.0.1")
	dead := backend.NewServer(backend.Key{VS: 8, Address: "127.0.0.1", Port: deadPort}, backend.Settings{ID: 6, Weight: 1, Enabled: true})
	dp, _ := balance.New("rr", []*backend.Server{dead})
	fDead := startFrontCfg(t, p, ServiceConfig{ID: 8, Name: "dead", VSName: "dead", Picker: dp, AccessLog: w})
	off := backend.NewServer(backend.Key{VS: 9, Address: "127.0.0.1", Port: back.Port()}, backend.Settings{ID: 7, Weight: 1, Enabled: false})
	op, _ := balance.New("rr", []*backend.Server{off})
	fOff := startFrontCfg(t, p, ServiceConfig{ID: 9, Name: "off", VSName: "off", Picker: op, AccessLog: w})
	// An idle timeout of 200 ms.
	fIdle := startFrontCfg(t, p, ServiceConfig{ID: 10, Name: "idle", VSName: "idle", Picker: picker, IdleTimeout: 200 * time.Millisecond, AccessLog: w})

	const n = 20
	want := map[string]int64{} // client address → bytes sent
	for i := range n {
		c := f.dial(t)
		msg := strings.Repeat("x", 10*(i+1))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != msg {
			t.Fatalf("echo: %q, %v", got, err)
		}
		want[c.LocalAddr().String()] = int64(len(msg))
		c.Close()
	}
	clientOf := map[string]string{}
	for _, fr := range []*front{fDead, fOff, fIdle} {
		c := fr.dial(t)
		clientOf[fr.addr] = c.LocalAddr().String()
		_, _ = io.ReadAll(c) // closed by the proxy: no server, or idle
		c.Close()
	}
	eventually(t, "every connection logged", func() bool { return w.Stats().Lines == n+3 })

	got := lines()
	if len(got) != n+3 {
		t.Fatalf("%d lines, want %d", len(got), n+3)
	}
	byFront := map[string]logLine{}
	for _, l := range got {
		if l.Kind != "tcp" || l.Time.IsZero() || l.DurationMs < 0 {
			t.Errorf("bad line %+v", l)
		}
		if l.Frontend != f.addr {
			byFront[l.Frontend] = l
			continue
		}
		sent, ok := want[l.Client]
		if !ok {
			t.Errorf("line of an unknown client: %+v", l)
			continue
		}
		delete(want, l.Client)
		if l.VS != 7 || l.VSName != "echo" || l.Server != back.Addr() || l.ServerID != 5 || l.BytesIn != sent || l.BytesOut != sent || l.Termination != "" {
			t.Errorf("line %+v, want vs 7 echo, server %s id 5, %d bytes each way, no termination", l, back.Addr(), sent)
		}
	}
	if len(want) != 0 {
		t.Errorf("connections not logged: %v", want)
	}
	for _, c := range []struct {
		fr     *front
		server string
		term   string
	}{
		{fDead, "", "connect-failed"},
		{fOff, "", "no-server"},
		{fIdle, back.Addr(), "idle-timeout"},
	} {
		l, ok := byFront[c.fr.addr]
		if !ok {
			t.Errorf("no line for %s", c.fr.addr)
			continue
		}
		if l.Client != clientOf[c.fr.addr] || l.Server != c.server || l.Termination != c.term {
			t.Errorf("line %+v, want client %s, server %q, termination %s", l, clientOf[c.fr.addr], c.server, c.term)
		}
	}
	if l := byFront[fIdle.addr]; l.DurationMs < 200 {
		t.Errorf("idle-timeout connection lasted %v ms, less than its idle timeout", l.DurationMs)
	}
}

// TestAccessLogOff: a service without a logger logs nothing (and its
// connections do not touch the writer).
func TestAccessLogOff(t *testing.T) {
	w, lines := startLog(t)
	back := serve(t, echo)
	f := startFront(t, "rr", 0, rs(back.Port()))
	c := f.dial(t)
	_ = c.CloseWrite()
	_, _ = io.ReadAll(c)
	c.Close()
	eventually(t, "connection ended", func() bool { return f.proxy.Active() == 0 })
	w.Log(&accesslog.Entry{Kind: accesslog.KindTCP, VSName: "marker", Client: c.LocalAddr().(*net.TCPAddr).AddrPort()})
	if got := lines(); len(got) != 1 || got[0].VSName != "marker" {
		t.Fatalf("lines %+v, want only the marker", got)
	}
}
