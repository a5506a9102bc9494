package metrics

import "strings"

// leftOutRules say why a family of HAProxy's exporter is not exposed under
// haproxyNames: Fulcrum has nothing that would fill it truthfully. The
// first rule whose fragment the name contains applies.
var leftOutRules = []struct{ fragment, reason string }{
	{"_agg_", "aggregates of server and check states new in HAProxy 2.6, not queried by dashboard 12693; use haproxy_server_status"},
	{"check_last_change", "not done yet: the health monitor keeps when a status changed (status API since) but it is not exported; see the events"},
	{"downtime", "not done yet: Fulcrum does not add up Down time; see the events"},
	{"loadbalanced", "Fulcrum does not count picks apart from connections and requests"},
	{"intercepted", "Fulcrum does not count the answers it makes itself apart from proxy errors (fulcrum_vs_proxy_errors_total) and request errors (haproxy_frontend_request_errors_total)"},
	{"busy_polling", "HAProxy's busy polling option; Go's scheduler has none"},
	{"bytes_out_rate", "use rate() on haproxy_process_bytes_out_total"},
	{"relative_process_id", "HAProxy's process number among several; Fulcrum is one process"},
	{"check_code", "not done yet: Fulcrum's HTTP checks do not keep the last status code apart from the reason text"},
	{"check_status", "Fulcrum's health checks do not have HAProxy's check result codes; see fulcrum_rs_status and the reason in the status API"},
	{"need_connections", "HAProxy's estimate of connections needed for its idle pool; Fulcrum's pool keeps what comes back"},
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
