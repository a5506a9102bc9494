package syslog

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// readOctetCounted reads RFC 6587 octet-counted frames from c.
func readOctetCounted(c net.Conn, out chan<- string) {
	r := bufio.NewReader(c)
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 || size > MaxStream {
			out <- "BAD FRAME " + n
			return
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		out <- string(b)
	}
}

func TestReconfigureKeepsQueueAndReconnects(t *testing.T) {
	ip := testkit.LoopbackAddr()
	port := testkit.FreePort(t, ip)
	var errs []string
	var mu sync.Mutex
	h := New(Options{Hostname: "h", OnError: func(host string, err error) {
		mu.Lock()
		errs = append(errs, host)
		mu.Unlock()
	}})
	defer h.Close()
	host := config.SyslogHost{Address: ip, Port: port, Protocol: "tcp", Severity: "info"}
	if err := h.Configure([]config.SyslogHost{host}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		h.Event(events.Event{Severity: events.Notice, Kind: events.KindConfigChange, Message: fmt.Sprintf("queued-%d", i)})
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		s := h.Stats()
		return len(s) == 1 && s[0].LastError != "" && !s[0].Connected
	}, "the connection error shown")
	// Same host, another severity: the queue is kept; notice no longer
	// passes.
	host.Severity = "warning"
	if err := h.Configure([]config.SyslogHost{host}); err != nil {
		t.Fatal(err)
	}
	h.Event(events.Event{Severity: events.Notice, Kind: events.KindRSUp, Message: "filtered"})
	h.Event(events.Event{Severity: events.Warning, Kind: events.KindCertExpiring, Message: "after"})

	ln := testkit.ListenAt(t, net.JoinHostPort(ip, strconv.Itoa(port)))
	got := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		readOctetCounted(c, got)
	}()
	var msgs []string
	deadline := time.After(20 * time.Second)
	for len(msgs) < 11 {
		select {
		case m := <-got:
			msgs = append(msgs, m)
		case <-deadline:
			t.Fatalf("received %d messages: %q", len(msgs), msgs)
		}
	}
	for i := range 10 {
		if !strings.HasSuffix(msgs[i], fmt.Sprintf(" queued-%d", i)) {
			t.Errorf("message %d: %q", i, msgs[i])
		}
	}
	if !strings.HasSuffix(msgs[10], " after") || !strings.Contains(msgs[10], "<132>1 ") {
		t.Errorf("last message %q", msgs[10])
	}
	// The sender counts a message after its write returns, which may be
	// after the receiver has it.
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		s := h.Stats()[0]
		return s.Sent == 11 && s.Dropped == 0 && s.Connected && s.LastError == "", fmt.Sprintf("stats %+v", s)
	}, "the sender's counters")
	mu.Lock()
	if len(errs) != 1 || errs[0] != "tcp://"+net.JoinHostPort(ip, strconv.Itoa(port)) {
		t.Errorf("OnError calls %q, want one for the host", errs)
	}
	mu.Unlock()
	h.Close()
	_ = ln.Close()
	wg.Wait()
}

func TestFullQueueCountsDrops(t *testing.T) {
	ip := testkit.LoopbackAddr()
	port := testkit.FreePort(t, ip) // nothing listens
	h := New(Options{})
	defer h.Close()
	if err := h.Configure([]config.SyslogHost{{Address: ip, Port: port, Protocol: "tcp", Severity: "debug"}}); err != nil {
		t.Fatal(err)
	}
	const n = QueueSize + 500
	for range n {
		h.Event(events.Event{Severity: events.Info, Kind: events.KindSystem, Message: "x"})
	}
	s := h.Stats()[0]
	// One message may be out of the queue, waiting for the connection.
	if s.Dropped < 499 || s.Dropped+int64(s.Queued) < n-1 || s.Sent != 0 {
		t.Errorf("stats %+v after %d events", s, n)
	}
	// Removing the host counts what it had queued as dropped.
	if err := h.Configure(nil); err != nil {
		t.Fatal(err)
	}
	if len(h.Stats()) != 0 {
		t.Errorf("stats of a removed host: %+v", h.Stats())
	}
}

func TestConfigureRefusesBadCA(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	err := h.Configure([]config.SyslogHost{
		{Address: "127.0.0.1", Port: 6514, Protocol: "tls", Severity: "info", CACert: "not pem"},
		{Address: "127.0.0.1", Port: 514, Protocol: "udp", Severity: "info"},
	})
	if err == nil || !strings.Contains(err.Error(), "options.logging.syslog[0].caCert") {
		t.Errorf("err = %v, want one naming options.logging.syslog[0].caCert", err)
	}
	if s := h.Stats(); len(s) != 1 || s[0].Host != "udp://127.0.0.1:514" {
		t.Errorf("the good host is configured: %+v", s)
	}
}

func TestUDPCutsLongMessages(t *testing.T) {
	ip := testkit.LoopbackAddr()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	h := New(Options{})
	defer h.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if err := h.Configure([]config.SyslogHost{{Address: ip, Port: port, Protocol: "udp", Severity: "info"}}); err != nil {
		t.Fatal(err)
	}
	h.Event(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: strings.Repeat("m", 5000),
		Fields: map[string]string{"reason": strings.Repeat(`"`, 3000)}})
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	if n > MaxUDP || !strings.Contains(msg, `[fulcrum@32473 reason="`+strings.Repeat(`\"`, 64)+`"] mmm`) {
		t.Errorf("datagram of %d bytes: %.200q…", n, msg)
	}
}
