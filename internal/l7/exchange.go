package l7

import (
	"context"
	"errors"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// This file is the attempt loop of a request, the same for HTTP/1.1 and
// HTTP/2 clients: pick a real server, send the request on a kept or new
// connection, retry elsewhere what may be retried, count and report what
// became of each attempt. The protocol's side (an exchanger) sends the
// request and relays the response, and answers the client as the loop's
// ending says.

// outcome of one attempt at a real server, as the protocol's roundTrip
// reports it.
type outcome int

const (
	done         outcome = iota // the exchange completed
	retry                       // failed before anything irreversible: try again
	failed                      // failed; the client gets an error if nothing was sent
	failedClient                // the client went away or sent garbage
	timedOut                    // the real server did not answer (or take the body) in time
)

func retryIf(ok bool) outcome {
	if ok {
		return retry
	}
	return failed
}

// ending is how the attempts of one request ended, which says what the
// protocol's side does next.
type ending uint8

const (
	// endRelayed: a response was relayed.
	endRelayed ending = iota
	// endAnswer: no real server answered; the client gets the error
	// answer of the status that goes with it (503 none available, 502
	// the servers tried failed, 504 one timed out), and its connection
	// may go on if its request was read whole.
	endAnswer
	// endFailed: the real server failed after the request went out and
	// it cannot be retried; the client gets a 502 if nothing of a
	// response reached it, and its connection (HTTP/1) ends.
	endFailed
	// endBroken: the exchange broke off (the client failed, or the
	// server after part of the response was sent): the client's
	// connection (HTTP/1) or stream (HTTP/2) ends without an answer.
	endBroken
	// endAborted: the client (HTTP/2 stream) or the proxy (closing)
	// gave up; nobody's failure. HTTP/1 answers as for endFailed.
	endAborted
)

// Failures of a real server that attempts report in their outcome
// (balance.Outcome.Err); a failed connect reports its own error.
var (
	errNoResponse      = errors.New("no response")
	errResponseTimeout = errors.New("response timeout")
	errBadResponse     = errors.New("bad or missing response")
)

// exchanger is one protocol's side of the attempt loop: the request as
// persistence sees it, and what sends it and relays the response.
type exchanger interface {
	RequestInfo
	// roundTrip sends the request on u, a connection to srv, and relays
	// the response to the client.
	roundTrip(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server) outcome
	// latency is how long the server took to send the head of the
	// response the last roundTrip relayed, counted from the request's
	// head going out.
	latency() time.Duration
	// answered reports whether part of a response reached the client,
	// so that it can no longer get an error answer.
	answered() bool
	// status is the status of the response the last roundTrip relayed
	// (or began to).
	status() int
}

// exchangeReq is what the attempt loop needs of one request besides its
// exchanger.
type exchangeReq struct {
	// ctx ends the attempts: the client's stream (HTTP/2) or the proxy.
	ctx context.Context
	// breq is the scheduling request; its Avoid grows with the servers
	// that failed.
	breq *balance.Request
	// pin is the client connection's pinned server, nil when the
	// protocol does not pin (HTTP/2: its streams run concurrently).
	pin *pinned
	// replayable requests (idempotent, without a body) are retried on
	// another server after a timeout or a kept connection's failure.
	replayable bool
	// sni is the name sent to re-encrypting real servers (PassSNI).
	sni string

	// What exchange reports besides its ending, for the counters and the
	// access log: the attempts made (picks), the last server tried, the
	// time to the first byte of the response relayed (-1: none), and how
	// the request ended ("" normally).
	attempts int
	srv      *backend.Server
	ttfb     time.Duration
	term     string
}

// pinned is the real server a client connection's requests go to while
// it can take them, when the service schedules per connection
// (ServiceConfig.PerRequest false).
type pinned struct {
	srv  *backend.Server
	pool *Pool
}

// exchange runs the attempts of one request at the real servers of pl and
// reports how they ended, with the status of the error answer the client
// gets for endAnswer and endFailed.
//
// The rules, for both protocols: a connect that fails counts a failure on
// the server and is retried on another one; a kept connection the server
// had closed (no response, nothing irreversible) is retried without
// blaming the server, at most twice beyond the retry budget; a new
// connection that gets no response counts a failure and is retried; a
// response timeout counts a failure and is retried only for a replayable
// request; a bad response is not retried. Retries stop after
// ServiceConfig.Retries attempts beyond the first that were the servers'
// failures, after RetryTimeout, or when req.ctx is done. Every attempt's
// outcome goes to the picker's done func (see balance.Outcome); pl.Stats
// counts the request; each server tried counts it (Requests), the answer
// it gave (Responses) and its bytes.
func exchange(st *state, pl *Pool, x exchanger, req *exchangeReq) (ending, int) {
	cfg := &st.cfg
	up := st.pools[pl]
	if pl.Stats != nil {
		pl.Stats.Open() // a pool counts requests
		defer pl.Stats.Close()
	}
	breq := req.breq
	req.attempts, req.srv, req.ttfb, req.term = 0, nil, -1, ""
	deadline := time.Now().Add(cfg.RetryTimeout)
	tries, stale := 0, 0
	failStatus := 502 // what the client gets when the servers tried failed; 504 once one timed out
	// blame records a failure of srv: it is avoided from now on.
	blame := func(srv *backend.Server) {
		srv.AddFailure()
		breq.Avoid = append(breq.Avoid, srv)
		if req.pin != nil {
			*req.pin = pinned{}
		}
		tries++
	}
	again := func() bool {
		return tries <= cfg.Retries && time.Now().Before(deadline) && req.ctx.Err() == nil
	}
	for {
		srv, release, err := pick(st, pl, up, breq, x, req.pin)
		if err != nil {
			if len(breq.Avoid) > 0 {
				req.term = termOf(failStatus)
				return endAnswer, failStatus // servers were tried and failed
			}
			req.term = "no-server"
			return endAnswer, 503
		}
		req.attempts++
		req.srv = srv
		from := up.from(srv, breq.Client.Addr())
		u := up.get(srv, req.sni, from, !req.replayable)
		reused := u != nil
		if reused {
			srv.AddReuse()
		}
		if u == nil {
			u, err = up.dial(req.ctx, srv, req.sni, from)
			if err != nil {
				if req.ctx.Err() != nil {
					release(balance.Outcome{}) // the client or the proxy gave up: not the server's failure
					req.term = "client-abort"
					return endAborted, 502
				}
				up.proxy.log.Debug("l7: connect failed", "pool", pl.Name, "server", srv.Addr(), "err", err)
				blame(srv)
				release(balance.Outcome{Err: err})
				if again() {
					srv.AddRedispatch()
					continue
				}
				req.term = termOf(failStatus)
				return endAnswer, failStatus
			}
		}
		// roundTrip puts u back in the pool or closes it, both of which
		// count its bytes: u is not touched after it, but to read broke
		// on a broken exchange, whose connection was closed.
		u.io.broke = false
		res := x.roundTrip(st, pl, up, u, srv)
		if res != retry || !reused {
			srv.AddRequest() // not a kept connection the server had closed
		}
		if x.answered() {
			srv.AddResponse(x.status())
			req.ttfb = max(x.latency(), 0)
			srv.ObserveResponse(req.ttfb)
		}
		if res != done && res != failedClient && req.ctx.Err() != nil {
			release(balance.Outcome{})
			req.term = "client-abort"
			return endAborted, 502
		}
		switch res {
		case done:
			release(balance.Outcome{Latency: max(x.latency(), 1)})
			return endRelayed, 0
		case retry:
			if reused {
				// A keep-alive connection the server had closed: not the
				// server's failure.
				release(balance.Outcome{})
				stale++
			} else {
				blame(srv)
				srv.AddResponseError()
				release(balance.Outcome{Err: errNoResponse})
			}
			if (reused && stale <= 2 || tries <= cfg.Retries) && time.Now().Before(deadline) && req.ctx.Err() == nil {
				srv.AddRedispatch()
				continue
			}
			req.term = termOf(failStatus)
			return endAnswer, failStatus
		case timedOut:
			// No response head within ResponseTimeout, or the body not
			// taken within BodyTimeout: the server's failure, whether the
			// connection was new or kept. A replayable request that got
			// nothing yet is tried on another server.
			blame(srv)
			release(balance.Outcome{Err: errResponseTimeout})
			failStatus = 504
			req.term = "server-timeout"
			if x.answered() {
				return endBroken, 0
			}
			if req.replayable && again() {
				srv.AddRedispatch()
				continue
			}
			return endAnswer, 504
		case failed:
			srv.AddResponseError()
			release(balance.Outcome{Err: errBadResponse})
			req.term = "bad-response"
			return endFailed, 502
		default:
			release(balance.Outcome{})
			req.term = "client-abort"
			if x.answered() && u.io.broke && req.ctx.Err() == nil {
				// Reading the server's answer failed, and not because
				// the client's stream was cancelled (which stops that
				// read with a past deadline).
				req.term = "server-abort"
			}
			return endBroken, 0
		}
	}
}

// pick chooses the real server of an attempt: the connection's pinned one
// when scheduling per connection (reserved through the picker, so that
// its outcome is reported as a pick's), else persistence or the picker;
// the sorry server when there is none.
func pick(st *state, pl *Pool, up *upstreamPool, breq *balance.Request, info RequestInfo, pin *pinned) (*backend.Server, func(balance.Outcome), error) {
	perConn := pin != nil && !st.cfg.PerRequest
	if perConn && pin.pool == pl && pin.srv != nil {
		if s := pin.srv; s.Available() && up.reserver != nil {
			if release, ok := up.reserver.Reserve(s); ok {
				return s, release, nil
			}
		}
		*pin = pinned{}
	}
	var srv *backend.Server
	var release func(balance.Outcome)
	var err error
	if pl.Persist != nil {
		srv, release, err = pl.Persist.Choose(pl.Picker, breq, info)
	} else {
		srv, release, err = pl.Picker.Pick(breq)
	}
	if err != nil {
		if pl.Sorry != nil && !containsServer(breq.Avoid, pl.Sorry) {
			pl.Sorry.Acquire(0)
			return pl.Sorry, up.sorryDone, nil
		}
		return nil, nil, err
	}
	if perConn {
		pin.srv, pin.pool = srv, pl
	}
	return srv, release, nil
}

// termOf is the access log's termination of an error answer's status.
func termOf(status int) string {
	if status == 504 {
		return "server-timeout"
	}
	return "connect-failed"
}

func containsServer(list []*backend.Server, s *backend.Server) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
