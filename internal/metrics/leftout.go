package metrics

import "strings"

// leftOutRules say why a family of HAProxy's exporter is not exposed under
// haproxyNames: Fulcrum has nothing that would fill it truthfully. The
// first rule whose fragment the name contains applies.
var leftOutRules = []struct{ fragment, reason string }{
	{"_agg_", "aggregates of server and check states new in HAProxy 2.6; use haproxy_server_status"},
	{"haproxy_process_", "a HAProxy process internal (memory pools, SSL, compression, pipes, tasks, peers, logs) with no Fulcrum equivalent; Go's and the process's own families (go_*, process_*) are exposed instead"},
	{"max_", "Fulcrum keeps no maxima of sessions, rates, queues or times"},
	{"_rate_max", "Fulcrum keeps no maxima of rates"},
	{"check_up_down", "Fulcrum counts failed checks (check_failures_total), not transitions; transitions are events (GET /api/v1/events)"},
	{"check_last_change", "Fulcrum keeps no time of the last transition in its counters; see the events"},
	{"downtime", "Fulcrum keeps no downtime total"},
	{"last_session", "Fulcrum keeps no time of the last session"},
	{"check_status", "Fulcrum's health checks do not have HAProxy's check result codes; see fulcrum_rs_status and the reason in the status API"},
	{"check_code", "Fulcrum's health checks do not report the check's HTTP code as a metric"},
	{"client_aborts", "Fulcrum counts aborted requests without telling who broke off (fulcrum_vs_aborted_total)"},
	{"server_aborts", "Fulcrum counts aborted requests without telling who broke off (fulcrum_vs_aborted_total)"},
	{"haproxy_server_retry_warnings", "Fulcrum counts retries per request (backend retry_warnings_total), not per real server"},
	{"redispatch", "Fulcrum's retries may go to any real server; all are counted in retry_warnings_total"},
	{"denied", "Fulcrum has no deny rules on requests or responses; connections refused at a limit are frontend denied_connections_total"},
	{"intercepted", "Fulcrum does not count the answers it makes itself apart from proxy errors (fulcrum_vs_proxy_errors_total)"},
	{"request_errors", "Fulcrum does not count malformed requests apart"},
	{"response_errors", "Fulcrum does not count malformed responses apart (they are aborted requests)"},
	{"internal_errors", "Fulcrum has no internal-error counter"},
	{"failed_header_rewriting", "Fulcrum's header policy cannot fail for want of buffer room; there is nothing to count"},
	{"connection_attempts", "Fulcrum counts established and failed connections, not attempts apart"},
	{"connection_reuses", "Fulcrum does not count reuses of pooled connections"},
	{"idle_connections", "Fulcrum does not expose its idle connection pool"},
	{"_connections_current", "Fulcrum does not expose its idle connection pool"},
	{"connect_time_average", "Fulcrum has no separate connect-time average at layer 7"},
	{"total_time_average", "no per-server total-time average; the backend's comes from the duration histogram"},
	{"backup_servers", "Fulcrum has no backup servers (a sorry server is not counted as one)"},
	{"loadbalanced", "Fulcrum does not count picks apart from connections and requests"},
	{"current_throttle", "Fulcrum's slow start is not exposed as a throttle percentage"},
	{"queue_limit", "Fulcrum does not queue, so there is no queue limit"},
	{"limit_sessions", "a backend has no connection limit of its own in Fulcrum"},
	{"_session_rate", "Fulcrum keeps no session rates per backend or server; use rate() on sessions_total"},
}

// LeftOutReason says why the HAProxy exporter family name is not exposed,
// or "" when Fulcrum exposes it (or no rule names it).
func LeftOutReason(name string) string {
	for _, f := range families {
		if f.Name == name {
			return ""
		}
	}
	for _, r := range leftOutRules {
		if strings.Contains(name, r.fragment) {
			return r.reason
		}
	}
	return ""
}
