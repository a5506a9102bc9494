// Package metrics exposes Fulcrum's counters to Prometheus: a collector
// that reads the data plane's status (status.Source) at scrape time, under
// Fulcrum's own names (fulcrum_…) and, when options.metrics.haproxyNames is
// on, also under the names and labels of HAProxy's built-in exporter
// (haproxy_frontend_…, haproxy_backend_…, haproxy_server_…), so that
// dashboards made for HAProxy work unchanged. Nothing is counted on the
// data path here: every value is a copy of a counter the data plane keeps.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Scheme names a naming scheme of the families.
type Scheme string

// The naming schemes.
const (
	// SchemeFulcrum is Fulcrum's own names, always exposed.
	SchemeFulcrum Scheme = "fulcrum"
	// SchemeHAProxy is HAProxy's exporter names, exposed with
	// options.metrics.haproxyNames.
	SchemeHAProxy Scheme = "haproxy"
)

// Kind is the Prometheus type of a family.
type Kind string

// The kinds of family.
const (
	Counter   Kind = "counter"
	Gauge     Kind = "gauge"
	Histogram Kind = "histogram"
)

// Family describes one metric family the collector exposes.
type Family struct {
	// Name is the family's name.
	Name string
	// Kind is its Prometheus type.
	Kind Kind
	// Labels are its variable labels, in order.
	Labels []string
	// Help is its description.
	Help string
	// Scheme is the naming scheme it belongs to.
	Scheme Scheme

	desc *prometheus.Desc
}

func (f *Family) valueType() prometheus.ValueType {
	if f.Kind == Counter {
		return prometheus.CounterValue
	}
	return prometheus.GaugeValue
}

// Label sets of the families.
var (
	vsLabels    = []string{"vs", "vs_name", "vs_address"}
	subvsLabels = []string{"vs", "vs_name", "vs_address", "subvs", "subvs_name"}
	rsLabels    = []string{"vs", "vs_name", "vs_address", "subvs", "rs", "rs_address"}
	proxyLabel  = []string{"proxy"}
	serverLabel = []string{"proxy", "server"}
)

func with(base []string, extra ...string) []string {
	out := make([]string, 0, len(base)+len(extra))
	return append(append(out, base...), extra...)
}

func fam(s Scheme, name string, k Kind, labels []string, help string) *Family {
	f := &Family{Name: name, Kind: k, Labels: labels, Help: help, Scheme: s}
	f.desc = prometheus.NewDesc(name, help, labels, nil)
	return f
}

// Fulcrum's own families.
var (
	fVSUp          = fam(SchemeFulcrum, "fulcrum_vs_up", Gauge, vsLabels, "1 when the virtual service can take connections (state Up), else 0.")
	fVSConns       = fam(SchemeFulcrum, "fulcrum_vs_connections_active", Gauge, vsLabels, "Client connections (UDP: sessions) open now.")
	fVSConnsTotal  = fam(SchemeFulcrum, "fulcrum_vs_connections_total", Counter, vsLabels, "Client connections (UDP: sessions) accepted.")
	fVSBytesIn     = fam(SchemeFulcrum, "fulcrum_vs_bytes_in_total", Counter, vsLabels, "Bytes received from clients (long connections counted about once a second).")
	fVSBytesOut    = fam(SchemeFulcrum, "fulcrum_vs_bytes_out_total", Counter, vsLabels, "Bytes sent to clients.")
	fVSErrors      = fam(SchemeFulcrum, "fulcrum_vs_errors_total", Counter, vsLabels, "Client connections (UDP: new sessions) that could not be proxied: no real server was available or reachable.")
	fVSLimitHits   = fam(SchemeFulcrum, "fulcrum_vs_limit_hits_total", Counter, with(vsLabels, "limit"), "Times a limit of the service was reached, by limit (maxConns, connsPerSec, bandwidth, throughput, sessions, globalConns, abuse).")
	fVSRequests    = fam(SchemeFulcrum, "fulcrum_vs_requests_total", Counter, vsLabels, "HTTP requests received by a layer-7 service (each counted once however often it was retried).")
	fVSReqActive   = fam(SchemeFulcrum, "fulcrum_vs_requests_active", Gauge, vsLabels, "HTTP requests to the service's own real servers in progress.")
	fVSResponses   = fam(SchemeFulcrum, "fulcrum_vs_responses_total", Counter, with(vsLabels, "code"), "HTTP answers sent to clients by status class (1xx-5xx, other), Fulcrum's own error answers included.")
	fVSProxyErrors = fam(SchemeFulcrum, "fulcrum_vs_proxy_errors_total", Counter, vsLabels, "Error answers (502, 503, 504) Fulcrum made itself because no real server answered.")
	fVSRetries     = fam(SchemeFulcrum, "fulcrum_vs_retries_total", Counter, vsLabels, "Attempts beyond the first made for HTTP requests.")
	fVSAborted     = fam(SchemeFulcrum, "fulcrum_vs_aborted_total", Counter, vsLabels, "HTTP requests that ended without a complete answer (client or server broke off).")
	fVSDuration    = fam(SchemeFulcrum, "fulcrum_vs_request_duration_seconds", Histogram, vsLabels, "Total time of HTTP requests, from the request head read to the last byte of the answer written.")
	fVSTTFB        = fam(SchemeFulcrum, "fulcrum_vs_ttfb_seconds", Histogram, vsLabels, "Time from a request head sent to a real server to its response head (relayed answers only).")
	fVSPersistHits = fam(SchemeFulcrum, "fulcrum_vs_persistence_hits_total", Counter, vsLabels, "Persistence lookups that found a live entry.")
	fVSPersistMiss = fam(SchemeFulcrum, "fulcrum_vs_persistence_misses_total", Counter, vsLabels, "Persistence lookups that found none (or an expired one).")
	fVSPersistSize = fam(SchemeFulcrum, "fulcrum_vs_persistence_entries", Gauge, vsLabels, "Entries in the service's persistence table.")

	fSubUp          = fam(SchemeFulcrum, "fulcrum_subvs_up", Gauge, subvsLabels, "1 when the SubVS's health checks find it Up (or it is unchecked), else 0.")
	fSubRequests    = fam(SchemeFulcrum, "fulcrum_subvs_requests_total", Counter, subvsLabels, "HTTP requests the SubVS was chosen for.")
	fSubReqActive   = fam(SchemeFulcrum, "fulcrum_subvs_requests_active", Gauge, subvsLabels, "HTTP requests of the SubVS in progress.")
	fSubResponses   = fam(SchemeFulcrum, "fulcrum_subvs_responses_total", Counter, with(subvsLabels, "code"), "HTTP answers to the SubVS's requests by status class.")
	fSubProxyErrors = fam(SchemeFulcrum, "fulcrum_subvs_proxy_errors_total", Counter, subvsLabels, "Error answers Fulcrum made itself for the SubVS's requests.")
	fSubRetries     = fam(SchemeFulcrum, "fulcrum_subvs_retries_total", Counter, subvsLabels, "Attempts beyond the first for the SubVS's requests.")
	fSubAborted     = fam(SchemeFulcrum, "fulcrum_subvs_aborted_total", Counter, subvsLabels, "The SubVS's requests that ended without a complete answer.")
	fSubDuration    = fam(SchemeFulcrum, "fulcrum_subvs_request_duration_seconds", Histogram, subvsLabels, "Total time of the SubVS's HTTP requests.")
	fSubTTFB        = fam(SchemeFulcrum, "fulcrum_subvs_ttfb_seconds", Histogram, subvsLabels, "Time to the response head from the SubVS's real servers.")

	fRSUp           = fam(SchemeFulcrum, "fulcrum_rs_up", Gauge, rsLabels, "1 when the real server's status is Up, else 0.")
	fRSStatus       = fam(SchemeFulcrum, "fulcrum_rs_status", Gauge, with(rsLabels, "status"), "Always 1, with the real server's status (Up, Down, Disabled, Draining, Unknown) as the label status.")
	fRSWeight       = fam(SchemeFulcrum, "fulcrum_rs_weight", Gauge, rsLabels, "The real server's configured weight.")
	fRSConns        = fam(SchemeFulcrum, "fulcrum_rs_connections_active", Gauge, rsLabels, "Connections to the real server open or being dialled now.")
	fRSConnsTotal   = fam(SchemeFulcrum, "fulcrum_rs_connections_total", Counter, rsLabels, "Connections to the real server established.")
	fRSBytesIn      = fam(SchemeFulcrum, "fulcrum_rs_bytes_in_total", Counter, rsLabels, "Bytes sent to the real server on behalf of clients.")
	fRSBytesOut     = fam(SchemeFulcrum, "fulcrum_rs_bytes_out_total", Counter, rsLabels, "Bytes received from the real server for clients.")
	fRSFailures     = fam(SchemeFulcrum, "fulcrum_rs_connection_failures_total", Counter, rsLabels, "Failed connection attempts (dials) to the real server.")
	fRSCheckFail    = fam(SchemeFulcrum, "fulcrum_rs_check_failures_total", Counter, rsLabels, "Failed health checks of the real server.")
	fRSCheckTime    = fam(SchemeFulcrum, "fulcrum_rs_check_duration_seconds", Gauge, rsLabels, "Duration of the real server's last health check.")
	fRSRequests     = fam(SchemeFulcrum, "fulcrum_rs_requests_total", Counter, rsLabels, "HTTP requests sent to the real server (a retried request counts at each server tried).")
	fRSResponses    = fam(SchemeFulcrum, "fulcrum_rs_responses_total", Counter, with(rsLabels, "code"), "The real server's HTTP answers relayed to clients, by status class.")
	fRSResponseTime = fam(SchemeFulcrum, "fulcrum_rs_response_time_seconds", Gauge, rsLabels, "Moving average of the time to the response head (layer 7) or of the connect time (layer 4); 0 before the first.")

	fConns        = fam(SchemeFulcrum, "fulcrum_connections", Gauge, nil, "Client TCP connections of all services now.")
	fConnsLimit   = fam(SchemeFulcrum, "fulcrum_connections_limit", Gauge, nil, "Ceiling on the client TCP connections of all services (from the descriptor limit).")
	fConnsRefused = fam(SchemeFulcrum, "fulcrum_connections_refused_total", Counter, nil, "Client connections refused at the ceiling.")
	fUDPSessions  = fam(SchemeFulcrum, "fulcrum_udp_sessions", Gauge, nil, "UDP sessions of all services now.")
	fUDPLimit     = fam(SchemeFulcrum, "fulcrum_udp_sessions_limit", Gauge, nil, "Size of the UDP session table.")
	fFDLimit      = fam(SchemeFulcrum, "fulcrum_descriptors_limit", Gauge, nil, "The process's descriptor limit the budget was made from.")
	fServices     = fam(SchemeFulcrum, "fulcrum_virtual_services", Gauge, nil, "Top-level virtual services in the configuration in force.")
	fBuildInfo    = fam(SchemeFulcrum, "fulcrum_build_info", Gauge, []string{"version", "commit", "goversion"}, "Always 1, with Fulcrum's version, commit and Go version as labels.")
)

// HAProxy-compatible families (HAProxy 2.6 promex names, types, labels).
var (
	hFeCurSess     = fam(SchemeHAProxy, "haproxy_frontend_current_sessions", Gauge, proxyLabel, "Client connections of the virtual service open now.")
	hFeLimitSess   = fam(SchemeHAProxy, "haproxy_frontend_limit_sessions", Gauge, proxyLabel, "The service's maxConns, or its default share of the connection ceiling.")
	hFeSessTotal   = fam(SchemeHAProxy, "haproxy_frontend_sessions_total", Counter, proxyLabel, "Client connections of the virtual service accepted.")
	hFeBytesIn     = fam(SchemeHAProxy, "haproxy_frontend_bytes_in_total", Counter, proxyLabel, "Bytes received from the service's clients.")
	hFeBytesOut    = fam(SchemeHAProxy, "haproxy_frontend_bytes_out_total", Counter, proxyLabel, "Bytes sent to the service's clients.")
	hFeStatus      = fam(SchemeHAProxy, "haproxy_frontend_status", Gauge, with(proxyLabel, "state"), "The virtual service's state: 1 on the series of the current state (UP or DOWN), 0 on the other.")
	hFeLimitRate   = fam(SchemeHAProxy, "haproxy_frontend_limit_session_rate", Gauge, proxyLabel, "The service's connsPerSec limit; NaN when it has none.")
	hFeHTTPResp    = fam(SchemeHAProxy, "haproxy_frontend_http_responses_total", Counter, with(proxyLabel, "code"), "HTTP answers sent to the service's clients, by status class.")
	hFeHTTPReq     = fam(SchemeHAProxy, "haproxy_frontend_http_requests_total", Counter, proxyLabel, "HTTP requests the service received.")
	hFeConnsTotal  = fam(SchemeHAProxy, "haproxy_frontend_connections_total", Counter, proxyLabel, "Client connections of the virtual service accepted (as sessions_total).")
	hFeDeniedConns = fam(SchemeHAProxy, "haproxy_frontend_denied_connections_total", Counter, proxyLabel, "Client connections refused at accept: over maxConns, connsPerSec or the global ceiling, or by the abuse penalty box.")
	hFeCompIn      = fam(SchemeHAProxy, "haproxy_frontend_http_comp_bytes_in_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hFeCompOut     = fam(SchemeHAProxy, "haproxy_frontend_http_comp_bytes_out_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hFeCompBypass  = fam(SchemeHAProxy, "haproxy_frontend_http_comp_bytes_bypassed_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hFeCompResp    = fam(SchemeHAProxy, "haproxy_frontend_http_comp_responses_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hFeCacheLook   = fam(SchemeHAProxy, "haproxy_frontend_http_cache_lookups_total", Counter, proxyLabel, "Always 0: Fulcrum has no cache.")
	hFeCacheHits   = fam(SchemeHAProxy, "haproxy_frontend_http_cache_hits_total", Counter, proxyLabel, "Always 0: Fulcrum has no cache.")

	hBeCurQueue   = fam(SchemeHAProxy, "haproxy_backend_current_queue", Gauge, proxyLabel, "Always 0: Fulcrum does not queue requests (none free: answered at once).")
	hBeMaxQueue   = fam(SchemeHAProxy, "haproxy_backend_max_queue", Gauge, proxyLabel, "Always 0: Fulcrum does not queue requests.")
	hBeCurSess    = fam(SchemeHAProxy, "haproxy_backend_current_sessions", Gauge, proxyLabel, "Connections to the backend's real servers open now.")
	hBeSessTotal  = fam(SchemeHAProxy, "haproxy_backend_sessions_total", Counter, proxyLabel, "Connections to the backend's real servers established.")
	hBeBytesIn    = fam(SchemeHAProxy, "haproxy_backend_bytes_in_total", Counter, proxyLabel, "Bytes sent to the backend's real servers.")
	hBeBytesOut   = fam(SchemeHAProxy, "haproxy_backend_bytes_out_total", Counter, proxyLabel, "Bytes received from the backend's real servers.")
	hBeConnErrors = fam(SchemeHAProxy, "haproxy_backend_connection_errors_total", Counter, proxyLabel, "Failed connection attempts to the backend's real servers.")
	hBeRetries    = fam(SchemeHAProxy, "haproxy_backend_retry_warnings_total", Counter, proxyLabel, "Attempts beyond the first made for HTTP requests.")
	hBeStatus     = fam(SchemeHAProxy, "haproxy_backend_status", Gauge, with(proxyLabel, "state"), "The backend's health: 1 on the series of the current state (UP or DOWN), 0 on the other.")
	hBeWeight     = fam(SchemeHAProxy, "haproxy_backend_weight", Gauge, proxyLabel, "Sum of the weights of the backend's real servers that are Up.")
	hBeUWeight    = fam(SchemeHAProxy, "haproxy_backend_uweight", Gauge, proxyLabel, "Sum of the configured weights of the backend's real servers.")
	hBeActive     = fam(SchemeHAProxy, "haproxy_backend_active_servers", Gauge, proxyLabel, "Real servers of the backend that are Up.")
	hBeHTTPResp   = fam(SchemeHAProxy, "haproxy_backend_http_responses_total", Counter, with(proxyLabel, "code"), "HTTP answers to the backend's requests, by status class.")
	hBeHTTPReq    = fam(SchemeHAProxy, "haproxy_backend_http_requests_total", Counter, proxyLabel, "HTTP requests the backend was chosen for.")
	hBeQueueTime  = fam(SchemeHAProxy, "haproxy_backend_queue_time_average_seconds", Gauge, proxyLabel, "Always 0: Fulcrum does not queue requests.")
	hBeRespTime   = fam(SchemeHAProxy, "haproxy_backend_response_time_average_seconds", Gauge, proxyLabel, "Mean of the backend's real servers' moving averages of the time to the response head.")
	hBeTotalTime  = fam(SchemeHAProxy, "haproxy_backend_total_time_average_seconds", Gauge, proxyLabel, "Mean total time of the backend's HTTP requests since start (from the duration histogram).")
	hBeCompIn     = fam(SchemeHAProxy, "haproxy_backend_http_comp_bytes_in_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hBeCompOut    = fam(SchemeHAProxy, "haproxy_backend_http_comp_bytes_out_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hBeCompBypass = fam(SchemeHAProxy, "haproxy_backend_http_comp_bytes_bypassed_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hBeCompResp   = fam(SchemeHAProxy, "haproxy_backend_http_comp_responses_total", Counter, proxyLabel, "Always 0: Fulcrum does not compress.")
	hBeCacheLook  = fam(SchemeHAProxy, "haproxy_backend_http_cache_lookups_total", Counter, proxyLabel, "Always 0: Fulcrum has no cache.")
	hBeCacheHits  = fam(SchemeHAProxy, "haproxy_backend_http_cache_hits_total", Counter, proxyLabel, "Always 0: Fulcrum has no cache.")
	hSvCurQueue   = fam(SchemeHAProxy, "haproxy_server_current_queue", Gauge, serverLabel, "Always 0: Fulcrum does not queue requests.")
	hSvMaxQueue   = fam(SchemeHAProxy, "haproxy_server_max_queue", Gauge, serverLabel, "Always 0: Fulcrum does not queue requests.")
	hSvCurSess    = fam(SchemeHAProxy, "haproxy_server_current_sessions", Gauge, serverLabel, "Connections to the real server open now.")
	hSvLimitSess  = fam(SchemeHAProxy, "haproxy_server_limit_sessions", Gauge, serverLabel, "The real server's connection limit; NaN when it has none.")
	hSvSessTotal  = fam(SchemeHAProxy, "haproxy_server_sessions_total", Counter, serverLabel, "Connections to the real server established.")
	hSvBytesIn    = fam(SchemeHAProxy, "haproxy_server_bytes_in_total", Counter, serverLabel, "Bytes sent to the real server.")
	hSvBytesOut   = fam(SchemeHAProxy, "haproxy_server_bytes_out_total", Counter, serverLabel, "Bytes received from the real server.")
	hSvConnErrors = fam(SchemeHAProxy, "haproxy_server_connection_errors_total", Counter, serverLabel, "Failed connection attempts to the real server.")
	hSvStatus     = fam(SchemeHAProxy, "haproxy_server_status", Gauge, with(serverLabel, "state"), "The real server's status: 1 on the series of the current state (UP, DOWN, MAINT for disabled, DRAIN), all 0 while it waits for its first check.")
	hSvWeight     = fam(SchemeHAProxy, "haproxy_server_weight", Gauge, serverLabel, "The real server's configured weight.")
	hSvUWeight    = fam(SchemeHAProxy, "haproxy_server_uweight", Gauge, serverLabel, "The real server's configured weight.")
	hSvCheckFail  = fam(SchemeHAProxy, "haproxy_server_check_failures_total", Counter, serverLabel, "Failed health checks of the real server.")
	hSvCheckDur   = fam(SchemeHAProxy, "haproxy_server_check_duration_seconds", Gauge, serverLabel, "Duration of the real server's last health check.")
	hSvHTTPResp   = fam(SchemeHAProxy, "haproxy_server_http_responses_total", Counter, with(serverLabel, "code"), "The real server's HTTP answers relayed to clients, by status class.")
	hSvQueueTime  = fam(SchemeHAProxy, "haproxy_server_queue_time_average_seconds", Gauge, serverLabel, "Always 0: Fulcrum does not queue requests.")
	hSvRespTime   = fam(SchemeHAProxy, "haproxy_server_response_time_average_seconds", Gauge, serverLabel, "Moving average of the real server's time to the response head.")

	hProcBuild    = fam(SchemeHAProxy, "haproxy_process_build_info", Gauge, []string{"version"}, "Always 1, with Fulcrum's version as the label version.")
	hProcNbproc   = fam(SchemeHAProxy, "haproxy_process_nbproc", Gauge, nil, "Always 1: Fulcrum is one process.")
	hProcNbthread = fam(SchemeHAProxy, "haproxy_process_nbthread", Gauge, nil, "GOMAXPROCS: the threads that run Go code at once.")
	hProcUptime   = fam(SchemeHAProxy, "haproxy_process_uptime_seconds", Gauge, nil, "Seconds since Fulcrum started.")
	hProcStart    = fam(SchemeHAProxy, "haproxy_process_start_time_seconds", Gauge, nil, "When Fulcrum started, in seconds since the Unix epoch.")
	hProcMaxFDs   = fam(SchemeHAProxy, "haproxy_process_max_fds", Gauge, nil, "The process's descriptor limit.")
	hProcCurConns = fam(SchemeHAProxy, "haproxy_process_current_connections", Gauge, nil, "Client TCP connections of all services now.")
	hProcMaxConns = fam(SchemeHAProxy, "haproxy_process_max_connections", Gauge, nil, "Ceiling on the client TCP connections of all services.")
	hProcHardMax  = fam(SchemeHAProxy, "haproxy_process_hard_max_connections", Gauge, nil, "Ceiling on the client TCP connections of all services.")
	hProcConnsTot = fam(SchemeHAProxy, "haproxy_process_connections_total", Counter, nil, "Client connections of all services accepted.")
	hProcReqTotal = fam(SchemeHAProxy, "haproxy_process_requests_total", Counter, nil, "HTTP requests of all services received.")
)

// Families lists every family the collector can expose, Fulcrum's first,
// in a stable order. Go and process families come from client_golang's
// collectors and are not listed.
func Families() []*Family { return families }

var families = []*Family{
	fVSUp, fVSConns, fVSConnsTotal, fVSBytesIn, fVSBytesOut, fVSErrors, fVSLimitHits,
	fVSRequests, fVSReqActive, fVSResponses, fVSProxyErrors, fVSRetries, fVSAborted, fVSDuration, fVSTTFB,
	fVSPersistHits, fVSPersistMiss, fVSPersistSize,
	fSubUp, fSubRequests, fSubReqActive, fSubResponses, fSubProxyErrors, fSubRetries, fSubAborted, fSubDuration, fSubTTFB,
	fRSUp, fRSStatus, fRSWeight, fRSConns, fRSConnsTotal, fRSBytesIn, fRSBytesOut, fRSFailures, fRSCheckFail, fRSCheckTime,
	fRSRequests, fRSResponses, fRSResponseTime,
	fConns, fConnsLimit, fConnsRefused, fUDPSessions, fUDPLimit, fFDLimit, fServices, fBuildInfo,
	fAccessLines, fAccessBytes, fAccessDropped, fAccessErrors, fSyslogSent, fSyslogDropped, fSyslogQueued, fSyslogUp,
	fMails, fWebhookEvents,

	hFeCurSess, hFeLimitSess, hFeSessTotal, hFeBytesIn, hFeBytesOut, hFeStatus, hFeLimitRate, hFeHTTPResp, hFeHTTPReq,
	hFeConnsTotal, hFeDeniedConns, hFeCompIn, hFeCompOut, hFeCompBypass, hFeCompResp, hFeCacheLook, hFeCacheHits,
	hBeCurQueue, hBeMaxQueue, hBeCurSess, hBeSessTotal, hBeBytesIn, hBeBytesOut, hBeConnErrors, hBeRetries, hBeStatus,
	hBeWeight, hBeUWeight, hBeActive, hBeHTTPResp, hBeHTTPReq, hBeQueueTime, hBeRespTime, hBeTotalTime,
	hBeCompIn, hBeCompOut, hBeCompBypass, hBeCompResp, hBeCacheLook, hBeCacheHits,
	hSvCurQueue, hSvMaxQueue, hSvCurSess, hSvLimitSess, hSvSessTotal, hSvBytesIn, hSvBytesOut, hSvConnErrors, hSvStatus,
	hSvWeight, hSvUWeight, hSvCheckFail, hSvCheckDur, hSvHTTPResp, hSvQueueTime, hSvRespTime,
	hProcBuild, hProcNbproc, hProcNbthread, hProcUptime, hProcStart, hProcMaxFDs, hProcCurConns, hProcMaxConns, hProcHardMax,
	hProcConnsTot, hProcReqTotal,
}
