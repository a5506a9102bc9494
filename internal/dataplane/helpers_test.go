package dataplane

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// tagServer is a real server started by a test: for every line it reads it
// answers "<tag> <line>"; it closes at EOF.
type tagServer struct {
	tag  string
	port int
}

func startTag(t testing.TB, tag string) *tagServer {
	t.Helper()
	return &tagServer{tag: tag, port: testkit.StartTCP(t, "127.0.0.1", tagLines(tag)).Port()}
}

// tagLines answers every line with "<tag> <line>".
func tagLines(tag string) func(c net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(c, "%s %s", tag, line); err != nil {
				return
			}
		}
	}
}

func rsOf(id int, s *tagServer, weight int) config.RealServer {
	return config.RealServer{ID: id, Address: "127.0.0.1", Port: s.port, Weight: weight}
}

func vsOf(id int, addr string, port int, rss ...config.RealServer) config.VirtualService {
	return config.VirtualService{ID: id, Address: addr, Port: port, RealServers: rss}
}

// conf builds a validated configuration of vss.
func conf(t testing.TB, vss ...config.VirtualService) *config.Config {
	t.Helper()
	c := config.Default()
	c.VirtualServices = vss
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration invalid: %v", err)
	}
	return c
}

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e := New(Options{Logger: quiet})
	t.Cleanup(func() { e.Close() })
	return e
}

func mustApply(t testing.TB, e *Engine, c *config.Config) {
	t.Helper()
	if err := e.Apply(c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// client is a kept connection to a virtual service.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{c: c, r: bufio.NewReader(c)}, nil
}

func mustDial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.c.Close() })
	return c
}

// ask sends msg and returns the tag of the server that answered.
func (c *client) ask(msg string) (string, error) {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	tag, rest, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if !ok || rest != msg {
		return "", fmt.Errorf("bad answer %q", line)
	}
	return tag, nil
}

// askOnce asks over a new connection and closes it.
func askOnce(addr string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.c.Close()
	return c.ask("hello")
}

func hostPort(addr string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)).String()
}

// closed reports whether the server side closed c within 10 s.
func (c *client) closed() bool {
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func mustAP(t testing.TB, addr string, port int) netip.AddrPort {
	t.Helper()
	return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
}
