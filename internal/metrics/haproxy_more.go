package metrics

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/l7"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// The HAProxy families beyond counters of connections, bytes and answers:
// maxima, times, reuses, aborts by side, and the process. A family Fulcrum
// has nothing for is 0 by construction and says so in its help.
var (
	hFeMaxSess        = fam(SchemeHAProxy, "haproxy_frontend_max_sessions", Gauge, proxyLabel, "Most client connections of the virtual service open at once since start.")
	hFeMaxSessRate    = fam(SchemeHAProxy, "haproxy_frontend_max_session_rate", Gauge, proxyLabel, "Highest rate of client connections accepted over one second (sampled each second) since start.")
	hFeConnRateMax    = fam(SchemeHAProxy, "haproxy_frontend_connections_rate_max", Gauge, proxyLabel, "Highest rate of client connections accepted over one second since start (as max_session_rate: Fulcrum's sessions are connections).")
	hFeReqRateMax     = fam(SchemeHAProxy, "haproxy_frontend_http_requests_rate_max", Gauge, proxyLabel, "Highest rate of HTTP requests received over one second (sampled each second) since start.")
	hFeReqErrors      = fam(SchemeHAProxy, "haproxy_frontend_request_errors_total", Counter, proxyLabel, "HTTP/1 requests refused as malformed (head too large, incomplete, not received in time, bad body framing) with a 4xx answer.")
	hFeDeniedSess     = fam(SchemeHAProxy, "haproxy_frontend_denied_sessions_total", Counter, proxyLabel, "Always 0: Fulcrum has no session rules; connections refused at accept are in denied_connections_total.")
	hFeFailedRewrite  = fam(SchemeHAProxy, "haproxy_frontend_failed_header_rewriting_total", Counter, proxyLabel, "Always 0: Fulcrum's header policy writes headers as they are sent and cannot fail for want of buffer room.")
	hFeInternalErrors = fam(SchemeHAProxy, "haproxy_frontend_internal_errors_total", Counter, proxyLabel, "Always 0: Fulcrum has no internal-error answers.")
	hFeReqDenied      = fam(SchemeHAProxy, "haproxy_frontend_requests_denied_total", Counter, proxyLabel, "Always 0: Fulcrum has no deny rules on requests.")
	hFeRespDenied     = fam(SchemeHAProxy, "haproxy_frontend_responses_denied_total", Counter, proxyLabel, "Always 0: Fulcrum has no deny rules on responses.")

	hBeBackup         = fam(SchemeHAProxy, "haproxy_backend_backup_servers", Gauge, proxyLabel, "Always 0: Fulcrum has no backup servers (a sorry server is not one).")
	hBeUpDown         = fam(SchemeHAProxy, "haproxy_backend_check_up_down_total", Counter, proxyLabel, "Changes of the backend (virtual service or SubVS) to Down (or Sorry) by its health checks.")
	hBeClientAborts   = fam(SchemeHAProxy, "haproxy_backend_client_aborts_total", Counter, proxyLabel, "HTTP requests of the backend that ended without a complete answer because the client broke off.")
	hBeServerAborts   = fam(SchemeHAProxy, "haproxy_backend_server_aborts_total", Counter, proxyLabel, "HTTP requests of the backend that ended without a complete answer because the real server broke off or timed out while its answer was relayed.")
	hBeConnectTime    = fam(SchemeHAProxy, "haproxy_backend_connect_time_average_seconds", Gauge, proxyLabel, "Mean of the backend's real servers' moving averages of the connect time (0 before the first connection).")
	hBeAttempts       = fam(SchemeHAProxy, "haproxy_backend_connection_attempts_total", Counter, proxyLabel, "Connection attempts to the backend's real servers: established plus failed.")
	hBeReuses         = fam(SchemeHAProxy, "haproxy_backend_connection_reuses_total", Counter, proxyLabel, "HTTP requests sent to the backend's real servers on a kept (pooled) connection.")
	hBeFailedRewrite  = fam(SchemeHAProxy, "haproxy_backend_failed_header_rewriting_total", Counter, proxyLabel, "Always 0: Fulcrum's header policy cannot fail for want of buffer room.")
	hBeInternalErrors = fam(SchemeHAProxy, "haproxy_backend_internal_errors_total", Counter, proxyLabel, "Always 0: Fulcrum has no internal-error answers.")
	hBeLastSess       = fam(SchemeHAProxy, "haproxy_backend_last_session_seconds", Gauge, proxyLabel, "Seconds since the backend's last request (layer 7) or connection (layer 4), to about 1 s (counters are sampled each second); -1 before the first.")
	hBeLimitSess      = fam(SchemeHAProxy, "haproxy_backend_limit_sessions", Gauge, proxyLabel, "Always 0: a backend has no connection limit of its own in Fulcrum (the limits are the service's and each real server's).")
	hBeMaxConnect     = fam(SchemeHAProxy, "haproxy_backend_max_connect_time_seconds", Gauge, proxyLabel, "Longest connect time to one of the backend's real servers since start.")
	hBeMaxQueueTime   = fam(SchemeHAProxy, "haproxy_backend_max_queue_time_seconds", Gauge, proxyLabel, "Always 0: Fulcrum does not queue requests.")
	hBeMaxResponse    = fam(SchemeHAProxy, "haproxy_backend_max_response_time_seconds", Gauge, proxyLabel, "Longest time to a response head from the backend's real servers since start (layer 7; 0 at layer 4).")
	hBeMaxSessRate    = fam(SchemeHAProxy, "haproxy_backend_max_session_rate", Gauge, proxyLabel, "Highest rate of requests (layer 7) or connections (layer 4) of the backend over one second since start.")
	hBeMaxSess        = fam(SchemeHAProxy, "haproxy_backend_max_sessions", Gauge, proxyLabel, "Most requests (layer 7) or connections (layer 4) of the backend in progress at once since start.")
	hBeMaxTotal       = fam(SchemeHAProxy, "haproxy_backend_max_total_time_seconds", Gauge, proxyLabel, "Longest total time of one of the backend's HTTP requests since start (layer 7; 0 at layer 4).")
	hBeRedispatch     = fam(SchemeHAProxy, "haproxy_backend_redispatch_warnings_total", Counter, proxyLabel, "Attempts beyond the first made for HTTP requests: Fulcrum retries on another server, so every retry is a redispatch (as retry_warnings_total).")
	hBeReqDenied      = fam(SchemeHAProxy, "haproxy_backend_requests_denied_total", Counter, proxyLabel, "Always 0: Fulcrum has no deny rules on requests.")
	hBeRespErrors     = fam(SchemeHAProxy, "haproxy_backend_response_errors_total", Counter, proxyLabel, "Bad or missing responses of the backend's real servers.")
	hBeRespDenied     = fam(SchemeHAProxy, "haproxy_backend_responses_denied_total", Counter, proxyLabel, "Always 0: Fulcrum has no deny rules on responses.")

	hSvUpDown         = fam(SchemeHAProxy, "haproxy_server_check_up_down_total", Counter, serverLabel, "Changes of the real server to Down by its health checks.")
	hSvClientAborts   = fam(SchemeHAProxy, "haproxy_server_client_aborts_total", Counter, serverLabel, "HTTP requests to the real server that ended without a complete answer because the client broke off.")
	hSvServerAborts   = fam(SchemeHAProxy, "haproxy_server_server_aborts_total", Counter, serverLabel, "HTTP requests to the real server that ended without a complete answer because the server broke off or timed out while its answer was relayed.")
	hSvConnectTime    = fam(SchemeHAProxy, "haproxy_server_connect_time_average_seconds", Gauge, serverLabel, "Moving average of the connect time to the real server (with the TLS handshake when re-encrypting); 0 before the first.")
	hSvAttempts       = fam(SchemeHAProxy, "haproxy_server_connection_attempts_total", Counter, serverLabel, "Connection attempts to the real server: established plus failed.")
	hSvReuses         = fam(SchemeHAProxy, "haproxy_server_connection_reuses_total", Counter, serverLabel, "HTTP requests sent to the real server on a kept (pooled) connection.")
	hSvThrottle       = fam(SchemeHAProxy, "haproxy_server_current_throttle", Gauge, serverLabel, "Slow start: the percentage of its full share the real server gets now (options.slowStart): 0 when it is available and has not been given work since it came up (its ramp starts then), 100 when not ramping up or without slow start.")
	hSvFailedRewrite  = fam(SchemeHAProxy, "haproxy_server_failed_header_rewriting_total", Counter, serverLabel, "Always 0: Fulcrum's header policy cannot fail for want of buffer room.")
	hSvIdle           = fam(SchemeHAProxy, "haproxy_server_idle_connections_current", Gauge, serverLabel, "Idle kept connections to the real server in the layer-7 pools now.")
	hSvIdleLimit      = fam(SchemeHAProxy, "haproxy_server_idle_connections_limit", Gauge, serverLabel, "Most idle kept connections per real server and pool (layer 7).")
	hSvInternalErrors = fam(SchemeHAProxy, "haproxy_server_internal_errors_total", Counter, serverLabel, "Always 0: Fulcrum has no internal-error answers.")
	hSvLastSess       = fam(SchemeHAProxy, "haproxy_server_last_session_seconds", Gauge, serverLabel, "Seconds since the last connection to the real server was established, to about 1 s (counters are sampled each second); -1 before the first.")
	hSvLimitRate      = fam(SchemeHAProxy, "haproxy_server_limit_session_rate", Gauge, serverLabel, "Always 0: a real server has no connection-rate limit in Fulcrum (queried by dashboard 12693; not in HAProxy 2.6's exporter).")
	hSvMaxConnect     = fam(SchemeHAProxy, "haproxy_server_max_connect_time_seconds", Gauge, serverLabel, "Longest connect time to the real server since start.")
	hSvMaxQueueTime   = fam(SchemeHAProxy, "haproxy_server_max_queue_time_seconds", Gauge, serverLabel, "Always 0: Fulcrum does not queue requests.")
	hSvMaxResponse    = fam(SchemeHAProxy, "haproxy_server_max_response_time_seconds", Gauge, serverLabel, "Longest time to the real server's response head since start (layer 7).")
	hSvMaxSessRate    = fam(SchemeHAProxy, "haproxy_server_max_session_rate", Gauge, serverLabel, "Highest rate of connections established to the real server over one second since start.")
	hSvMaxSess        = fam(SchemeHAProxy, "haproxy_server_max_sessions", Gauge, serverLabel, "Most connections to the real server open or being dialled at once since start.")
	hSvMaxTotal       = fam(SchemeHAProxy, "haproxy_server_max_total_time_seconds", Gauge, serverLabel, "Longest total time of an HTTP request the real server answered since start.")
	hSvQueueLimit     = fam(SchemeHAProxy, "haproxy_server_queue_limit", Gauge, serverLabel, "Always 0: Fulcrum does not queue, so there is no queue limit.")
	hSvRedispatch     = fam(SchemeHAProxy, "haproxy_server_redispatch_warnings_total", Counter, serverLabel, "Attempts at the real server after which the HTTP request was tried again (on another server, or a stale kept connection on a new one).")
	hSvRetries        = fam(SchemeHAProxy, "haproxy_server_retry_warnings_total", Counter, serverLabel, "As redispatch_warnings_total: every retry after an attempt at this server.")
	hSvRespErrors     = fam(SchemeHAProxy, "haproxy_server_response_errors_total", Counter, serverLabel, "Bad or missing responses of the real server.")
	hSvRespDenied     = fam(SchemeHAProxy, "haproxy_server_responses_denied_total", Counter, serverLabel, "Always 0: Fulcrum has no deny rules on responses.")
	hSvSafeIdle       = fam(SchemeHAProxy, "haproxy_server_safe_idle_connections_current", Gauge, serverLabel, "Idle kept connections to the real server now: all are safe (any request may reuse them).")
	hSvUnsafeIdle     = fam(SchemeHAProxy, "haproxy_server_unsafe_idle_connections_current", Gauge, serverLabel, "Always 0: every kept connection of Fulcrum may be reused by any request.")
	hSvTotalTime      = fam(SchemeHAProxy, "haproxy_server_total_time_average_seconds", Gauge, serverLabel, "Moving average of the total time of the HTTP requests the real server answered; 0 before the first.")
	hSvUsed           = fam(SchemeHAProxy, "haproxy_server_used_connections_current", Gauge, serverLabel, "Connections to the real server in use (open or being dialled) now.")

	hProcActivePeers   = fam(SchemeHAProxy, "haproxy_process_active_peers", Gauge, nil, "Always 0: Fulcrum has no peers.")
	hProcConnPeers     = fam(SchemeHAProxy, "haproxy_process_connected_peers", Gauge, nil, "Always 0: Fulcrum has no peers.")
	hProcBytesOut      = fam(SchemeHAProxy, "haproxy_process_bytes_out_total", Counter, nil, "Bytes sent to clients by all services.")
	hProcCurBeKeyRate  = fam(SchemeHAProxy, "haproxy_process_current_backend_ssl_key_rate", Gauge, nil, "Full TLS handshakes with real servers (re-encryption) per second over the last second.")
	hProcMaxBeKeyRate  = fam(SchemeHAProxy, "haproxy_process_max_backend_ssl_key_rate", Gauge, nil, "Highest current_backend_ssl_key_rate since start.")
	hProcCurFeKeyRate  = fam(SchemeHAProxy, "haproxy_process_current_frontend_ssl_key_rate", Gauge, nil, "Full (not resumed) TLS handshakes with clients per second over the last second.")
	hProcMaxFeKeyRate  = fam(SchemeHAProxy, "haproxy_process_max_frontend_ssl_key_rate", Gauge, nil, "Highest current_frontend_ssl_key_rate since start.")
	hProcCurConnRate   = fam(SchemeHAProxy, "haproxy_process_current_connection_rate", Gauge, nil, "Client connections accepted by all services per second over the last second.")
	hProcMaxConnRate   = fam(SchemeHAProxy, "haproxy_process_max_connection_rate", Gauge, nil, "Highest current_connection_rate since start.")
	hProcCurSessRate   = fam(SchemeHAProxy, "haproxy_process_current_session_rate", Gauge, nil, "As current_connection_rate: Fulcrum's sessions are connections.")
	hProcMaxSessRate   = fam(SchemeHAProxy, "haproxy_process_max_session_rate", Gauge, nil, "As max_connection_rate: Fulcrum's sessions are connections.")
	hProcRunQueue      = fam(SchemeHAProxy, "haproxy_process_current_run_queue", Gauge, nil, "Goroutines ready to run (Go's /sched/goroutines/runnable).")
	hProcTasks         = fam(SchemeHAProxy, "haproxy_process_current_tasks", Gauge, nil, "Goroutines now (Go's /sched/goroutines): Fulcrum's tasks.")
	hProcCurSSLConns   = fam(SchemeHAProxy, "haproxy_process_current_ssl_connections", Gauge, nil, "Client TLS connections of TLS-offloading services open now.")
	hProcSSLTotal      = fam(SchemeHAProxy, "haproxy_process_ssl_connections_total", Counter, nil, "TLS handshakes completed with clients.")
	hProcCurSSLRate    = fam(SchemeHAProxy, "haproxy_process_current_ssl_rate", Gauge, nil, "TLS handshakes with clients per second over the last second.")
	hProcMaxSSLRate    = fam(SchemeHAProxy, "haproxy_process_max_ssl_rate", Gauge, nil, "Highest current_ssl_rate since start.")
	hProcSSLReuse      = fam(SchemeHAProxy, "haproxy_process_frontend_ssl_reuse", Gauge, nil, "Percentage of the TLS handshakes with clients that resumed a session, since start.")
	hProcSSLCacheLook  = fam(SchemeHAProxy, "haproxy_process_ssl_cache_lookups_total", Counter, nil, "Always 0: Fulcrum keeps no server-side TLS session cache; sessions resume by ticket (see frontend_ssl_reuse).")
	hProcSSLCacheMiss  = fam(SchemeHAProxy, "haproxy_process_ssl_cache_misses_total", Counter, nil, "Always 0: Fulcrum keeps no server-side TLS session cache.")
	hProcZlibCur       = fam(SchemeHAProxy, "haproxy_process_current_zlib_memory", Gauge, nil, "Always 0: Fulcrum does not compress.")
	hProcZlibMax       = fam(SchemeHAProxy, "haproxy_process_max_zlib_memory", Gauge, nil, "Always 0: Fulcrum does not compress.")
	hProcCompIn        = fam(SchemeHAProxy, "haproxy_process_http_comp_bytes_in_total", Counter, nil, "Always 0: Fulcrum does not compress.")
	hProcCompOut       = fam(SchemeHAProxy, "haproxy_process_http_comp_bytes_out_total", Counter, nil, "Always 0: Fulcrum does not compress.")
	hProcLimitComp     = fam(SchemeHAProxy, "haproxy_process_limit_http_comp", Gauge, nil, "Always 0: Fulcrum does not compress.")
	hProcDroppedLogs   = fam(SchemeHAProxy, "haproxy_process_dropped_logs_total", Counter, nil, "Access log lines and syslog messages lost (queues full, writes failed).")
	hProcRecvLogs      = fam(SchemeHAProxy, "haproxy_process_recv_logs_total", Counter, nil, "Always 0: Fulcrum receives no logs.")
	hProcFailedResolv  = fam(SchemeHAProxy, "haproxy_process_failed_resolutions", Gauge, nil, "Always 0: Fulcrum resolves no names while it runs (real servers are addresses). A gauge where HAProxy has a counter: promtool wants a counter named _total.")
	hProcIdle          = fam(SchemeHAProxy, "haproxy_process_idle_time_percent", Gauge, nil, "Percentage of the CPUs Fulcrum may use (GOMAXPROCS) that it left idle since the previous scrape (from the process's CPU time).")
	hProcJobs          = fam(SchemeHAProxy, "haproxy_process_jobs", Gauge, nil, "Listening sockets, client TCP connections and UDP sessions now.")
	hProcUnstoppable   = fam(SchemeHAProxy, "haproxy_process_unstoppable_jobs", Gauge, nil, "Always 0: every job of Fulcrum stops with it.")
	hProcListeners     = fam(SchemeHAProxy, "haproxy_process_listeners", Gauge, nil, "Listening sockets of the services open now.")
	hProcLimitConnRate = fam(SchemeHAProxy, "haproxy_process_limit_connection_rate", Gauge, nil, "Always 0: Fulcrum has no process-wide connection-rate limit (services have connsPerSec).")
	hProcLimitSessRate = fam(SchemeHAProxy, "haproxy_process_limit_session_rate", Gauge, nil, "Always 0: Fulcrum has no process-wide session-rate limit.")
	hProcLimitSSLRate  = fam(SchemeHAProxy, "haproxy_process_limit_ssl_rate", Gauge, nil, "Always 0: Fulcrum has no TLS handshake rate limit.")
	hProcMaxMemory     = fam(SchemeHAProxy, "haproxy_process_max_memory_bytes", Gauge, nil, "The Go memory limit (GOMEMLIMIT); 0 when unlimited.")
	hProcMaxPipes      = fam(SchemeHAProxy, "haproxy_process_max_pipes", Gauge, nil, "Always 0: Fulcrum holds no pipes of its own; the Go runtime's splice pipes are not observable (bytes moved: spliced_bytes_out_total).")
	hProcPipesFree     = fam(SchemeHAProxy, "haproxy_process_pipes_free_total", Counter, nil, "Always 0: Fulcrum holds no pipes of its own.")
	hProcPipesUsed     = fam(SchemeHAProxy, "haproxy_process_pipes_used_total", Counter, nil, "Always 0: Fulcrum holds no pipes of its own.")
	hProcMaxSockets    = fam(SchemeHAProxy, "haproxy_process_max_sockets", Gauge, nil, "The process's descriptor limit.")
	hProcMaxSSLConns   = fam(SchemeHAProxy, "haproxy_process_max_ssl_connections", Gauge, nil, "Always 0: Fulcrum has no limit on TLS connections of its own (the connection ceiling applies).")
	hProcPoolAlloc     = fam(SchemeHAProxy, "haproxy_process_pool_allocated_bytes", Gauge, nil, "Go heap memory held (objects, free and unused heap spans not given back).")
	hProcPoolUsed      = fam(SchemeHAProxy, "haproxy_process_pool_used_bytes", Gauge, nil, "Go heap memory in live and unswept objects.")
	hProcPoolFailures  = fam(SchemeHAProxy, "haproxy_process_pool_failures_total", Counter, nil, "Always 0: a failed allocation ends a Go program; there is nothing to count.")
	hProcSplicedOut    = fam(SchemeHAProxy, "haproxy_process_spliced_bytes_out_total", Counter, nil, "Bytes layer-4 services moved with splice(2) (bulk copies), counted when each copy ends.")
	hProcStopping      = fam(SchemeHAProxy, "haproxy_process_stopping", Gauge, nil, "1 while Fulcrum stops, else 0.")
)

var moreFamilies = []*Family{
	hFeMaxSess, hFeMaxSessRate, hFeConnRateMax, hFeReqRateMax, hFeReqErrors, hFeDeniedSess, hFeFailedRewrite,
	hFeInternalErrors, hFeReqDenied, hFeRespDenied,
	hBeBackup, hBeUpDown, hBeClientAborts, hBeServerAborts, hBeConnectTime, hBeAttempts, hBeReuses, hBeFailedRewrite,
	hBeInternalErrors, hBeLastSess, hBeLimitSess, hBeMaxConnect, hBeMaxQueueTime, hBeMaxResponse, hBeMaxSessRate,
	hBeMaxSess, hBeMaxTotal, hBeRedispatch, hBeReqDenied, hBeRespErrors, hBeRespDenied,
	hSvUpDown, hSvClientAborts, hSvServerAborts, hSvConnectTime, hSvAttempts, hSvReuses, hSvThrottle, hSvFailedRewrite,
	hSvIdle, hSvIdleLimit, hSvInternalErrors, hSvLastSess, hSvLimitRate, hSvMaxConnect, hSvMaxQueueTime, hSvMaxResponse,
	hSvMaxSessRate, hSvMaxSess, hSvMaxTotal, hSvQueueLimit, hSvRedispatch, hSvRetries, hSvRespErrors, hSvRespDenied,
	hSvSafeIdle, hSvUnsafeIdle, hSvTotalTime, hSvUsed,
	hProcActivePeers, hProcConnPeers, hProcBytesOut, hProcCurBeKeyRate, hProcMaxBeKeyRate, hProcCurFeKeyRate,
	hProcMaxFeKeyRate, hProcCurConnRate, hProcMaxConnRate, hProcCurSessRate, hProcMaxSessRate, hProcRunQueue, hProcTasks,
	hProcCurSSLConns, hProcSSLTotal, hProcCurSSLRate, hProcMaxSSLRate, hProcSSLReuse, hProcSSLCacheLook, hProcSSLCacheMiss,
	hProcZlibCur, hProcZlibMax, hProcCompIn, hProcCompOut, hProcLimitComp, hProcDroppedLogs, hProcRecvLogs,
	hProcFailedResolv, hProcIdle, hProcJobs, hProcUnstoppable, hProcListeners, hProcLimitConnRate, hProcLimitSessRate,
	hProcLimitSSLRate, hProcMaxMemory, hProcMaxPipes, hProcPipesFree, hProcPipesUsed, hProcMaxSockets, hProcMaxSSLConns,
	hProcPoolAlloc, hProcPoolUsed, hProcPoolFailures, hProcSplicedOut, hProcStopping,
}

func init() { families = append(families, moreFamilies...) }

// zero sends 0 on each of fams, families Fulcrum has nothing for.
func (s *scrape) zero(fams []*Family, lv ...string) {
	for _, f := range fams {
		s.put(f, 0, lv...)
	}
}

// since returns the seconds from t to now, or -1 when t is zero.
func since(now, t time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return max(now.Sub(t).Seconds(), 0)
}

// frontendMore sends the frontend families of haproxy_more.go.
func (s *scrape) frontendMore(v *status.VS, proxy string) {
	s.put(hFeMaxSess, float64(v.Peaks.MaxConns), proxy)
	s.put(hFeMaxSessRate, v.Peaks.MaxConnRate, proxy)
	s.put(hFeConnRateMax, v.Peaks.MaxConnRate, proxy)
	s.zero([]*Family{hFeDeniedSess, hFeFailedRewrite, hFeInternalErrors, hFeReqDenied, hFeRespDenied}, proxy)
	if v.L7 != nil {
		s.put(hFeReqRateMax, v.L7.HTTP.MaxRequestRate, proxy)
		s.put(hFeReqErrors, float64(v.L7.HTTP.RequestErrors), proxy)
	}
}

// backendInfo is what a backend's families need beyond its real servers
// and request counters.
type backendInfo struct {
	upDown   int64
	maxSess  int64
	maxRate  float64
	lastSess time.Time
}

// backendMore sends the backend families of haproxy_more.go.
func (s *scrape) backendMore(proxy string, rss []status.RS, h *status.HTTP, bi backendInfo) {
	var attempts, reuses, respErrors int64
	var connSum float64
	var connN int
	var maxConnect, maxResponse, maxTotal time.Duration
	for i := range rss {
		rs := &rss[i]
		attempts += rs.TotalConns + rs.Failures
		reuses += rs.Reuses
		respErrors += rs.ResponseErrors
		if rs.Times.Connect > 0 {
			connSum += rs.Times.Connect.Seconds()
			connN++
		}
		maxConnect = max(maxConnect, rs.Times.MaxConnect)
		maxResponse = max(maxResponse, rs.Times.MaxResponse)
		maxTotal = max(maxTotal, rs.Times.MaxTotal)
	}
	ct := 0.0
	if connN > 0 {
		ct = connSum / float64(connN)
	}
	s.put(hBeUpDown, float64(bi.upDown), proxy)
	s.put(hBeConnectTime, ct, proxy)
	s.put(hBeAttempts, float64(attempts), proxy)
	s.put(hBeReuses, float64(reuses), proxy)
	s.put(hBeLastSess, since(s.now, bi.lastSess), proxy)
	s.put(hBeMaxConnect, maxConnect.Seconds(), proxy)
	s.put(hBeMaxSessRate, bi.maxRate, proxy)
	s.put(hBeMaxSess, float64(bi.maxSess), proxy)
	s.put(hBeRespErrors, float64(respErrors), proxy)
	s.zero([]*Family{hBeBackup, hBeFailedRewrite, hBeInternalErrors, hBeLimitSess, hBeMaxQueueTime, hBeReqDenied, hBeRespDenied}, proxy)
	if h == nil {
		s.put(hBeMaxResponse, 0, proxy)
		s.put(hBeMaxTotal, 0, proxy)
		return
	}
	s.put(hBeMaxResponse, max(h.MaxTTFB, maxResponse).Seconds(), proxy)
	s.put(hBeMaxTotal, max(h.MaxDuration, maxTotal).Seconds(), proxy)
	s.put(hBeClientAborts, float64(h.ClientAborts), proxy)
	s.put(hBeServerAborts, float64(h.ServerAborts), proxy)
	s.put(hBeRedispatch, float64(h.Retries), proxy)
}

// throttle is the percentage of its share a real server gets under slow
// start: linear from 0 when it became available to 100 after slowStart.
// The pickers start a server's ramp when they first see it available (at
// the first connection or request after it came up), so an available
// server without a start yet is at 0: its next pick starts at the bottom.
func throttle(now time.Time, rs *status.RS, slowStart time.Duration) float64 {
	if slowStart <= 0 {
		return 100
	}
	if rs.AvailableSince.IsZero() {
		switch rs.Status {
		case status.Up, status.Unchecked, status.Unknown:
			return 0
		}
		return 100
	}
	el := now.Sub(rs.AvailableSince)
	if el >= slowStart {
		return 100
	}
	return math.Max(0, 100*el.Seconds()/slowStart.Seconds())
}

// serverMore sends the server families of haproxy_more.go.
func (s *scrape) serverMore(proxy, server string, rs *status.RS, http bool) {
	s.put(hSvUpDown, float64(rs.UpDown), proxy, server)
	s.put(hSvConnectTime, rs.Times.Connect.Seconds(), proxy, server)
	s.put(hSvAttempts, float64(rs.TotalConns+rs.Failures), proxy, server)
	s.put(hSvThrottle, throttle(s.now, rs, s.slowStart), proxy, server)
	s.put(hSvLastSess, since(s.now, rs.Peaks.LastConn), proxy, server)
	s.put(hSvMaxConnect, rs.Times.MaxConnect.Seconds(), proxy, server)
	s.put(hSvMaxSessRate, rs.Peaks.MaxConnRate, proxy, server)
	s.put(hSvMaxSess, float64(rs.Peaks.MaxConns), proxy, server)
	s.put(hSvUsed, float64(rs.ActiveConns), proxy, server)
	s.zero([]*Family{hSvFailedRewrite, hSvInternalErrors, hSvLimitRate, hSvMaxQueueTime, hSvQueueLimit, hSvRespDenied, hSvUnsafeIdle}, proxy, server)
	if !http {
		return
	}
	s.put(hSvClientAborts, float64(rs.ClientAborts), proxy, server)
	s.put(hSvServerAborts, float64(rs.ServerAborts), proxy, server)
	s.put(hSvReuses, float64(rs.Reuses), proxy, server)
	s.put(hSvIdle, float64(rs.IdleConns), proxy, server)
	s.put(hSvSafeIdle, float64(rs.IdleConns), proxy, server)
	s.put(hSvIdleLimit, l7.MaxIdlePerServer, proxy, server)
	s.put(hSvMaxResponse, rs.Times.MaxResponse.Seconds(), proxy, server)
	s.put(hSvMaxTotal, rs.Times.MaxTotal.Seconds(), proxy, server)
	s.put(hSvTotalTime, rs.Times.Total.Seconds(), proxy, server)
	s.put(hSvRedispatch, float64(rs.Redispatches), proxy, server)
	s.put(hSvRetries, float64(rs.Redispatches), proxy, server)
	s.put(hSvRespErrors, float64(rs.ResponseErrors), proxy, server)
}

// cpuClock measures the process's CPU time between scrapes.
type cpuClock struct {
	mu   sync.Mutex
	wall time.Time
	cpu  time.Duration
	idle float64
}

// idlePercent returns the share of GOMAXPROCS CPUs the process left idle
// since the previous call (100 at the first).
func (c *cpuClock) idlePercent(now time.Time, procs int) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall.IsZero() {
		c.idle = 100
	} else if wall := now.Sub(c.wall); wall > 0 && procs > 0 {
		busy := float64(cpu-c.cpu) / (float64(wall) * float64(procs))
		c.idle = 100 * math.Min(math.Max(1-busy, 0), 1)
	}
	c.wall, c.cpu = now, cpu
	return c.idle
}

// runtimeSamples are the Go runtime metrics the process families read.
var runtimeSampleNames = []string{
	"/sched/goroutines:goroutines",
	"/sched/goroutines/runnable:goroutines",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

// processMore sends the process families of haproxy_more.go.
func (c *Collector) processMore(s *scrape, lim status.Limits, bytesOut int64, procs int) {
	p := lim.Process
	s.put(hProcBytesOut, float64(bytesOut))
	s.put(hProcCurBeKeyRate, p.ServerKeyRate)
	s.put(hProcMaxBeKeyRate, p.MaxServerKeyRate)
	s.put(hProcCurFeKeyRate, p.ClientKeyRate)
	s.put(hProcMaxFeKeyRate, p.MaxClientKeyRate)
	s.put(hProcCurConnRate, p.ConnRate)
	s.put(hProcMaxConnRate, p.MaxConnRate)
	s.put(hProcCurSessRate, p.ConnRate)
	s.put(hProcMaxSessRate, p.MaxConnRate)
	s.put(hProcCurSSLConns, float64(p.TLSConns))
	s.put(hProcSSLTotal, float64(p.TLSHandshakes))
	s.put(hProcCurSSLRate, p.TLSRate)
	s.put(hProcMaxSSLRate, p.MaxTLSRate)
	reuse := 0.0
	if p.TLSHandshakes > 0 {
		reuse = 100 * float64(p.TLSResumed) / float64(p.TLSHandshakes)
	}
	s.put(hProcSSLReuse, reuse)
	s.put(hProcListeners, float64(p.Listeners))
	s.put(hProcJobs, float64(int64(p.Listeners)+lim.Conns+int64(lim.UDPSessions)))
	s.put(hProcMaxSockets, float64(lim.Budget.Limit))
	s.put(hProcSplicedOut, float64(p.SplicedBytes))
	var dropped int64
	if c.pipe != nil {
		pl := c.pipe()
		dropped = int64(pl.AccessDropped)
		for _, h := range pl.Syslog {
			dropped += h.Dropped
		}
	}
	s.put(hProcDroppedLogs, float64(dropped))
	stopping := false
	if c.stopping != nil {
		stopping = c.stopping()
	}
	s.put(hProcStopping, boolf(stopping))
	s.put(hProcIdle, c.cpu.idlePercent(s.now, procs))
	mem := debug.SetMemoryLimit(-1)
	if mem == math.MaxInt64 {
		mem = 0
	}
	s.put(hProcMaxMemory, float64(mem))
	samples := make([]metrics.Sample, len(runtimeSampleNames))
	for i, n := range runtimeSampleNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	u := func(i int) float64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return math.NaN()
		}
		return float64(samples[i].Value.Uint64())
	}
	s.put(hProcTasks, u(0))
	s.put(hProcRunQueue, u(1))
	s.put(hProcPoolUsed, u(2))
	s.put(hProcPoolAlloc, u(2)+u(3)+u(4))
	s.zero([]*Family{hProcActivePeers, hProcConnPeers, hProcSSLCacheLook, hProcSSLCacheMiss, hProcZlibCur, hProcZlibMax,
		hProcCompIn, hProcCompOut, hProcLimitComp, hProcRecvLogs, hProcFailedResolv, hProcUnstoppable,
		hProcLimitConnRate, hProcLimitSessRate, hProcLimitSSLRate, hProcMaxPipes, hProcPipesFree, hProcPipesUsed,
		hProcMaxSSLConns, hProcPoolFailures})
}
