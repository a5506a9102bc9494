// Package appliance assembles a running Fulcrum from its parts: the store
// in the data directory, the admin service, the single write path, the data
// plane, the native API on the admin listener (HTTPS) and the local console
// socket that the CLI uses while the server runs.
package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/alert"
	"github.com/fulcrum-lb/fulcrum/internal/api"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/hostnet"
	"github.com/fulcrum-lb/fulcrum/internal/kempapi"
	"github.com/fulcrum-lb/fulcrum/internal/metrics"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/syslog"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
	"github.com/fulcrum-lb/fulcrum/internal/webui"
)

// Defaults of the serve command.
const (
	DefaultDataDir   = "./fulcrum-data"
	DefaultAdminAddr = "127.0.0.1:8443"
	// SocketName is the console socket's file name in the data directory.
	SocketName = "fulcrum.sock"
	// PasswordEnv is the environment variable that may hold the first
	// administrator's password.
	PasswordEnv = "FULCRUM_ADMIN_PASSWORD"
	// HostnetStateName is the file in the data directory listing what
	// Fulcrum changed on the host's network (package hostnet).
	HostnetStateName = "hostnet-state.json"
)

// Values of Options.ManageNetwork.
const (
	// ManageAuto manages the host's network when the process may
	// (CAP_NET_ADMIN and netlink answer).
	ManageAuto = "auto"
	// ManageOn requires it: Start fails without the privilege.
	ManageOn = "on"
	// ManageOff leaves the host's network alone.
	ManageOff = "off"
)

// Options configure Start.
type Options struct {
	// DataDir holds the store, the admin certificate and the console socket.
	DataDir string
	// AdminAddr is the admin listener's address (host:port); "" means
	// the network settings' adminAddress, else DefaultAdminAddr.
	AdminAddr string
	// ManageNetwork says whether Fulcrum applies its network settings
	// and what its services need (VIPs, gateways, SNAT, transparency) to
	// the host: ManageAuto (the default, ""), ManageOn or ManageOff.
	ManageNetwork string
	// ResolvConf is the resolver file written from the DNS settings;
	// "" means hostnet.DefaultResolvConf.
	ResolvConf string
	// AdminPassword is the first administrator's password, used only when
	// the store has no user yet; "" generates one.
	AdminPassword string
	// Out receives the messages meant for the person at the console (where
	// the admin plane listens, a generated password).
	Out io.Writer
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// BcryptCost is passed to the admin service (tests lower it).
	BcryptCost int
	// Version is reported by the LoadMaster-compatible API.
	Version string
	// Commit is the build's commit, for fulcrum_build_info.
	Commit string
	// MetricsAddr, when not "", serves GET /metrics without authentication
	// on a listener of its own (host:port), for scrapers that cannot send
	// credentials; it belongs on a management network. /metrics on the
	// admin listener is always there, authenticated like the API.
	MetricsAddr string
	// HistoryInterval is the statistics history's sampling interval; 0
	// means history.DefaultInterval (2 s). Tests shorten it.
	HistoryInterval time.Duration
	// Reinitialise starts a new store when the store file is missing,
	// empty or damaged, keeping a damaged file aside (see
	// store.Options.Reinitialise); without it Start refuses such a store
	// in a data directory that holds an install.
	Reinitialise bool
}

// Appliance is a running Fulcrum.
type Appliance struct {
	// Store is the configuration store.
	Store *store.Store
	// Auth is the admin service.
	Auth *admin.Service
	// Control is the single write path.
	Control *control.Controller
	// Engine is the data plane.
	Engine *dataplane.Engine
	// API is the native REST API.
	API *api.Server
	// Host manages the host's network; nil when Fulcrum does not.
	Host *hostnet.Manager
	// Events is the event log (health transitions, configuration
	// changes, logins, certificate expiry) that the Logs page, syslog and
	// alerts read.
	Events *events.Bus
	// Metrics is the Prometheus exporter of the data plane's status.
	Metrics *metrics.Exporter
	// History is the statistics history of the data plane's counters.
	History *history.History
	// AccessLog writes the access logs of the services with accessLog
	// (its Stats are the metrics' figures).
	AccessLog *accesslog.Writer
	// Syslog forwards events, and access log lines given to its
	// ForwardAccess, to the remote syslog hosts of options.logging.syslog.
	Syslog *syslog.Hub
	// Alerts mails events and posts them to webhooks (options.alerts).
	Alerts *alert.Alerter

	notify    *notifier
	metricsLn net.Listener
	templates *templates.Library
	version   string
	adminLn   net.Listener
	consoleLn net.Listener
	servers   []*http.Server
	log       *slog.Logger
	stopping  atomic.Bool // set when Close begins (haproxy_process_stopping)
}

// Start opens the data directory, creates the first administrator if there
// is none, starts the data plane with the stored configuration and starts
// the admin and console listeners.
func Start(o Options) (_ *Appliance, err error) {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := checkPermissions(o.DataDir, log); err != nil {
		return nil, err
	}
	st, err := openStore(o, log)
	if err != nil {
		return nil, err
	}
	a := &Appliance{Store: st, log: log, Events: events.NewBus(0)}
	a.notify = newNotifier(a.Events, log)
	a.Syslog, a.Alerts = a.notify.hub, a.notify.alert
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	secret, err := st.Secret("persist-cookie", 32)
	if err != nil {
		return nil, fmt.Errorf("persistence cookie secret: %w", err)
	}
	// A network change left unconfirmed by a stop inside its window is
	// undone before anything is applied.
	if _, err := control.RollBackUnconfirmedNetwork(st, log); err != nil {
		return nil, err
	}
	unmanaged, err := a.openHost(o, log)
	if err != nil {
		return nil, err
	}
	a.AccessLog = accesslog.New(accesslog.Options{Logger: log})
	a.Engine = dataplane.New(dataplane.Options{Logger: log, PersistSecret: secret, AccessLog: a.AccessLog,
		Health: health.Options{OnEvent: a.notify.healthEvent}})
	a.History = startHistory(a.Engine, o.HistoryInterval, log)
	// The controller prepares the host (VIPs on their interfaces) before
	// the data plane opens the services' sockets.
	ctlOpts := control.Options{Unmanaged: unmanaged, Logger: log}
	if a.Host != nil {
		ctlOpts.Host = a.Host
	}
	a.Control, err = control.NewWith(st, a.Engine, ctlOpts)
	if err != nil {
		return nil, err
	}
	a.startAccessLog()
	if o.AdminAddr == "" {
		o.AdminAddr = a.Control.Network().Network.AdminAddress
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	policy := func() config.Lockout { return a.Control.Current().Config.Options.AdminLockout }
	a.Auth = admin.New(st, admin.Options{Policy: policy, Logger: log, BcryptCost: o.BcryptCost, OnAudit: a.notify.auditEvent})
	a.Control.SetAuditor(a.Auth)
	generated, err := a.Auth.Bootstrap(o.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("create the first administrator: %w", err)
	}
	a.notify.start(a.Control)
	a.templates, err = templates.NewLibrary(st)
	if err != nil {
		return nil, err
	}
	a.version = o.Version
	a.API = api.New(api.Options{Control: a.Control, Auth: a.Auth, History: st, Logger: log, Templates: a.templates,
		Status: a.Engine, Counters: a.rsCounters, Down: a.downServers, Events: a.Events, StatsHistory: a.History})

	if err := a.startMetrics(o.MetricsAddr, o.Version, o.Commit); err != nil {
		return nil, err
	}

	host, _, err := net.SplitHostPort(o.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", o.AdminAddr, err)
	}
	// The self-signed certificate Fulcrum made is renewed while the
	// server runs, at the first handshake once it is due.
	certs, err := admin.OpenCertificate(o.DataDir, []string{host}, admin.CertOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	a.adminLn = tls.NewListener(ln, certs.TLSConfig())
	a.serve(a.adminLn, a.adminHandler())

	sock := filepath.Join(o.DataDir, SocketName)
	_ = os.Remove(sock) // a stale socket of a process that died; the store lock proves none runs
	cl, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		_ = cl.Close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	a.consoleLn = cl
	a.serve(cl, a.API.ConsoleHandler())

	fmt.Fprintf(o.Out, "Fulcrum admin API listening on https://%s/api/v1/ (self-signed certificate in %s); web UI at https://%s/\n",
		a.AdminAddr(), o.DataDir, a.AdminAddr())
	if addr := a.MetricsAddr(); addr != "" {
		fmt.Fprintf(o.Out, "Prometheus metrics without authentication at http://%s%s\n", addr, MetricsPath)
	}
	if generated != "" {
		fmt.Fprintf(o.Out, "Created administrator %q with password: %s\n", config.FirstAdmin, generated)
		fmt.Fprintf(o.Out, "This password is shown only once. Change it with: fulcrum passwd --data-dir %s\n", o.DataDir)
	}
	if snap := a.Control.Network(); snap.Plan != nil && !snap.Plan.Managed {
		fmt.Fprintf(o.Out, "The host's network is not managed: %s\n", snap.Plan.Reason)
	}
	if e := a.Control.RuntimeError(); e != "" {
		fmt.Fprintf(o.Out, "WARNING: the data plane could not start the stored configuration: %s\n", e)
	}
	return a, nil
}

// openHost opens the manager of the host's network as o.ManageNetwork
// says, into a.Host, or returns why the host is not managed.
func (a *Appliance) openHost(o Options, log *slog.Logger) (unmanaged string, err error) {
	mode := o.ManageNetwork
	if mode == "" {
		mode = ManageAuto
	}
	switch mode {
	case ManageOff:
		return "Fulcrum was started with --manage-network off", nil
	case ManageAuto, ManageOn:
	default:
		return "", fmt.Errorf("--manage-network must be auto, on or off, got %q", mode)
	}
	caps := hostnet.Probe()
	if !caps.Managed {
		if mode == ManageOn {
			return "", fmt.Errorf("--manage-network on: Fulcrum cannot manage the host's network: %s (run as root or grant CAP_NET_ADMIN, or use --manage-network off)", caps.Reason)
		}
		return caps.Reason, nil
	}
	h, err := hostnet.New(hostnet.Options{Log: log, StateFile: filepath.Join(o.DataDir, HostnetStateName), ResolvConf: o.ResolvConf})
	if err != nil {
		return "", fmt.Errorf("host network: %w", err)
	}
	a.Host = h
	return "", nil
}

// openStore opens the store in the data directory and reports what its
// start-up check found. A missing, empty or damaged store file is refused
// with the store's error, which names the file and the ways out.
func openStore(o Options, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(o.DataDir, store.Options{Reinitialise: o.Reinitialise})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("data directory %s is in use by another fulcrum process: %w", o.DataDir, err)
		}
		return nil, err
	}
	r := st.Report()
	log.Debug("store checked", "file", r.Path, "bytes", r.Size, "pages", r.PagesChecked, "revisions", r.Revisions,
		"complete", r.Complete, "elapsed", r.Elapsed)
	for _, note := range r.Notes {
		log.Warn("store: "+note, "file", r.Path)
	}
	switch {
	case r.SetAside != "":
		fmt.Fprintf(o.Out, "Started afresh with a new store (--reinitialise); the previous store file was kept as %s\n", r.SetAside)
	case r.Reinitialised:
		fmt.Fprintln(o.Out, "Started afresh with a new store (--reinitialise); there was no store file")
	case o.Reinitialise:
		fmt.Fprintln(o.Out, "--reinitialise ignored: the store file is healthy and was opened as it is")
	}
	return st, nil
}

// adminHandler serves the native API under /api/ and the web UI at "/".
func (a *Appliance) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", a.API.Handler())
	mux.Handle(MetricsPath, a.metricsHandler())
	kemp := kempapi.New(kempapi.Options{Control: a.Control, Auth: a.Auth, Backups: a.Store, Runtime: a.Engine, Templates: a.templates,
		Version: a.version, Logger: a.log, AdminAddr: a.AdminAddr()})
	for _, p := range []string{"/access", "/access/", "/accessv2", "/accessv2/"} {
		mux.Handle(p, kemp.Handler())
	}
	ui := webui.New(webui.Options{Control: a.Control, Auth: a.Auth, History: a.Store, Templates: a.templates, Logger: a.log,
		Status: a.Engine, Events: a.Events, StatsHistory: a.History, Verify: verify.Options{Counters: a.rsCounters, Down: a.downServers}})
	mux.Handle("/", ui.Handler())
	return mux
}

func (a *Appliance) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	a.servers = append(a.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// AdminAddr returns the admin listener's address.
func (a *Appliance) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// AdminURL returns the admin plane's base URL.
func (a *Appliance) AdminURL() string { return "https://" + a.AdminAddr() }

// Close stops the listeners, the data plane, the host's network (what
// Fulcrum added is removed) and the store.
func (a *Appliance) Close() error {
	a.stopping.Store(true)
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range a.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Control != nil {
		a.Control.Close() // no rollback timer fires while stopping
	}
	a.stopHistory() // before the data plane it reads
	if a.Engine != nil {
		if err := a.Engine.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// After the data plane, whose connections log as they end.
	if a.AccessLog != nil {
		if err := a.AccessLog.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	// After the data plane: the services' sockets are closed before their
	// VIPs leave the interfaces.
	if a.Host != nil {
		if err := a.Host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("host network: %w", err))
		}
	}
	if a.Store != nil {
		if a.Auth != nil {
			a.Auth.FlushAudit() // the last minute's aggregated failures
		}
		if a.notify != nil {
			a.notify.close() // after the audit's last entries: they are sent too
		}
		if a.consoleLn != nil {
			_ = os.Remove(filepath.Join(filepath.Dir(a.Store.Path()), SocketName))
		}
		if err := a.Store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReadPasswordFile reads the first administrator's password from a file:
// its first line, without the line ending.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// rsCounters returns, per real server, a number that grows with each
// connection and each answer: deployment verification compares it before
// and after a check to tell which real server answered.
func (a *Appliance) rsCounters() map[verify.RSRef]int64 {
	out := map[verify.RSRef]int64{}
	for _, v := range a.Engine.Status() {
		for _, rs := range v.RealServers {
			if rs.Status == status.Down || !rs.Enabled {
				continue // it cannot have answered; its counters may still settle
			}
			// Connections for layer 4; bytes sent for layer 7, whose pooled
			// connections to real servers outlive single requests.
			out[verify.RSRef{VS: v.ID, RS: rs.ID}] = rs.TotalConns + rs.BytesOut
		}
	}
	return out
}

// downServers lists, per service, the real servers that are Down.
func (a *Appliance) downServers() map[int][]string {
	out := map[int][]string{}
	for _, v := range a.Engine.Status() {
		for _, rs := range v.RealServers {
			if rs.Status == status.Down {
				out[v.ID] = append(out[v.ID], net.JoinHostPort(rs.Address, strconv.Itoa(rs.Port)))
			}
		}
	}
	return out
}
