// Package config is Fulcrum's configuration model: virtual services, real
// servers, certificates and global options, their defaults, and Validate,
// which reports every problem at once with the path of the offending field.
//
// The package is pure: no I/O, no goroutines. A *Config that has passed
// Validate is treated as immutable by every other package; changes are made
// on a Clone and go through the control package's single write path.
//
// Field names follow Kemp LoadMaster's vocabulary (Schedule, Persist,
// Idletime, SubnetOriginating, ...) in camelCase so that the LoadMaster
// compatible API maps onto the model one to one.
package config

// SchemaVersion is the version of the configuration document format. It is
// written into every exported document and checked on import.
const SchemaVersion = 1

// Config is one complete generation of Fulcrum's configuration.
type Config struct {
	// SchemaVersion is the document format version; 0 on input means the
	// current SchemaVersion. Default: SchemaVersion.
	SchemaVersion int `json:"schemaVersion"`
	// Options are the appliance-wide settings (LoadMaster's System
	// Configuration > Miscellaneous Options). Default: see DefaultOptions.
	Options Options `json:"options"`
	// VirtualServices are the services clients connect to, in index order.
	// Default: none.
	VirtualServices []VirtualService `json:"virtualServices"`
	// Certificates are the imported TLS certificates and intermediates that
	// virtual services refer to by name. Default: none.
	Certificates []Certificate `json:"certificates,omitempty"`
	// ContentRules are the named layer-7 rules (LoadMaster content rules)
	// that http services refer to for SubVS selection and header and URL
	// changes; at most 1024. Default: none.
	ContentRules []ContentRule `json:"contentRules,omitempty"`
}

// Options are the global settings of the appliance.
type Options struct {
	// SNAT enables Server NAT: connections that real servers originate
	// towards the outside, routed through the appliance, are source-NATed
	// to the VIP of the first service (by ID) that uses the real server
	// (LoadMaster "Enable Server NAT", API `snat`). Applied with nftables
	// rules in a table Fulcrum owns, so it needs Fulcrum to manage the
	// host's network (CAP_NET_ADMIN) and the real servers to use the
	// appliance as their gateway; otherwise each service with real
	// servers says "not applied: SNAT …" in its status. Default: false.
	SNAT bool `json:"snat"`
	// SubnetOriginating makes server-side connections of non-transparent
	// services leave from the appliance's own address on the real server's
	// subnet (the kernel's source address on the route to it) instead of
	// the VIP, for every service whatever its own setting (API
	// `subnetorigin`). Needs no privilege. Default: false.
	SubnetOriginating bool `json:"subnetOriginating"`
	// DropOnFail closes the connections to a real server as soon as it goes
	// Down or is disabled, so clients reconnect elsewhere ("Drop Connections on
	// RS failure", API `droponfail`). Default: false.
	DropOnFail bool `json:"dropOnFail"`
	// DropAtDrainEnd closes the connections still open on a drained real
	// server when the drain time ends (API `dropatdrainend`). Default: false.
	DropAtDrainEnd bool `json:"dropAtDrainEnd"`
	// DrainTime is the L7 connection drain time in seconds: a disabled or
	// failed real server gets no new connections while existing ones finish
	// for at most this long (API `finalpersist`); 0 or 60-86400. Default: 0.
	DrainTime int `json:"drainTime"`
	// ConnTimeout is the global L7 connection (idle) timeout in seconds used by
	// services whose Idletime is 0 (API `conntimeout`); 0 means 660. 0-86400.
	// Default: 660.
	ConnTimeout int `json:"connTimeout"`
	// AlwaysPersist selects when persistence is checked on HTTP/1.1
	// keep-alive connections (API `alwayspersist`): "no" only the first
	// request, "yes" every request, "accept-changes" every request and the
	// entry follows the new pick. Default: "no".
	AlwaysPersist string `json:"alwaysPersist"`
	// SlowStart is the time in seconds over which a recovered or newly added
	// real server ramps up to its full share (API `slowstart`); 0-600.
	// Default: 0.
	SlowStart int `json:"slowStart"`
	// Health holds the global health-check timers used where a service does
	// not override them. Default: see DefaultHealthTimers.
	Health HealthTimers `json:"health"`
	// ThroughputLimit caps the total data-plane throughput in Mbit/s, each
	// direction on its own, for all services together: layer-4 TCP and
	// layer-7 (http, http2, TLS included) connections are shaped (a shaped
	// connection is copied through user space, not spliced), UDP datagrams
	// over the rate are dropped; hits are counted in each service's
	// `limitHits.throughput`. 0 means unlimited (no cost). Default: 0.
	ThroughputLimit int `json:"throughputLimit"`
	// EnableAPI turns on the LoadMaster-compatible API (/access and
	// /accessv2), which is off until an administrator enables it, as on a
	// LoadMaster (API `enableapi`). Default: false.
	EnableAPI bool `json:"enableApi"`
	// AdminLockout holds the login lockout policy of the admin plane.
	// Default: see DefaultLockout.
	AdminLockout Lockout `json:"adminLockout"`
	// Adaptive holds the agent settings of the adaptive scheduling method
	// (LoadMaster showadaptive/modadaptive). Default: see DefaultAdaptive.
	Adaptive Adaptive `json:"adaptive"`
	// APIRateLimit is the number of LoadMaster-API calls one client address
	// (IPv6: /64) may make in 3 seconds, as on a LoadMaster; further calls
	// are answered 429 with Retry-After. 0 means 30. 0-10000. Default: 0.
	APIRateLimit int `json:"apiRateLimit,omitempty"`
	// Metrics are the settings of the Prometheus exposition (GET
	// /metrics). Default: Fulcrum's names only.
	Metrics Metrics `json:"metrics"`
	// Logging says where events (remote syslog) and access logs go.
	// Default: nowhere but the process's own log.
	Logging Logging `json:"logging"`
	// Alerts are the e-mail and webhook alerts and the certificate expiry
	// warning. Default: none; certificates warned 30 days ahead.
	Alerts Alerts `json:"alerts"`
}

// Adaptive are the settings of the agent that real servers of services
// with the adaptive scheduling method run.
type Adaptive struct {
	// URL is the path Fulcrum requests on each real server; the answer is
	// the server's load in percent. Default: "/load".
	URL string `json:"url"`
	// Port is the agent's port. 1-65535; 0 means the default. Default: 80.
	Port int `json:"port"`
	// Interval is the time between two polls in seconds; 1-600; 0 means the
	// default. Default: 7.
	Interval int `json:"interval"`
	// MinPercent is the load below which servers are treated as equally
	// idle; 1-50, and 0 means the default (so no minimum cannot be set: use
	// 1). Default: 5.
	MinPercent int `json:"minPercent"`
}

// HealthTimers are health-check timing values in seconds.
type HealthTimers struct {
	// Interval is the time between two checks of one real server (LoadMaster
	// `RetryInterval`); 9-901; 0 means the default. Default: 9.
	Interval int `json:"interval"`
	// Timeout is how long one check may take before it fails; 4-60; 0 means
	// the default. Default: 4.
	Timeout int `json:"timeout"`
	// RetryCount is the number of consecutive failures that mark a real
	// server Down; 2-15; 0 means the default. Default: 2.
	RetryCount int `json:"retryCount"`
	// RiseCount is the number of consecutive successes that bring a Down real
	// server back Up (Fulcrum extension against flapping); 1-15; 0 means the
	// default. Default: 1.
	RiseCount int `json:"riseCount"`
	// PassiveFailures is the number of consecutive failures of live
	// traffic to a real server (a layer-4 or UDP dial that failed; at layer
	// 7 a connection that failed, a timeout, no answer or a malformed one —
	// not a 5xx answer) that mark it Down until its active check passes
	// again (Fulcrum extension); 0-100, 0 turns passive checks off.
	// Default: 0.
	PassiveFailures int `json:"passiveFailures,omitempty"`
}

// Lockout is the admin-plane brute-force policy.
type Lockout struct {
	// Attempts is the number of consecutive failed logins for one account
	// from one source address that triggers the cool-down; 1-100; 0 means
	// the default. Default: 3.
	Attempts int `json:"attempts"`
	// CoolDown is the cool-down in seconds during which that account cannot
	// log in from that source; 1-86400; 0 means the default. Default: 600.
	CoolDown int `json:"coolDown"`
	// SessionIdle is the idle timeout of browser sessions in seconds;
	// 60-86400; 0 means the default. Default: 900.
	SessionIdle int `json:"sessionIdle"`
	// SessionMax is the absolute lifetime of browser sessions in seconds;
	// 300-604800; 0 means the default. Default: 43200.
	SessionMax int `json:"sessionMax"`
	// MinPassword is the minimum password length; 8-64; 0 means the default.
	// Default: 12.
	MinPassword int `json:"minPassword"`
}

// VirtualService is what clients connect to: an address, port and protocol
// with the real servers (or SubVSs) that serve it.
type VirtualService struct {
	// ID is the service's index, unique among all services and SubVSs and
	// assigned by Fulcrum on creation (LoadMaster `Index`). 0 on input means
	// "assign one". Default: assigned.
	ID int `json:"id"`
	// NickName is a free-form name shown in lists (LoadMaster `NickName`); at
	// most 64 characters. Default: "".
	NickName string `json:"nickname,omitempty"`
	// Address is the virtual IP address (IPv4 or IPv6). Required for a
	// top-level service; empty for a SubVS.
	Address string `json:"address,omitempty"`
	// Port is the listening port, 1-65535. Required for a top-level service;
	// 0 for a SubVS.
	Port int `json:"port,omitempty"`
	// ExtraPorts lists further ports the service also listens on, as
	// comma-separated ports or ranges ("8443,9000-9010"), at most 64 ports in
	// all (LoadMaster `ExtraPorts`). Default: "".
	ExtraPorts string `json:"extraPorts,omitempty"`
	// Protocol is "tcp" or "udp". Default: "tcp".
	Protocol string `json:"protocol"`
	// Type is the service type (LoadMaster `VStype`): "gen" generic layer 4,
	// "http" HTTP/HTTPS, "http2" HTTP/2, "tls" STARTTLS protocols. UDP
	// services are always "gen". Default: "gen".
	Type string `json:"type"`
	// Enabled is false for a service that does not accept connections
	// (LoadMaster `Enable`). Default: true.
	Enabled *bool `json:"enabled,omitempty"`
	// Schedule is the scheduling method: rr, wrr, lc, wlc, fixed, sh, uhash,
	// dl or adaptive (LoadMaster `Schedule`). Default: "rr".
	Schedule string `json:"schedule"`
	// Persistence says how a returning client is sent back to the same real
	// server. Default: mode "none".
	Persistence Persistence `json:"persistence"`
	// Idletime is the idle connection timeout in seconds, 0-86400; 0 uses the
	// global ConnTimeout (LoadMaster `Idletime`). Default: 0.
	Idletime int `json:"idleTimeout"`
	// AccessLog writes one access log line per request (layer 7) or per
	// connection (layer 4) or session (UDP) of this service to the access
	// log file and the syslog hosts with accessLogs (options.logging). A
	// SubVS's requests are logged by its parent's setting. Default: false.
	AccessLog bool `json:"accessLog,omitempty"`
	// Transparent makes the real servers see the client's own address
	// (LoadMaster `Transparent`): server-side sockets (layer 4, UDP and
	// layer 7, whose connections to real servers are then kept per client
	// address) set IP_TRANSPARENT and bind to the client's address, and
	// the host routes the replies back to Fulcrum. It needs Fulcrum to
	// manage the host's network (CAP_NET_ADMIN) and the real servers to
	// route clients' addresses through the appliance (their default
	// gateway, or a route); a real server on the VIP's own subnet is
	// refused (its replies would bypass Fulcrum), and a real server given
	// by name, of this host or of the other address family sees Fulcrum's
	// address, with a "not applied: transparency …" note in the status,
	// as for an unmanaged host. Default: false for tcp, true for udp.
	Transparent *bool `json:"transparent,omitempty"`
	// SubnetOriginating makes server-side connections leave from the
	// appliance's address on the real server's subnet (the kernel's source
	// on the route to it) instead of the VIP; ignored when Transparent
	// applies (LoadMaster `SubnetOriginating`). Off, layer-4 and UDP
	// services connect from the VIP; the layer-7 proxy always connects from
	// the appliance's address and says so in the status. Default: true for
	// tcp, false for udp.
	SubnetOriginating *bool `json:"subnetOriginating,omitempty"`
	// DefaultGateway is a per-service default gateway for traffic of this
	// service (LoadMaster `DefaultGW`); an IP address of the same family as
	// Address, in the subnet of one of the node's interfaces when it has
	// any. Replies to clients (from the VIP) and the service's server-side
	// connections (which carry the gateway's packet mark, SO_MARK) are
	// routed by a policy-routing table whose default route is this
	// gateway, and so are the health checks of its real servers (and of
	// its SubVSs', which have no gateway of their own). Needs Fulcrum to
	// manage the host's network (CAP_NET_ADMIN); otherwise the status says
	// "not applied: default gateway …". Default: "" (the global gateway).
	DefaultGateway string `json:"defaultGateway,omitempty"`
	// SorryServer receives the traffic when every real server is down; it is
	// not health checked (LoadMaster `StandbyAddr`/`StandbyPort`).
	// Default: none.
	SorryServer *Endpoint `json:"sorryServer,omitempty"`
	// Limits are the service's connection, rate and bandwidth limits.
	// Default: all 0 (unlimited).
	Limits Limits `json:"limits"`
	// TLS holds TLS termination and re-encryption settings. Default: TLS off.
	TLS TLS `json:"tls"`
	// AddVia selects the forwarding headers an HTTP service adds (LoadMaster
	// `AddVia`): "xff" X-Forwarded-For, "xff-via" X-Forwarded-For and Via,
	// "none", "clientside-via", "clientside", "xff-novia", "via".
	// Default: "xff".
	AddVia string `json:"addVia"`
	// HTTP holds the layer-7 settings of http and http2 services: content
	// rules, header policy, error answers, limits and retries. Default:
	// absent (every setting at its default).
	HTTP *HTTPSettings `json:"http,omitempty"`
	// HealthCheck says how the real servers are checked. Default: tcp
	// connect with the global timers.
	HealthCheck HealthCheck `json:"healthCheck"`
	// RealServers are the backends of the service. A service has real servers
	// or SubVSs, not both. Default: none.
	RealServers []RealServer `json:"realServers,omitempty"`
	// SubVSs are child services without an address of their own, chosen by
	// content rules. Only top-level services may have them. Default: none.
	SubVSs []VirtualService `json:"subVSs,omitempty"`
	// FollowVSID makes this service use the persistence table of another
	// top-level service (LoadMaster port following, `FollowVSID`), so a client
	// stuck to a real server on :80 reaches the same server on :443; 0 means
	// none. Default: 0.
	FollowVSID int `json:"followVsId,omitempty"`
	// Checks are smoke checks that deployment verification (`fulcrum
	// verify`, POST /api/v1/verify) sends through this service as a client
	// would; templates add theirs. At most 32. Default: none.
	Checks []SmokeCheck `json:"checks,omitempty"`
}

// Endpoint is an address and port.
type Endpoint struct {
	// Address is an IP address or DNS name. Required.
	Address string `json:"address"`
	// Port is 1-65535. Required.
	Port int `json:"port"`
}

// Persistence is a service's persistence (stickiness) setting.
type Persistence struct {
	// Mode is the persistence mode (LoadMaster `Persist`): none, src, super,
	// super-src, cookie, cookie-src, active-cookie, active-cook-src,
	// cookie-hash, cookie-hash-src, url, query-hash, host, header, ssl,
	// udpsip. Default: "none".
	Mode string `json:"mode"`
	// Timeout is how long in seconds an entry lives after its last use,
	// 0-2419200; 0 with a mode other than none means 1800 (LoadMaster
	// `PersistTimeout`). Default: 0.
	Timeout int `json:"timeout,omitempty"`
	// Cookie is the cookie name for the cookie modes, or the header name for
	// mode header (LoadMaster `Cookie`). Default: "" ("FULCRUM" for the
	// active-cookie modes).
	Cookie string `json:"cookie,omitempty"`
	// QueryTag is the query item used by mode query-hash (LoadMaster
	// `QueryTag`). Default: "".
	QueryTag string `json:"queryTag,omitempty"`
	// Mask is the prefix length applied to IPv4 client addresses by the
	// source-IP modes, so clients behind changing NAT stay together (Fulcrum
	// extension); 0 means the whole address (32). Default: 0.
	Mask int `json:"mask,omitempty"`
	// Mask6 is the prefix length applied to IPv6 client addresses by the
	// source-IP modes; 0 means the whole address (128). Default: 0.
	Mask6 int `json:"mask6,omitempty"`
	// Refresh restarts an entry's timeout each time it is used
	// (LoadMaster `RefreshPersist`); otherwise it expires Timeout seconds
	// after it was made. Default: false.
	Refresh bool `json:"refresh,omitempty"`
}

// Limits are per-service admission and bandwidth limits; 0 means unlimited.
type Limits struct {
	// MaxConns is the maximum number of concurrent connections (UDP:
	// sessions) (LoadMaster `MaxConnsLimit`); 0-1000000. 0 means half of
	// the appliance's connection ceiling (of its UDP session table for udp
	// services), which Fulcrum derives from its file-descriptor limit, so
	// that one service cannot take every connection; the status shows both
	// (`limits`). Above the ceiling a connection is refused whatever the
	// service's maximum. Default: 0.
	MaxConns int `json:"maxConns,omitempty"`
	// ConnsPerSec is the maximum rate of new connections per second
	// (`ConnsPerSecLimit`); 0-1000000. Default: 0.
	ConnsPerSec int `json:"connsPerSec,omitempty"`
	// RequestsPerSec is the maximum HTTP request rate (`RequestsPerSecLimit`);
	// 0-1000000. Default: 0.
	RequestsPerSec int `json:"requestsPerSec,omitempty"`
	// Bandwidth is the maximum throughput of the service in kbit/s, each
	// direction on its own (`Bandwidth`); 0-100000000. Layer-4 TCP and
	// layer-7 connections are shaped, UDP datagrams over it are dropped;
	// hits are counted in `limitHits.bandwidth`. Default: 0.
	Bandwidth int `json:"bandwidth,omitempty"`
}

// TLS is a service's TLS setting.
type TLS struct {
	// Offload terminates client TLS on Fulcrum (LoadMaster
	// `SSLAcceleration`). Default: false.
	Offload bool `json:"offload,omitempty"`
	// Reencrypt opens TLS towards the real servers after offload (LoadMaster
	// `SSLReencrypt`). Default: false.
	Reencrypt bool `json:"reencrypt,omitempty"`
	// Certificates are names of entries in Config.Certificates; the first is
	// the default, the others are chosen by SNI (LoadMaster `CertFile`).
	// Required when Offload is set. Default: none.
	Certificates []string `json:"certificates,omitempty"`
	// Profile is the TLS profile: "modern" (TLS 1.3 only), "intermediate"
	// (TLS 1.2 and 1.3, forward-secret AEAD ciphers) or "legacy" (adds TLS 1.0
	// and 1.1 for old clients). Default: "intermediate".
	Profile string `json:"profile,omitempty"`
	// NeedHostName refuses clients that send no SNI (LoadMaster
	// `NeedHostName`). Default: false.
	NeedHostName bool `json:"needHostName,omitempty"`
	// VerifyServer verifies the real servers' certificates when
	// re-encrypting. Default: false.
	VerifyServer bool `json:"verifyServer,omitempty"`
	// Versions narrows the TLS versions offered to clients to these ("1.0",
	// "1.1", "1.2", "1.3"), which the profile must allow (LoadMaster
	// `TLSType`); empty means all of the profile's. Default: none.
	Versions []string `json:"versions,omitempty"`
	// PassSNI sends the client's SNI host name to the real servers when
	// re-encrypting (LoadMaster `PassSNI`). Default: false.
	PassSNI bool `json:"passSni,omitempty"`
	// ServerName is the SNI host name sent to the real servers when
	// re-encrypting, and the name their certificates are verified against
	// (LoadMaster `ReverseSNIHostname`). Default: "" (none; with
	// VerifyServer the real server's address is verified).
	ServerName string `json:"serverName,omitempty"`
	// CABundle holds PEM CA certificates that real servers' certificates
	// are verified against when VerifyServer is set; "" uses the system's.
	// Default: "".
	CABundle string `json:"caBundle,omitempty"`
}

// HealthCheck is a service's health-check setting, applied to its real
// servers.
type HealthCheck struct {
	// Type is the check (LoadMaster `CheckType`): icmp, tcp, http, https,
	// smtp, nntp, ftp, telnet, pop3, imap, ldap, bdata, dns, none.
	// Default: "tcp" for tcp services, "icmp" for udp ones.
	Type string `json:"type"`
	// Port overrides the port checked; 0 means the real server's port
	// (`CheckPort`). Default: 0.
	Port int `json:"port,omitempty"`
	// URL is the path requested by http and https checks, at most 126
	// characters, starting with "/" (`CheckUrl`). Default: "/".
	URL string `json:"url,omitempty"`
	// Method is HEAD, GET, POST or OPTIONS (`CheckUseGet`). Default: "HEAD".
	Method string `json:"method,omitempty"`
	// HTTP11 sends HTTP/1.1 requests instead of HTTP/1.0 (`CheckUse1.1`).
	// Default: false.
	HTTP11 bool `json:"http11,omitempty"`
	// Host is the Host header of HTTP/1.1 checks (`CheckHost`). Default: "".
	Host string `json:"host,omitempty"`
	// Headers are up to 4 extra request headers (`CheckHeaders`).
	// Default: none.
	Headers map[string]string `json:"headers,omitempty"`
	// PostData is the body of POST checks, at most 2047 characters
	// (`CheckPostData`). Default: "".
	PostData string `json:"postData,omitempty"`
	// Codes are extra status codes (300-599) that count as Up besides 2xx,
	// 301, 302 and 401 (`CheckCodes`). Default: none.
	Codes []int `json:"codes,omitempty"`
	// Pattern is a regular expression the response must match; for bdata a
	// hex pattern (`CheckPattern`). Default: "".
	Pattern string `json:"pattern,omitempty"`
	// Send is the hex-encoded request of a bdata check. Default: "".
	Send string `json:"send,omitempty"`
	// Interval overrides the global interval in seconds; 0 uses the global
	// value (`ChkInterval`). Default: 0.
	Interval int `json:"interval,omitempty"`
	// Timeout overrides the global timeout in seconds; 0 uses the global
	// value (`ChkTimeout`). Default: 0.
	Timeout int `json:"timeout,omitempty"`
	// RetryCount overrides the global retry count; 0 uses the global value
	// (`ChkRetryCount`). Default: 0.
	RetryCount int `json:"retryCount,omitempty"`
	// MinUp is the minimum number of Up real servers for the service to be Up
	// (`RsMinimum` with `EnhancedHealthChecks`); 0 means 1. Default: 0.
	MinUp int `json:"minUp,omitempty"`
	// VerifyTLS verifies the certificate of https checks. Default: false.
	VerifyTLS bool `json:"verifyTls,omitempty"`
	// StartTLS upgrades smtp, nntp, ftp (AUTH TLS), pop3 (STLS) and imap
	// checks to TLS after the greeting; the check fails unless the TLS
	// handshake succeeds (certificate verified with verifyTls) (Fulcrum
	// extension). Default: false.
	StartTLS bool `json:"startTls,omitempty"`
}

// RealServer is one backend of a virtual service.
type RealServer struct {
	// ID is the real server's index, unique within the configuration and
	// assigned by Fulcrum on creation (LoadMaster `RsIndex`). 0 on input means
	// "assign one". Default: assigned.
	ID int `json:"id"`
	// Address is the real server's IP address or DNS name (LoadMaster `Addr`
	// or `DnsName`). Required.
	Address string `json:"address"`
	// Port is the real server's port, 1-65535; port translation happens when
	// it differs from the service's port. Required.
	Port int `json:"port"`
	// Weight is the relative share for the weighted methods, 1-65535
	// (LoadMaster `Weight`); 0 or absent means the default, 1000, in
	// configuration documents, the native API and the LoadMaster API alike.
	// Default: 1000.
	Weight int `json:"weight"`
	// Enabled is false for a real server taken out of service (LoadMaster
	// `Enable`). Default: true.
	Enabled *bool `json:"enabled,omitempty"`
	// Limit is the maximum number of concurrent connections, 0-100000; 0
	// means unlimited (LoadMaster `Limit`). Default: 0.
	Limit int `json:"limit,omitempty"`
	// Critical marks the whole service Down when this real server is Down
	// (LoadMaster `Critical`). Default: false.
	Critical bool `json:"critical,omitempty"`
	// Follow is the ID of another real server whose health-check result this
	// one takes (LoadMaster `Follow`); 0 means none. Default: 0.
	Follow int `json:"follow,omitempty"`
	// CheckAddress overrides the address health checks connect to.
	// Default: "" (the real server's address).
	CheckAddress string `json:"checkAddress,omitempty"`
}

// Certificate is an imported TLS certificate with its private key, or an
// intermediate (CA) certificate without one.
type Certificate struct {
	// Name identifies the certificate; letters, digits, '.', '-' and '_', at
	// most 64 characters. Required.
	Name string `json:"name"`
	// Intermediate marks an intermediate CA certificate: it has no key and is
	// chained automatically behind the certificates it issued.
	// Default: false.
	Intermediate bool `json:"intermediate,omitempty"`
	// CertPEM is the PEM-encoded certificate (and, for imports, any chain
	// that came with it). Required.
	CertPEM string `json:"certPem"`
	// KeyPEM is the PEM-encoded private key; required unless Intermediate.
	KeyPEM string `json:"keyPem,omitempty"`
}

// Bool returns a pointer to b, for the optional boolean fields.
func Bool(b bool) *bool { return &b }

// IsTrue reports whether an optional boolean is set and true.
func IsTrue(b *bool) bool { return b != nil && *b }
