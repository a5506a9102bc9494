package kempapi

import (
	"regexp"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// fieldNames maps the tail of a configuration path (without list indexes)
// to the LoadMaster parameter a client sets it with, so that a validation
// error names what the client sent: "PersistTimeout: must be 0-2419200".
var fieldNames = []struct{ suffix, name string }{
	{"contentRules.name", "name"},
	{"contentRules.type", "type"},
	{"contentRules.matchType", "matchtype"},
	{"contentRules.match", "header"},
	{"contentRules.header", "header"},
	{"contentRules.pattern", "pattern"},
	{"contentRules.replacement", "replacement"},
	{"contentRules.setFlag", "setonmatch"},
	{"contentRules.onlyOnFlag", "onlyonflag"},
	{"contentRules.onlyOnNoFlag", "onlyonnoflag"},
	{"contentRules", "name"},
	{"http.selectRules", "rule"},
	{"http.preRules", "rule"},
	{"http.requestRules", "rule"},
	{"http.responseRules", "rule"},
	{"http", "VStype"},
	{"network.interfaces.addresses", "addr"},
	{"network.interfaces.vipRanges", "addr"},
	{"network.interfaces.mtu", "mtu"},
	{"network.interfaces.vlan", "vlanid"},
	{"network.interfaces.name", "interface"},
	{"network.interfaces.parent", "interface"},
	{"network.interfaces", "interface"},
	{"network.routes.destination", "dest"},
	{"network.routes.gateway", "gateway"},
	{"network.routes", "dest"},
	{"network.gateway", "dfltgw"},
	{"network.gateway6", "dfltgwv6"},
	{"network.dns.servers", "nameserver"},
	{"network.dns.search", "searchlist"},
	{"network.hostname", "hostname"},
	{"realServers.address", "rs"},
	{"realServers.port", "rsport"},
	{"realServers.weight", "weight"},
	{"realServers.limit", "limit"},
	{"realServers.follow", "follow"},
	{"realServers.id", "rs"},
	{"realServers", "rs"},
	{"persistence.mode", "Persist"},
	{"persistence.timeout", "PersistTimeout"},
	{"persistence.cookie", "Cookie"},
	{"persistence.queryTag", "QueryTag"},
	{"persistence.mask", "PersistMask"},
	{"sorryServer.address", "StandbyAddr"},
	{"sorryServer.port", "StandbyPort"},
	{"limits.maxConns", "MaxConnsLimit"},
	{"limits.connsPerSec", "ConnsPerSecLimit"},
	{"limits.requestsPerSec", "RequestsPerSecLimit"},
	{"limits.bandwidth", "Bandwidth"},
	{"tls.offload", "SSLAcceleration"},
	{"tls.reencrypt", "SSLReencrypt"},
	{"tls.certificates", "CertFile"},
	{"tls.profile", "TLSType"},
	{"healthCheck.type", "CheckType"},
	{"healthCheck.port", "CheckPort"},
	{"healthCheck.url", "CheckUrl"},
	{"healthCheck.method", "CheckUseGet"},
	{"healthCheck.host", "CheckHost"},
	{"healthCheck.headers", "CheckHeaders"},
	{"healthCheck.postData", "CheckPostData"},
	{"healthCheck.codes", "CheckCodes"},
	{"healthCheck.pattern", "CheckPattern"},
	{"healthCheck.interval", "ChkInterval"},
	{"healthCheck.timeout", "ChkTimeout"},
	{"healthCheck.retryCount", "ChkRetryCount"},
	{"healthCheck.minUp", "RsMinimum"},
	{"subVSs", "createsubvs"},
	{"options.drainTime", "finalpersist"},
	{"options.connTimeout", "conntimeout"},
	{"options.alwaysPersist", "alwayspersist"},
	{"options.slowStart", "slowstart"},
	{"options.health.interval", "RetryInterval"},
	{"options.health.timeout", "Timeout"},
	{"options.health.retryCount", "RetryCount"},
	{"options.adminLockout.minPassword", "minpassword"},
	{"options.adminLockout.sessionIdle", "sessionidletime"},
	{"options.adminLockout.attempts", "sessionmaxfailattempts"},
	{"options.adaptive.url", "AdaptiveURL"},
	{"options.adaptive.port", "AdaptivePort"},
	{"options.adaptive.interval", "AdaptiveInterval"},
	{"options.adaptive.minPercent", "MinPercent"},
	{"options.logging.syslog.address", "syslog host"},
	{"options.logging.syslog.port", "syslogport"},
	{"options.logging.syslog.protocol", "syslogprot"},
	{"options.logging.syslog", "syslog hosts"},
	{"options.alerts.email.server", "emailserver"},
	{"options.alerts.email.port", "emailport"},
	{"options.alerts.email.user", "emailuser"},
	{"options.alerts.email.password", "emailpassword"},
	{"options.alerts.email.from", "emaildomain"},
	{"options.alerts.email.to", "email recipients"},
	{"options.alerts.email.security", "emailsslmode"},
	{"certificates.name", "cert"},
	{"certificates.certPem", "cert"},
	{"certificates.keyPem", "cert"},
	{"nickname", "NickName"},
	{"address", "vs"},
	{"port", "port"},
	{"extraPorts", "ExtraPorts"},
	{"protocol", "prot"},
	{"type", "VStype"},
	{"enabled", "Enable"},
	{"schedule", "Schedule"},
	{"idleTimeout", "Idletime"},
	{"transparent", "Transparent"},
	{"subnetOriginating", "SubnetOriginating"},
	{"defaultGateway", "DefaultGW"},
	{"followVsId", "FollowVSID"},
	{"addVia", "AddVia"},
	{"name", "user"},
	{"password", "password"},
	{"role", "perms"},
	{"description", "description"},
}

var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

// lmName returns the LoadMaster parameter for a configuration path, or ""
// when the path names a whole object.
func lmName(path string) string {
	bare := indexRE.ReplaceAllString(path, "")
	for _, f := range fieldNames {
		if bare == f.suffix || strings.HasSuffix(bare, "."+f.suffix) {
			return f.name
		}
	}
	if bare == "virtualServices" || strings.HasSuffix(bare, "virtualServices") || strings.HasSuffix(bare, "subVSs") {
		return ""
	}
	return path
}

// describeFieldErrors renders validation errors as one LoadMaster-style
// error text, each problem prefixed with the parameter it concerns; the
// messages are config.Validate's own.
func describeFieldErrors(es config.Errors) string {
	parts := make([]string, 0, len(es))
	seen := map[string]bool{}
	for _, e := range es {
		msg := e.Message
		if n := lmName(e.Path); n != "" {
			msg = n + ": " + msg
		}
		if !seen[msg] {
			seen[msg] = true
			parts = append(parts, msg)
		}
	}
	return strings.Join(parts, "; ")
}
