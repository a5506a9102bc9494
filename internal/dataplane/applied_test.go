package dataplane

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// Every setting is applied, or refused, or the service's status says
// "not applied: …" (the project's rule). These tests hold the registry of
// who applies each setting of the configuration (package config) and of
// the node's network settings (package netcfg), and fail for a field that
// is not in it: whoever adds a field must say here who applies it.

// applier says who applies one setting.
type applier struct {
	// by is the package that applies it.
	by string
	// noted is true for a setting some services cannot apply: they must
	// say so in their status, which a case of notAppliedCases checks.
	noted bool
}

// applied is the registry, by path (JSON names, "[]" for list elements).
var applied = map[string]applier{
	"schemaVersion": {by: "config (document format; Decode migrates and refuses newer)"},

	"options.snat":                                 {by: "hostnet (nftables SNAT rules of netcfg.Plan.SNAT)", noted: true},
	"options.subnetOriginating":                    {by: "dataplane (sourceAddr)"},
	"options.dropOnFail":                           {by: "dataplane (drainer)"},
	"options.dropAtDrainEnd":                       {by: "dataplane (drainer)"},
	"options.drainTime":                            {by: "dataplane (drainer)"},
	"options.connTimeout":                          {by: "dataplane (driver idleTimeout)"},
	"options.alwaysPersist":                        {by: "l7 (ServiceConfig.PerRequest)"},
	"options.slowStart":                            {by: "balance (pickers' slow start)"},
	"options.health.interval":                      {by: "health"},
	"options.health.timeout":                       {by: "health"},
	"options.health.retryCount":                    {by: "health"},
	"options.health.riseCount":                     {by: "health"},
	"options.health.passiveFailures":               {by: "health (passive checks through balance.Outcome)"},
	"options.throughputLimit":                      {by: "dataplane (one l4.Shaper for l4, udp and l7)"},
	"options.enableApi":                            {by: "kempapi"},
	"options.adminLockout.attempts":                {by: "admin"},
	"options.adminLockout.coolDown":                {by: "admin"},
	"options.adminLockout.sessionIdle":             {by: "admin"},
	"options.adminLockout.sessionMax":              {by: "admin"},
	"options.adminLockout.minPassword":             {by: "admin"},
	"options.adaptive.url":                         {by: "balance (adaptive picker)"},
	"options.adaptive.port":                        {by: "balance (adaptive picker)"},
	"options.adaptive.interval":                    {by: "balance (adaptive picker)"},
	"options.adaptive.minPercent":                  {by: "balance (adaptive picker)"},
	"options.apiRateLimit":                         {by: "kempapi"},
	"options.metrics.haproxyNames":                 {by: "metrics (HAProxy-compatible families on /metrics)"},
	"options.logging.syslog[].address":             {by: "syslog (senders)"},
	"options.logging.syslog[].port":                {by: "syslog (senders)"},
	"options.logging.syslog[].protocol":            {by: "syslog (senders)"},
	"options.logging.syslog[].severity":            {by: "syslog (senders)"},
	"options.logging.syslog[].accessLogs":          {by: "syslog (access log forwarding)"},
	"options.logging.syslog[].serverName":          {by: "syslog (TLS)"},
	"options.logging.syslog[].caCert":              {by: "syslog (TLS)"},
	"options.logging.accessLog.file":               {by: "accesslog (file writer)"},
	"options.logging.accessLog.format":             {by: "accesslog (formats)"},
	"options.alerts.email.server":                  {by: "alert (SMTP)"},
	"options.alerts.email.port":                    {by: "alert (SMTP)"},
	"options.alerts.email.security":                {by: "alert (SMTP)"},
	"options.alerts.email.serverName":              {by: "alert (SMTP)"},
	"options.alerts.email.caCert":                  {by: "alert (SMTP)"},
	"options.alerts.email.user":                    {by: "alert (SMTP)"},
	"options.alerts.email.password":                {by: "alert (SMTP)"},
	"options.alerts.email.from":                    {by: "alert (SMTP)"},
	"options.alerts.email.to":                      {by: "alert (SMTP)"},
	"options.alerts.email.severity":                {by: "alert (SMTP)"},
	"options.alerts.webhooks[].url":                {by: "alert (webhook)"},
	"options.alerts.webhooks[].severity":           {by: "alert (webhook)"},
	"options.alerts.webhooks[].secret":             {by: "alert (webhook)"},
	"options.alerts.webhooks[].caCert":             {by: "alert (webhook)"},
	"options.alerts.certExpiryDays":                {by: "alert (certificate expiry watcher)"},
	"virtualServices[].id":                         {by: "dataplane (state by ID)"},
	"virtualServices[].nickname":                   {by: "status, web UI, APIs (a name only)"},
	"virtualServices[].address":                    {by: "dataplane (listen) and hostnet (VIP addresses)"},
	"virtualServices[].port":                       {by: "dataplane (listen)"},
	"virtualServices[].extraPorts":                 {by: "dataplane (listen)"},
	"virtualServices[].protocol":                   {by: "dataplane (driver)"},
	"virtualServices[].type":                       {by: "dataplane (driver)", noted: true},
	"virtualServices[].enabled":                    {by: "dataplane (classify)"},
	"virtualServices[].schedule":                   {by: "balance (every method is implemented: balance.Implemented)"},
	"virtualServices[].persistence.mode":           {by: "persist", noted: true},
	"virtualServices[].persistence.timeout":        {by: "persist"},
	"virtualServices[].persistence.cookie":         {by: "persist, l7"},
	"virtualServices[].persistence.queryTag":       {by: "persist, l7"},
	"virtualServices[].persistence.mask":           {by: "persist"},
	"virtualServices[].persistence.mask6":          {by: "persist"},
	"virtualServices[].persistence.refresh":        {by: "persist"},
	"virtualServices[].idleTimeout":                {by: "dataplane (driver idleTimeout)"},
	"virtualServices[].accessLog":                  {by: "l7, l4, udp (accesslog.Logger)", noted: true},
	"virtualServices[].transparent":                {by: "dataplane (IP_TRANSPARENT via netcfg.Plan) and hostnet (reply routing)", noted: true},
	"virtualServices[].subnetOriginating":          {by: "dataplane (sourceAddr)", noted: true},
	"virtualServices[].defaultGateway":             {by: "dataplane (SO_MARK via netcfg.Plan) and hostnet (policy routes)", noted: true},
	"virtualServices[].sorryServer.address":        {by: "l7 (Pool.Sorry)"},
	"virtualServices[].sorryServer.port":           {by: "l7 (Pool.Sorry)"},
	"virtualServices[].limits.maxConns":            {by: "dataplane (maxConns)"},
	"virtualServices[].limits.connsPerSec":         {by: "dataplane (compileLimits)"},
	"virtualServices[].limits.requestsPerSec":      {by: "l7 (RequestRate)", noted: true},
	"virtualServices[].limits.bandwidth":           {by: "dataplane (one l4.Shaper per service for l4, udp and l7)"},
	"virtualServices[].tls.offload":                {by: "l7 (BuildService)", noted: true},
	"virtualServices[].tls.reencrypt":              {by: "l7 (Pool.Reencrypt)"},
	"virtualServices[].tls.certificates":           {by: "l7, certs"},
	"virtualServices[].tls.profile":                {by: "l7, certs"},
	"virtualServices[].tls.needHostName":           {by: "l7, certs"},
	"virtualServices[].tls.verifyServer":           {by: "l7 (Pool.Reencrypt)"},
	"virtualServices[].tls.versions":               {by: "l7, certs"},
	"virtualServices[].tls.passSni":                {by: "l7 (Pool.PassSNI)"},
	"virtualServices[].tls.serverName":             {by: "l7 (Pool.Reencrypt)"},
	"virtualServices[].tls.caBundle":               {by: "l7 (Pool.Reencrypt)"},
	"virtualServices[].addVia":                     {by: "l7 (forwarding headers)"},
	"virtualServices[].http.selectRules":           {by: "l7 (SubVS selection)"},
	"virtualServices[].http.preRules":              {by: "l7"},
	"virtualServices[].http.requestRules":          {by: "l7"},
	"virtualServices[].http.responseRules":         {by: "l7"},
	"virtualServices[].http.hostRewrite":           {by: "l7"},
	"virtualServices[].http.trustedProxies":        {by: "l7"},
	"virtualServices[].http.errorCode":             {by: "l7"},
	"virtualServices[].http.errorUrl":              {by: "l7"},
	"virtualServices[].http.errorPage":             {by: "l7"},
	"virtualServices[].http.maxHeaderBytes":        {by: "l7"},
	"virtualServices[].http.maxHeaders":            {by: "l7"},
	"virtualServices[].http.maxUri":                {by: "l7"},
	"virtualServices[].http.headerTimeout":         {by: "l7"},
	"virtualServices[].http.bodyTimeout":           {by: "l7"},
	"virtualServices[].http.bodyMinRate":           {by: "l7"},
	"virtualServices[].http.responseTimeout":       {by: "l7"},
	"virtualServices[].http.maxStreams":            {by: "l7 (HTTP/2)"},
	"virtualServices[].http.retries":               {by: "l7"},
	"virtualServices[].http.retryTimeout":          {by: "l7"},
	"virtualServices[].healthCheck.type":           {by: "health"},
	"virtualServices[].healthCheck.port":           {by: "health"},
	"virtualServices[].healthCheck.url":            {by: "health"},
	"virtualServices[].healthCheck.method":         {by: "health"},
	"virtualServices[].healthCheck.http11":         {by: "health"},
	"virtualServices[].healthCheck.host":           {by: "health"},
	"virtualServices[].healthCheck.headers":        {by: "health"},
	"virtualServices[].healthCheck.postData":       {by: "health"},
	"virtualServices[].healthCheck.codes":          {by: "health"},
	"virtualServices[].healthCheck.pattern":        {by: "health"},
	"virtualServices[].healthCheck.send":           {by: "health"},
	"virtualServices[].healthCheck.interval":       {by: "health"},
	"virtualServices[].healthCheck.timeout":        {by: "health"},
	"virtualServices[].healthCheck.retryCount":     {by: "health"},
	"virtualServices[].healthCheck.minUp":          {by: "health"},
	"virtualServices[].healthCheck.verifyTls":      {by: "health"},
	"virtualServices[].healthCheck.startTls":       {by: "health"},
	"virtualServices[].realServers[].id":           {by: "backend (state by ID)"},
	"virtualServices[].realServers[].address":      {by: "dataplane (backend.Key); hostnet (SNAT rules)"},
	"virtualServices[].realServers[].port":         {by: "dataplane (backend.Key)"},
	"virtualServices[].realServers[].weight":       {by: "backend, balance"},
	"virtualServices[].realServers[].enabled":      {by: "backend, balance"},
	"virtualServices[].realServers[].limit":        {by: "backend, balance"},
	"virtualServices[].realServers[].critical":     {by: "health"},
	"virtualServices[].realServers[].follow":       {by: "health"},
	"virtualServices[].realServers[].checkAddress": {by: "health"},
	"virtualServices[].subVSs[]":                   {by: "l7 (compileSubVS: each SubVS's real servers, schedule, persistence, health check and http settings, as a service's)"},
	"virtualServices[].followVsId":                 {by: "dataplane (health follow, wiring.go)"},
	"virtualServices[].checks[].name":              {by: "verify"},
	"virtualServices[].checks[].url":               {by: "verify"},
	"virtualServices[].checks[].expect":            {by: "verify"},
	"certificates[].name":                          {by: "certs"},
	"certificates[].intermediate":                  {by: "certs"},
	"certificates[].certPem":                       {by: "certs"},
	"certificates[].keyPem":                        {by: "certs"},
	"contentRules[].name":                          {by: "l7/rules"},
	"contentRules[].type":                          {by: "l7/rules"},
	"contentRules[].matchType":                     {by: "l7/rules"},
	"contentRules[].match":                         {by: "l7/rules"},
	"contentRules[].header":                        {by: "l7/rules"},
	"contentRules[].pattern":                       {by: "l7/rules"},
	"contentRules[].replacement":                   {by: "l7/rules"},
	"contentRules[].noCase":                        {by: "l7/rules"},
	"contentRules[].negate":                        {by: "l7/rules"},
	"contentRules[].incHost":                       {by: "l7/rules"},
	"contentRules[].incQuery":                      {by: "l7/rules"},
	"contentRules[].setFlag":                       {by: "l7/rules"},
	"contentRules[].onlyOnFlag":                    {by: "l7/rules"},
	"contentRules[].onlyOnNoFlag":                  {by: "l7/rules"},

	"network.hostname":               {by: "hostnet"},
	"network.dns.servers":            {by: "hostnet"},
	"network.dns.search":             {by: "hostnet"},
	"network.interfaces[].name":      {by: "hostnet"},
	"network.interfaces[].parent":    {by: "hostnet (VLAN child)"},
	"network.interfaces[].vlan":      {by: "hostnet (VLAN child)"},
	"network.interfaces[].addresses": {by: "hostnet"},
	"network.interfaces[].mtu":       {by: "hostnet"},
	"network.interfaces[].down":      {by: "hostnet"},
	"network.interfaces[].vipRanges": {by: "netcfg.Make (plan VIPs), hostnet"},
	"network.gateway":                {by: "hostnet"},
	"network.gateway6":               {by: "hostnet"},
	"network.routes[].destination":   {by: "hostnet"},
	"network.routes[].gateway":       {by: "hostnet"},
	"network.enforceVipRanges":       {by: "netcfg.Make (refuses the VIP)"},
	"network.keepOnStop":             {by: "hostnet (Close)"},
	"network.confirmSeconds":         {by: "control (confirm window)"},
	"network.adminAddress":           {by: "appliance (admin listener), setup"},
}

// settingPaths returns the path of every leaf field of t, by JSON name,
// with "[]" for list elements, under prefix. A struct that contains
// itself (SubVSs) is a leaf where it recurs.
func settingPaths(t reflect.Type, prefix string) []string {
	var out []string
	var walk func(t reflect.Type, path string, stack []reflect.Type)
	walk = func(t reflect.Type, path string, stack []reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			walk(t.Elem(), path+"[]", stack)
			return
		}
		if t.Kind() != reflect.Struct || slices.Contains(stack, t) {
			out = append(out, path)
			return
		}
		stack = append(stack, t)
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			walk(f.Type, p, stack)
		}
	}
	walk(t, prefix, nil)
	return out
}

func TestEverySettingHasAnApplier(t *testing.T) {
	paths := append(settingPaths(reflect.TypeFor[config.Config](), ""), settingPaths(reflect.TypeFor[netcfg.Network](), "network")...)
	if len(paths) < 100 {
		t.Fatalf("the walk found only %d settings", len(paths))
	}
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
		if _, ok := applied[p]; !ok {
			t.Errorf("setting %s is in the configuration but not in the registry `applied` of internal/dataplane/applied_test.go: "+
				"add it with the package that applies it. If some services cannot apply it, make their status reason say "+
				"\"not applied: …\" (the driver's notes, or netcfg.Plan notes), mark it noted and add a case to notAppliedCases.", p)
		}
	}
	for p := range applied {
		if !seen[p] {
			t.Errorf("the registry `applied` names %s, which the configuration no longer has: remove it", p)
		}
	}
	covered := map[string]bool{}
	for _, c := range notAppliedCases() {
		covered[c.path] = true
		if !applied[c.path].noted {
			t.Errorf("notAppliedCases checks %s, which the registry does not mark noted", c.path)
		}
	}
	for p, a := range applied {
		if a.noted && !covered[p] {
			t.Errorf("setting %s is marked noted but no case of notAppliedCases checks its status note: add one", p)
		}
	}
}

// notAppliedCase is one situation in which a setting is not applied, and
// the words the service's status reason must then hold.
type notAppliedCase struct {
	path string
	vs   func(vs *config.VirtualService)
	opts func(o *config.Options)
	plan *netcfg.Plan // nil: the plan of an unmanaged host
	want string
}

func notAppliedCases() []notAppliedCase {
	managed := func(s netcfg.Service) *netcfg.Plan {
		return &netcfg.Plan{Managed: true, Network: &netcfg.Network{}, Transparent: s.Transparent, Services: map[int]netcfg.Service{1: s}}
	}
	return []notAppliedCase{
		{path: "options.snat", opts: func(o *config.Options) { o.SNAT = true }, vs: func(vs *config.VirtualService) { vs.Address = "192.0.2.100" },
			want: "not applied: SNAT of the real servers' own connections: " + Unmanaged},
		{path: "virtualServices[].defaultGateway", vs: func(vs *config.VirtualService) { vs.DefaultGateway = "192.0.2.1" },
			want: "not applied: default gateway 192.0.2.1: " + Unmanaged},
		{path: "virtualServices[].transparent", vs: func(vs *config.VirtualService) {
			vs.Transparent = config.Bool(true)
			vs.RealServers[0].Address = "192.0.2.10"
		}, want: "not applied: transparency: " + Unmanaged},
		{path: "virtualServices[].transparent", vs: func(vs *config.VirtualService) { vs.Transparent = config.Bool(true) },
			want: "not applied: transparency: real server 127.0.0.1 is an address of this host"},
		{path: "virtualServices[].transparent", vs: func(vs *config.VirtualService) {
			vs.Transparent = config.Bool(true)
			vs.RealServers[0].Address = "2001:db8::10"
		}, plan: managed(netcfg.Service{Transparent: true}),
			want: "not applied: transparency for real server 2001:db8::10: it is not of the clients' address family"},
		{path: "virtualServices[].subnetOriginating", vs: func(vs *config.VirtualService) {
			vs.Type, vs.SubnetOriginating, vs.Transparent = "http", config.Bool(false), config.Bool(false)
		}, want: "the layer-7 proxy connects to real servers from Fulcrum's own address on their subnet, not from the virtual service's"},
		{path: "virtualServices[].persistence.mode", vs: func(vs *config.VirtualService) { vs.Persistence.Mode = "ssl" },
			want: "persistence ssl needs the TLS session ID of the ClientHello, which the layer-4 proxy does not read"},
		{path: "virtualServices[].persistence.mode", vs: func(vs *config.VirtualService) { vs.Type, vs.Persistence.Mode = "http", "ssl" },
			want: "persistence ssl is not applied by the layer-7 proxy"},
		{path: "virtualServices[].tls.offload", vs: func(vs *config.VirtualService) {
			vs.TLS.Offload, vs.TLS.Certificates = true, []string{"c"}
		}, want: "TLS offload is performed for services of type http and http2, not gen"},
		{path: "virtualServices[].type", vs: func(vs *config.VirtualService) { vs.Type = "tls" },
			want: "type tls (STARTTLS) is served as a layer-4 TCP proxy"},
		{path: "virtualServices[].limits.requestsPerSec", vs: func(vs *config.VirtualService) { vs.Type, vs.Limits.RequestsPerSec = "tls", 10 },
			want: "requestsPerSec applies to HTTP requests and is not enforced by the layer-4 proxy"},
		{path: "virtualServices[].accessLog", vs: func(vs *config.VirtualService) { vs.AccessLog = true },
			want: NoAccessLogDestination},
		{path: "virtualServices[].accessLog", vs: func(vs *config.VirtualService) { vs.AccessLog, vs.Protocol = true, "udp" },
			want: NoAccessLogDestination},
		{path: "virtualServices[].accessLog", vs: func(vs *config.VirtualService) { vs.AccessLog, vs.Type = true, "http" },
			want: NoAccessLogDestination},
		{path: "virtualServices[].accessLog", vs: func(vs *config.VirtualService) { vs.AccessLog = true },
			opts: func(o *config.Options) { o.Logging.AccessLog.File = "/var/log/fulcrum/access.log" }, want: NoAccessLogWriter},
	}
}

func TestNotAppliedSettingsSaySo(t *testing.T) {
	a := startTag(t, "a")
	pki := newTestPKI(t)
	for i, c := range notAppliedCases() {
		t.Run(fmt.Sprintf("%d %s", i, c.path), func(t *testing.T) {
			vs := vsOf(1, "127.0.0.1", 0, rsOf(11, a, 1))
			vs.HealthCheck.Type = "none"
			if c.vs != nil {
				c.vs(&vs)
			}
			cfg := config.Default()
			cfg.VirtualServices = []config.VirtualService{vs}
			cfg.Certificates = []config.Certificate{{Name: "c", CertPEM: pki.leafPEM, KeyPEM: pki.keyPEM}}
			if c.opts != nil {
				c.opts(&cfg.Options)
			}
			cfg.SetDefaults()
			cfg.VirtualServices[0].Port = 1 // compiled, never listened on: see compileOnly
			if err := cfg.Validate(); err != nil {
				t.Fatalf("case configuration invalid: %v", err)
			}
			s := compileOnly(t, cfg, c.plan)
			if !strings.Contains(s.reason, c.want) {
				t.Errorf("%s: status reason %q does not say %q: the setting is ignored without a word", c.path, s.reason, c.want)
			}
		})
	}
}

// compileOnly compiles cfg with plan p (nil: Unmanaged's) in a new
// Engine, returns its first service and rolls the candidate back: no
// socket is opened.
func compileOnly(t *testing.T, cfg *config.Config, p *netcfg.Plan) *service {
	t.Helper()
	if p == nil {
		var err error
		if p, err = netcfg.Unmanaged(cfg, Unmanaged); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.compile(cfg, p)
	defer c.rollback()
	if err != nil {
		t.Fatal(err)
	}
	return c.services[0]
}

// describe is what a compiled service does, as values: two services
// that describe the same serve the same.
func describe(s *service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen=%v idle=%v source=%v picker=%T state=%s reason=%q\n", s.listen, s.idle, s.source, s.picker, s.state, s.reason)
	rate := func(r interface{ Rate() float64 }) string {
		if reflect.ValueOf(r).IsNil() {
			return "-"
		}
		return fmt.Sprint(r.Rate())
	}
	if s.handler != nil {
		c := s.handler.Config()
		fmt.Fprintf(&b, "l4 max=%d connRate=%v bw=%s tp=%s transparent=%v mark=%#x\n", c.MaxConns, c.ConnRate != nil && c.ConnRate.Limit() > 0,
			rate(c.Bandwidth), rate(c.Throughput), c.Transparent, c.Mark)
	}
	if s.l7 != nil {
		c := s.l7.Config()
		fmt.Fprintf(&b, "l7 max=%d bw=%s tp=%s transparent=%v mark=%#x maxHeaders=%d addVia=%s perRequest=%v\n", c.MaxConns,
			rate(c.Bandwidth), rate(c.Throughput), c.Transparent, c.Mark, c.MaxHeaders, c.AddVia, c.PerRequest)
	}
	if s.uhandler != nil {
		c := s.uhandler.Config()
		fmt.Fprintf(&b, "udp max=%d bw=%s tp=%s transparent=%v mark=%#x\n", c.MaxConns, rate(c.Bandwidth), rate(c.Throughput), c.Transparent, c.Mark)
	}
	return b.String()
}

func TestAppliedSettingsReachTheService(t *testing.T) {
	base := func() *config.Config {
		vs := vsOf(1, "127.0.0.1", 1, config.RealServer{ID: 11, Address: "192.0.2.10", Port: 80, Weight: 1})
		vs.HealthCheck.Type = "none"
		return conf(t, vs)
	}
	managed := func(s netcfg.Service) *netcfg.Plan {
		return &netcfg.Plan{Managed: true, Network: &netcfg.Network{}, Transparent: s.Transparent, Services: map[int]netcfg.Service{1: s}}
	}
	cases := map[string]struct {
		from   func(c *config.Config) // the starting point, when not base's
		mutate func(c *config.Config)
		plan   *netcfg.Plan
	}{
		"virtualServices[].port":               {mutate: func(c *config.Config) { c.VirtualServices[0].Port = 2 }},
		"virtualServices[].extraPorts":         {mutate: func(c *config.Config) { c.VirtualServices[0].ExtraPorts = "3" }},
		"virtualServices[].idleTimeout":        {mutate: func(c *config.Config) { c.VirtualServices[0].Idletime = 30 }},
		"virtualServices[].subnetOriginating":  {mutate: func(c *config.Config) { c.VirtualServices[0].SubnetOriginating = config.Bool(false) }},
		"virtualServices[].schedule":           {mutate: func(c *config.Config) { c.VirtualServices[0].Schedule = "lc" }},
		"virtualServices[].persistence.mode":   {mutate: func(c *config.Config) { c.VirtualServices[0].Persistence.Mode = "src" }},
		"virtualServices[].limits.maxConns":    {mutate: func(c *config.Config) { c.VirtualServices[0].Limits.MaxConns = 7 }},
		"virtualServices[].limits.connsPerSec": {mutate: func(c *config.Config) { c.VirtualServices[0].Limits.ConnsPerSec = 7 }},
		"virtualServices[].limits.bandwidth":   {mutate: func(c *config.Config) { c.VirtualServices[0].Limits.Bandwidth = 800 }},
		"virtualServices[].transparent": {mutate: func(c *config.Config) { c.VirtualServices[0].Transparent = config.Bool(true) },
			plan: managed(netcfg.Service{Transparent: true})},
		"virtualServices[].defaultGateway": {mutate: func(c *config.Config) { c.VirtualServices[0].DefaultGateway = "192.0.2.1" },
			plan: managed(netcfg.Service{Mark: netcfg.GatewayMarkBase})},
		"virtualServices[].protocol": {mutate: func(c *config.Config) { c.VirtualServices[0].Protocol = "udp" }},
		"options.subnetOriginating": {from: func(c *config.Config) { c.VirtualServices[0].SubnetOriginating = config.Bool(false) },
			mutate: func(c *config.Config) { c.Options.SubnetOriginating = true }},
		"virtualServices[].type": {mutate: func(c *config.Config) { c.VirtualServices[0].Type = "http" }},
		"virtualServices[].http.maxHeaders": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.VirtualServices[0].HTTP = &config.HTTPSettings{MaxHeaders: 10} }},
		"virtualServices[].addVia": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.VirtualServices[0].AddVia = "none" }},
		"layer 7: virtualServices[].limits.bandwidth": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.VirtualServices[0].Limits.Bandwidth = 800 }},
		"layer 7: options.throughputLimit": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.Options.ThroughputLimit = 100 }},
		"layer 7: virtualServices[].defaultGateway": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.VirtualServices[0].DefaultGateway = "192.0.2.1" },
			plan:   managed(netcfg.Service{Mark: netcfg.GatewayMarkBase})},
		"layer 7: virtualServices[].transparent": {from: func(c *config.Config) { c.VirtualServices[0].Type = "http" },
			mutate: func(c *config.Config) { c.VirtualServices[0].Transparent = config.Bool(true) },
			plan:   managed(netcfg.Service{Transparent: true})},
		"options.connTimeout":     {mutate: func(c *config.Config) { c.Options.ConnTimeout = 30 }},
		"options.throughputLimit": {mutate: func(c *config.Config) { c.Options.ThroughputLimit = 100 }},
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		tc := cases[name]
		t.Run(name, func(t *testing.T) {
			if _, ok := applied[strings.TrimPrefix(name, "layer 7: ")]; !ok {
				t.Fatalf("%s is not in the registry", name)
			}
			from := base()
			if tc.from != nil {
				tc.from(from)
				from.SetDefaults()
			}
			want := describe(compileOnly(t, from, nil))
			cfg := base()
			if tc.from != nil {
				tc.from(cfg)
			}
			tc.mutate(cfg)
			cfg.SetDefaults()
			if err := cfg.Validate(); err != nil {
				t.Fatalf("mutated configuration invalid: %v", err)
			}
			if got := describe(compileOnly(t, cfg, tc.plan)); got == want {
				t.Errorf("changing %s changed nothing the compiled service does:\n%s", name, got)
			}
		})
	}
	// The plan alone: a changed mark or transparency is compiled anew,
	// never reused from the generation in force.
	e := newEngine(t)
	cfg := base()
	cfg.VirtualServices[0].Port = testkit.FreePort(t, "127.0.0.1")
	for i, p := range []*netcfg.Plan{managed(netcfg.Service{}), managed(netcfg.Service{Mark: netcfg.GatewayMarkBase}),
		managed(netcfg.Service{Mark: netcfg.GatewayMarkBase + 1}), managed(netcfg.Service{Transparent: true})} {
		if err := e.ApplyPlan(cfg, p); err != nil {
			t.Fatal(err)
		}
		if e.Snapshot().Plan() != p {
			t.Errorf("plan %d: the snapshot does not keep the plan it was compiled with", i)
		}
		s := e.Snapshot().services[0]
		if i > 0 && s.reused {
			t.Errorf("plan %d (%+v): the service was reused from the previous plan", i, p.Services[1])
		}
		if c := s.handler.Config(); c.Mark != p.Services[1].Mark || c.Transparent != p.Services[1].Transparent {
			t.Errorf("plan %d: the l4 service has mark %#x transparent %v, want %+v", i, c.Mark, c.Transparent, p.Services[1])
		}
	}
	if err := e.ApplyPlan(cfg, managed(netcfg.Service{Transparent: true})); err != nil {
		t.Fatal(err)
	}
	if !e.Snapshot().services[0].reused {
		t.Error("the same plan again: the service was not reused")
	}
}
