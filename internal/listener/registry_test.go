package listener

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// freeKey returns the key of a currently free port on addr.
func freeKey(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return Key("tcp", ap)
}

func addrOf(k string) string { return k[len("tcp/"):] }

// tagger answers every connection with one byte, its tag, and closes it.
func tagger(tag byte) Handler {
	return HandlerFunc(func(c net.Conn) {
		go func() {
			defer c.Close()
			_, _ = c.Write([]byte{tag})
		}()
	})
}

// ask dials k and returns the tag it answers with.
func ask(t *testing.T, k string) (byte, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addrOf(k), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, err
	}
	return b[0], nil
}

func mustTag(t *testing.T, k string, want byte) {
	t.Helper()
	got, err := ask(t, k)
	if err != nil || got != want {
		t.Fatalf("%s answered %q, %v; want %q", k, got, err, want)
	}
}

func TestReconcile(t *testing.T) {
	r := New(nil)
	defer r.Close()
	a, b := freeKey(t, "127.0.0.1"), freeKey(t, "127.0.0.2")

	if err := r.Reconcile(map[string]Handler{a: tagger('a')}); err != nil {
		t.Fatal(err)
	}
	mustTag(t, a, 'a')
	lnA := r.Listener(a)

	// Add b, re-route a: a keeps its socket, answers with the new handler.
	if err := r.Reconcile(map[string]Handler{a: tagger('A'), b: tagger('b')}); err != nil {
		t.Fatal(err)
	}
	if r.Listener(a) != lnA {
		t.Error("a's socket was replaced by a reload that kept it")
	}
	mustTag(t, a, 'A')
	mustTag(t, b, 'b')
	if got := r.Keys(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Keys() = %v", got)
	}

	// Remove a: it stops accepting at once.
	if err := r.Reconcile(map[string]Handler{b: tagger('b')}); err != nil {
		t.Fatal(err)
	}
	if _, err := ask(t, a); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("removed socket: dial err = %v, want connection refused", err)
	}
	if r.Addr(a) != nil {
		t.Error("Addr of a removed socket is not nil")
	}
	mustTag(t, b, 'b')
}

func TestReconcileFailureChangesNothing(t *testing.T) {
	r := New(nil)
	defer r.Close()
	kept, fresh := freeKey(t, "127.0.0.1"), freeKey(t, "127.0.0.3")
	foreign, err := net.Listen("tcp", "127.0.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	busy := Key("tcp", netip.MustParseAddrPort(foreign.Addr().String()))

	if err := r.Reconcile(map[string]Handler{kept: tagger('k')}); err != nil {
		t.Fatal(err)
	}
	err = r.Reconcile(map[string]Handler{kept: tagger('X'), fresh: tagger('f'), busy: tagger('b')})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Key != busy || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Reconcile with a busy port: err = %v, want OpenError for %s with EADDRINUSE", err, busy)
	}
	if want := busy + ": bind: address already in use"; err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	// Nothing changed: kept routes as before, fresh was closed again.
	mustTag(t, kept, 'k')
	if got := r.Keys(); len(got) != 1 || got[0] != kept {
		t.Errorf("Keys() after failure = %v, want [%s]", got, kept)
	}
	ln, err := net.Listen("tcp", addrOf(fresh))
	if err != nil {
		t.Fatalf("socket opened by the failed reload is still bound: %v", err)
	}
	ln.Close()
}

func TestAcceptedConnectionsOutliveTheirSocket(t *testing.T) {
	r := New(nil)
	k := freeKey(t, "127.0.0.1")
	accepted := make(chan net.Conn, 1)
	if err := r.Reconcile(map[string]Handler{k: HandlerFunc(func(c net.Conn) { accepted <- c })}); err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("tcp", addrOf(k))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	defer server.Close()
	if err := r.Reconcile(map[string]Handler{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The accepted connection still carries bytes both ways.
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if err := r.Reconcile(map[string]Handler{k: tagger('x')}); err == nil {
		t.Error("Reconcile after Close succeeded")
	}
}

func TestReconcileRejectsBadInput(t *testing.T) {
	r := New(nil)
	defer r.Close()
	for _, tc := range []struct {
		name string
		in   map[string]Handler
	}{
		{"nil handler", map[string]Handler{freeKey(t, "127.0.0.1"): nil}},
		{"udp", map[string]Handler{"udp/127.0.0.1:5353": tagger('u')}},
		{"no network", map[string]Handler{"127.0.0.1:80": tagger('u')}},
		{"bad address", map[string]Handler{"tcp/localhost:80": tagger('u')}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.Reconcile(tc.in); err == nil {
				t.Error("Reconcile succeeded")
			}
			if len(r.Keys()) != 0 {
				t.Errorf("sockets open after failure: %v", r.Keys())
			}
		})
	}
}
