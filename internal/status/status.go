package status

import (
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// Source is what the front ends read the data plane's status through; the
// data plane's Engine implements it. Its methods are safe for concurrent
// use and take no lock that the data path uses.
type Source interface {
	// Status returns the state and counters of every top-level virtual
	// service of the configuration in force, in configuration order.
	Status() []VS
	// Limits returns the data plane's limits and their use.
	Limits() Limits
	// Events returns at most limit health-check events (all kept when
	// limit <= 0), newest first, of the virtual service vsID (of all when
	// vsID is 0); never nil.
	Events(limit, vsID int) []health.Event
}

// VS is the state and counters of one top-level virtual service.
type VS struct {
	// ID is the service's configuration ID.
	ID int `json:"id"`
	// Address is the virtual IP address.
	Address string `json:"address"`
	// Port is the main port.
	Port int `json:"port"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// State is Up, Down, Disabled or NotServed.
	State State `json:"state"`
	// Reason explains a Down or NotServed state and anything the service
	// does not do yet; "" when there is nothing to say.
	Reason string `json:"reason,omitempty"`
	// Warnings are what the service does that works but needs the
	// operator's attention, e.g. TLS offload with Fulcrum's generated
	// self-signed certificate; they are part of Reason too.
	Warnings []string `json:"warnings,omitempty"`
	// Sockets are the service's listening sockets (main port first, then
	// the extra ports) and whether each is open; empty unless served.
	Sockets []Socket `json:"sockets,omitempty"`
	// ActiveConns is the number of client connections (UDP: sessions)
	// open now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of client connections (UDP: sessions)
	// accepted.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes received from clients. Long connections are
	// counted while they last, about once a second.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes sent to clients.
	BytesOut int64 `json:"bytesOut"`
	// Errors is the number of client connections (UDP: new sessions) that
	// could not be proxied: no real server was available or none could be
	// reached.
	Errors int64 `json:"errors"`
	// Rates are the per-second rates over the last second.
	Rates backend.Rates `json:"rates"`
	// Peaks are the maxima since start and the last connection.
	Peaks Peaks `json:"peaks"`
	// UpDown counts the service's changes to Down or Sorry by its health
	// checks.
	UpDown int64 `json:"upDown,omitempty"`
	// LimitHits count how often each limit was reached.
	LimitHits LimitHits `json:"limitHits"`
	// RealServers are the service's real servers, in configuration order.
	RealServers []RS `json:"realServers"`
	// Check is the health-check type ("none" when unchecked); "" before
	// the health monitor has the configuration.
	Check string `json:"check,omitempty"`
	// Health is the status of the service by its health checks: Up, Down,
	// Sorry, Disabled or Unchecked; "" before the health monitor has the
	// configuration.
	Health State `json:"health,omitempty"`
	// HealthReason says why Health is what it is, e.g. "critical real
	// server 4 (127.0.0.5:80) is Down".
	HealthReason string `json:"healthReason,omitempty"`
	// Persistence is the size and counters of the service's persistence
	// table (the followed service's, with port following); absent when
	// the service does not persist.
	Persistence *persist.Stats `json:"persistence,omitempty"`
	// L7 is the layer-7 view of an http or http2 service; absent for
	// services served at layer 4 or not served.
	L7 *L7 `json:"l7,omitempty"`
}

// L7 counts the HTTP requests of a layer-7 service. ActiveConns and
// TotalConns of its VS count client connections, which carry any number
// of requests.
type L7 struct {
	// Requests is the number of requests sent to the service's own real
	// servers (0 for a service with SubVSs: see SubVSs).
	Requests int64 `json:"requests"`
	// ActiveRequests is the number of those in progress.
	ActiveRequests int64 `json:"activeRequests"`
	// RequestRate is the requests per second over the last second.
	RequestRate float64 `json:"requestRate"`
	// MaxActiveRequests is the most of those in progress at once.
	MaxActiveRequests int64 `json:"maxActiveRequests"`
	// HTTP are the request counters of every request the service received
	// (those passed to SubVSs included).
	HTTP HTTP `json:"http"`
	// SubVSs are the service's SubVSs, in configuration order.
	SubVSs []SubVS `json:"subVSs,omitempty"`
}

// SubVS is one SubVS of a layer-7 service.
type SubVS struct {
	// ID is the SubVS's configuration ID.
	ID int `json:"id"`
	// NickName is its configured name.
	NickName string `json:"nickname,omitempty"`
	// Requests is the number of requests the SubVS was chosen for.
	Requests int64 `json:"requests"`
	// ActiveRequests is the number of those in progress.
	ActiveRequests int64 `json:"activeRequests"`
	// MaxActiveRequests is the most of those in progress at once.
	MaxActiveRequests int64 `json:"maxActiveRequests"`
	// UpDown counts the SubVS's changes to Down by its health checks.
	UpDown int64 `json:"upDown,omitempty"`
	// Health is the SubVS's status by its health checks (as VS.Health);
	// "" before the health monitor has the configuration.
	Health State `json:"health,omitempty"`
	// HTTP are the request counters of the requests the SubVS was chosen
	// for.
	HTTP HTTP `json:"http"`
	// RealServers are the SubVS's real servers, in configuration order.
	RealServers []RS `json:"realServers"`
}

// Socket is one listening socket of a service.
type Socket struct {
	// Address is the socket's address and port.
	Address string `json:"address"`
	// Listening is true when the socket is open.
	Listening bool `json:"listening"`
	// Error is why the socket could not be opened; it is tried again
	// every 5 s.
	Error string `json:"error,omitempty"`
}

// LimitHits count how often each limit of a service was reached.
type LimitHits struct {
	// MaxConns counts connections (UDP: new sessions) refused over the
	// service's maximum of concurrent connections.
	MaxConns int64 `json:"maxConns"`
	// ConnsPerSec counts connections (UDP: new sessions) refused over the
	// service's connection rate.
	ConnsPerSec int64 `json:"connsPerSec"`
	// Bandwidth counts TCP copies held back, and UDP datagrams dropped, by
	// the service's bandwidth limit.
	Bandwidth int64 `json:"bandwidth"`
	// Throughput counts the same for the global throughput limit, for the
	// traffic of this service.
	Throughput int64 `json:"throughput"`
	// Sessions counts UDP sessions of this service evicted from the full
	// session table (or at the service's maxConns), and idle HTTP
	// connections of it closed to make room for a new connection at a
	// limit.
	Sessions int64 `json:"sessions"`
	// GlobalConns counts connections of this service refused at the
	// ceiling on the connections of all services (see Limits).
	GlobalConns int64 `json:"globalConns"`
	// Abuse counts connections refused because the client's address was
	// in the penalty box after repeated HTTP/2 abuse (docs/layer7.md).
	Abuse int64 `json:"abuse"`
}

// RS is the state and counters of one real server.
type RS struct {
	// ID is the real server's configuration ID.
	ID int `json:"id"`
	// Address is the real server's address.
	Address string `json:"address"`
	// Port is the real server's port.
	Port int `json:"port"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// Enabled is the configured enabled flag.
	Enabled bool `json:"enabled"`
	// State is Enabled, Disabled or Down.
	State State `json:"state"`
	// Health is the health-check state the data plane acts on: Unknown,
	// Up or Down.
	Health State `json:"health"`
	// ActiveConns is the number of connections open or being dialled now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of connections established.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes sent to the real server on behalf of clients.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes received from the real server for clients.
	BytesOut int64 `json:"bytesOut"`
	// Failures is the number of failed dials.
	Failures int64 `json:"failures"`
	// Rates are the per-second rates over the last second.
	Rates backend.Rates `json:"rates"`
	// Peaks are the maxima since start (MaxConns counts reserved
	// connection slots, as ActiveConns) and the last connection.
	Peaks Peaks `json:"peaks"`
	// Times are the real server's connect and total times.
	Times Times `json:"times"`
	// Reuses counts HTTP requests sent on a kept connection.
	Reuses int64 `json:"reuses"`
	// Redispatches counts attempts at the real server after which the
	// request was tried again (layer 7).
	Redispatches int64 `json:"redispatches"`
	// ClientAborts and ServerAborts count the requests to the real server
	// that ended without a complete answer, by who broke off.
	ClientAborts int64 `json:"clientAborts"`
	// ServerAborts: see ClientAborts.
	ServerAborts int64 `json:"serverAborts"`
	// ResponseErrors counts bad or missing responses of the real server.
	ResponseErrors int64 `json:"responseErrors"`
	// AvailableSince is since when the real server has been available to
	// the schedulers (the start of its slow start); absent when it is not.
	AvailableSince time.Time `json:"availableSince,omitzero"`
	// IdleConns is the number of idle kept connections to the real server
	// in the layer-7 pools now.
	IdleConns int64 `json:"idleConns"`
	// UpDown counts the real server's changes to Down by its health
	// checks.
	UpDown int64 `json:"upDown,omitempty"`
	// Status is the real server's status by health checks and drain: Up,
	// Down, Disabled, Draining or Unknown (waiting for its first check, or
	// not checked); "" before the health monitor has the configuration.
	Status State `json:"status,omitempty"`
	// Reason says why Status is what it is, e.g. "tcp 127.0.0.5:80:
	// connection refused after 2 retries".
	Reason string `json:"reason,omitempty"`
	// LastCheck is when the last health check started; absent before the
	// first.
	LastCheck time.Time `json:"lastCheck,omitzero"`
	// Latency is the duration of the last health check (nanoseconds).
	Latency time.Duration `json:"latency,omitempty"`
	// CheckFailures counts the failed health checks of the real server
	// since it was added (or Fulcrum started).
	CheckFailures int64 `json:"checkFailures"`
	// Requests is the number of HTTP requests sent to the real server
	// (layer-7 services; a retried request counts at each server tried).
	Requests int64 `json:"requests"`
	// Responses count the real server's answers relayed to clients, by
	// status class (layer-7 services).
	Responses Responses `json:"responses"`
	// ResponseTime is the moving average of the time from the request's
	// head going out to the response's head coming back (layer 7) or of
	// the connect time (layer 4), in nanoseconds; 0 before the first.
	ResponseTime time.Duration `json:"responseTime,omitempty"`
}

// HTTP are the request counters of a layer-7 service or SubVS. Bytes are
// counted in the service's BytesIn and BytesOut (header and body, both
// directions, as on the wire before TLS).
type HTTP struct {
	// Requests is the number of requests received (each counted once,
	// however often it was retried).
	Requests int64 `json:"requests"`
	// Responses count the answers sent to clients by status class, the
	// error answers Fulcrum made itself (502, 503, 504) included.
	Responses Responses `json:"responses"`
	// ProxyErrors counts the error answers Fulcrum made itself because no
	// real server answered (also counted in Responses.C5xx).
	ProxyErrors int64 `json:"proxyErrors"`
	// Aborted counts requests that ended without a complete answer (the
	// client or the server broke off).
	Aborted int64 `json:"aborted"`
	// Retries counts attempts beyond the first made for a request.
	Retries int64 `json:"retries"`
	// ClientAborts counts the aborted requests the client broke off.
	ClientAborts int64 `json:"clientAborts"`
	// ServerAborts counts the aborted requests the real server broke off
	// (failed or timed out while its answer was relayed).
	ServerAborts int64 `json:"serverAborts"`
	// RequestErrors counts HTTP/1 requests refused as malformed (too
	// large, incomplete, not received in time) with a 4xx answer.
	RequestErrors int64 `json:"requestErrors"`
	// MaxRequestRate is the highest rate of requests over one second.
	MaxRequestRate float64 `json:"maxRequestRate"`
	// LastRequest is about when the last request was counted (1 s
	// resolution); absent before the first.
	LastRequest time.Time `json:"lastRequest,omitzero"`
	// MaxTTFB and MaxDuration are the maxima of TTFB and Duration since
	// start (nanoseconds).
	MaxTTFB time.Duration `json:"maxTTFB"`
	// MaxDuration: see MaxTTFB.
	MaxDuration time.Duration `json:"maxDuration"`
	// TTFB is the histogram of the time from the request's head going out
	// to a real server to the response's head coming back (relayed
	// answers only).
	TTFB Histogram `json:"ttfb"`
	// Duration is the histogram of the total time of a request, from its
	// head being read to the last byte of its answer being written.
	Duration Histogram `json:"duration"`
}

// Responses count answers by HTTP status class.
type Responses struct {
	// C1xx counts informational answers (a 101 switching protocols).
	C1xx int64 `json:"1xx"`
	// C2xx counts success answers.
	C2xx int64 `json:"2xx"`
	// C3xx counts redirections.
	C3xx int64 `json:"3xx"`
	// C4xx counts client errors.
	C4xx int64 `json:"4xx"`
	// C5xx counts server errors.
	C5xx int64 `json:"5xx"`
	// Other counts answers with a status outside 100-599.
	Other int64 `json:"other"`
}

// DurationBounds are the upper bounds, in seconds, of the buckets of every
// duration Histogram (as Prometheus's defaults, with 1 ms and 2.5 ms, 25 s
// and 60 s added for long requests); the +Inf bucket is implicit.
var DurationBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60}

// Histogram is a cumulative histogram of durations, in Prometheus's shape.
type Histogram struct {
	// Counts are, for each bound of DurationBounds, the number of
	// observations not above it (cumulative).
	Counts []uint64 `json:"counts"`
	// Count is the number of observations (the +Inf bucket).
	Count uint64 `json:"count"`
	// Sum is the sum of the observations in seconds.
	Sum float64 `json:"sum"`
}

// Limits are the data plane's shares of the descriptor limit and how much
// of the connection ceiling is in use.
type Limits struct {
	// Budget is how the descriptor limit is shared out.
	Budget admission.Budget `json:"budget"`
	// DefaultServiceConns is the maximum of concurrent connections of a
	// TCP service whose limits.maxConns is 0.
	DefaultServiceConns int `json:"defaultServiceConns"`
	// DefaultServiceSessions is the same for UDP sessions.
	DefaultServiceSessions int `json:"defaultServiceSessions"`
	// Conns is the number of client TCP connections of all services now.
	Conns int64 `json:"conns"`
	// ConnsRefused counts connections refused at the ceiling
	// (Budget.TCPConns).
	ConnsRefused int64 `json:"connsRefused"`
	// UDPSessions is the number of UDP sessions now.
	UDPSessions int `json:"udpSessions"`
	// Process are process-wide counters and rates.
	Process Process `json:"process"`
}

// Process are the data plane's process-wide counters. Rates are per
// second over the last second of sampling; maxima are since start.
type Process struct {
	// ConnRate and MaxConnRate are the rate of client connections
	// accepted by all services and its maximum.
	ConnRate float64 `json:"connRate"`
	// MaxConnRate: see ConnRate.
	MaxConnRate float64 `json:"maxConnRate"`
	// TLSHandshakes counts TLS handshakes completed with clients
	// (layer-7 services with TLS); TLSResumed those that resumed a
	// session; TLSConns is the client TLS connections open now.
	TLSHandshakes int64 `json:"tlsHandshakes"`
	// TLSResumed: see TLSHandshakes.
	TLSResumed int64 `json:"tlsResumed"`
	// TLSConns: see TLSHandshakes.
	TLSConns int64 `json:"tlsConns"`
	// TLSRate and MaxTLSRate are the rate of client TLS handshakes.
	TLSRate float64 `json:"tlsRate"`
	// MaxTLSRate: see TLSRate.
	MaxTLSRate float64 `json:"maxTLSRate"`
	// ClientKeyRate and MaxClientKeyRate are the rate of full (not
	// resumed) TLS handshakes with clients.
	ClientKeyRate float64 `json:"clientKeyRate"`
	// MaxClientKeyRate: see ClientKeyRate.
	MaxClientKeyRate float64 `json:"maxClientKeyRate"`
	// ServerKeyRate and MaxServerKeyRate are the rate of full TLS
	// handshakes with real servers (re-encryption).
	ServerKeyRate float64 `json:"serverKeyRate"`
	// MaxServerKeyRate: see ServerKeyRate.
	MaxServerKeyRate float64 `json:"maxServerKeyRate"`
	// SplicedBytes is the bytes layer-4 services moved with splice(2),
	// counted when each bulk copy ends.
	SplicedBytes int64 `json:"splicedBytes"`
	// Listeners is the number of listening sockets open.
	Listeners int `json:"listeners"`
}

// Peaks are maxima since Fulcrum started (or the object appeared) and the
// time of the last connection.
type Peaks struct {
	// MaxConns is the most connections open at once.
	MaxConns int64 `json:"maxConns"`
	// MaxConnRate is the highest rate of new connections over one second.
	MaxConnRate float64 `json:"maxConnRate"`
	// LastConn is about when the last connection was counted (1 s
	// resolution); absent before the first.
	LastConn time.Time `json:"lastConn,omitzero"`
}

// Times are a real server's connect and total times (nanoseconds), moving
// averages (0 before the first sample) and maxima since start.
type Times struct {
	// Connect is the moving average of the time to establish a connection
	// (with its TLS handshake when re-encrypting).
	Connect time.Duration `json:"connect"`
	// MaxConnect is its maximum.
	MaxConnect time.Duration `json:"maxConnect"`
	// MaxResponse is the maximum time to the response head (layer 7).
	MaxResponse time.Duration `json:"maxResponse"`
	// Total is the moving average of the total time of the HTTP requests
	// the real server answered.
	Total time.Duration `json:"total"`
	// MaxTotal is its maximum.
	MaxTotal time.Duration `json:"maxTotal"`
}
