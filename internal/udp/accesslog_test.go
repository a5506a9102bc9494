package udp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
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
	w := accesslog.New(accesslog.Options{Logger: quiet})
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

// ask sends msg once and waits up to 5 s for the answer.
func ask(t *testing.T, c *net.UDPConn, vip netip.AddrPort, msg string) string {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), vip); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no answer to %q: %v", msg, err)
	}
	return string(buf[:n])
}

func TestAccessLogPerSession(t *testing.T) {
	w, lines := startLog(t)
	a := startEcho(t, "127.0.0.61", "a")
	srv := backend.NewServer(backend.Key{VS: 4, Address: "127.0.0.61", Port: a.port}, backend.Settings{ID: 9, Weight: 1, Enabled: true})
	f := startFront(t, "127.0.0.60", Options{}, ServiceConfig{ID: 4, Name: "t", VSName: "dns", Picker: picker(t, srv),
		IdleTimeout: 300 * time.Millisecond, AccessLog: w})
	off := backend.NewServer(backend.Key{VS: 5, Address: "127.0.0.61", Port: a.port}, backend.Settings{ID: 10, Weight: 1, Enabled: false})
	fOff := startFront(t, "127.0.0.62", Options{}, ServiceConfig{ID: 5, Name: "off", VSName: "off", Picker: picker(t, off), AccessLog: w})
	fKept := startFront(t, "127.0.0.63", Options{}, ServiceConfig{ID: 6, Name: "kept", VSName: "kept", Picker: picker(t, srv), AccessLog: w})

	const n = 10
	type counts struct{ in, out int64 }
	want := map[string]counts{}
	for i := range n {
		c := phone(t)
		var cn counts
		for j := range i + 1 {
			msg := fmt.Sprintf("c%d-m%d", i, j)
			r := ask(t, c, f.vip, msg)
			if r != "a "+msg {
				t.Fatalf("answer %q to %q", r, msg)
			}
			cn.in += int64(len(msg))
			cn.out += int64(len(r))
		}
		want[c.LocalAddr().String()] = cn
	}
	// A client of a service without an enabled real server, and one whose
	// session the service's removal closes.
	cOff := phone(t)
	if _, err := cOff.WriteToUDPAddrPort([]byte("x"), fOff.vip); err != nil {
		t.Fatal(err)
	}
	cKept := phone(t)
	if r := ask(t, cKept, fKept.vip, "hold"); r != "a hold" {
		t.Fatalf("answer %q", r)
	}
	eventually(t, "the no-server line", func() bool { return w.Stats().Lines >= 1 })
	if got := fKept.proxy.CloseService(6); got != 1 {
		t.Fatalf("CloseService closed %d sessions, want 1", got)
	}
	eventually(t, "every session logged (idle expiry)", func() bool { return w.Stats().Lines == n+2 })

	got := lines()
	if len(got) != n+2 {
		t.Fatalf("%d lines, want %d", len(got), n+2)
	}
	for _, l := range got {
		if l.Kind != "udp" || l.Time.IsZero() {
			t.Errorf("bad line %+v", l)
		}
		switch l.VSName {
		case "off":
			if l.Client != cOff.LocalAddr().String() || l.Frontend != fOff.vip.String() || l.Server != "" || l.Termination != "no-server" || l.BytesIn != 1 {
				t.Errorf("no-server line %+v", l)
			}
			continue
		case "kept":
			if l.Client != cKept.LocalAddr().String() || l.Server != a.Addr() || l.Termination != "closed" || l.BytesIn != 4 || l.BytesOut != 6 {
				t.Errorf("closed line %+v", l)
			}
			continue
		}
		cn, ok := want[l.Client]
		if !ok {
			t.Errorf("line of an unknown client: %+v", l)
			continue
		}
		delete(want, l.Client)
		if l.VS != 4 || l.VSName != "dns" || l.Frontend != f.vip.String() || l.Server != a.Addr() || l.ServerID != 9 ||
			l.BytesIn != cn.in || l.BytesOut != cn.out || l.Termination != "idle-timeout" || l.DurationMs < 300 {
			t.Errorf("line %+v, want vs 4 dns from %s to %s id 9, %d bytes in, %d out, idle-timeout after >= 300 ms", l, f.vip, a.Addr(), cn.in, cn.out)
		}
	}
	if len(want) != 0 {
		t.Errorf("sessions not logged: %v", want)
	}
}
