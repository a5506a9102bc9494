package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
)

func serveCmd() *cobra.Command {
	var o appliance.Options
	var pwFile, logLevel, pprofAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Fulcrum: the data plane and the admin API",
		Long: `Run Fulcrum with the configuration stored in the data directory.

On the first start the administrator "bal" is created. Its password is taken
from $FULCRUM_ADMIN_PASSWORD or --admin-password-file; otherwise a random one is
generated and printed once.

A store file that is damaged, or missing or empty in a data directory that
holds an install, is refused: see "fulcrum store check" and "fulcrum store
salvage", or start afresh with --reinitialise (the old file is kept aside)
and restore a backup.

With --manage-network auto (the default) and the privilege to (root or
CAP_NET_ADMIN), Fulcrum applies its network settings and what its services
need (VIP addresses, per-service gateways, SNAT, transparency) to the host
before the services open their sockets, and removes what it added when it
stops. A network change not confirmed within its window is rolled back, also
at the next start if Fulcrum stopped inside the window.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			o.Logger, o.Out, o.Version, o.Commit = log, cmd.OutOrStdout(), version, commit
			o.AdminPassword = os.Getenv(appliance.PasswordEnv)
			if pwFile != "" {
				if o.AdminPassword, err = appliance.ReadPasswordFile(pwFile); err != nil {
					return err
				}
			}
			stopPprof, err := startPprof(pprofAddr, log)
			if err != nil {
				return err
			}
			defer stopPprof()
			a, err := appliance.Start(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Fulcrum %s serving configuration revision %d from %s. Stop with Ctrl-C.\n",
				version, a.Control.Current().Revision, o.DataDir)
			waitForSignal(func() {
				if err := a.ReopenLogs(); err != nil {
					log.Error("SIGHUP: logs not reopened", "err", err)
					return
				}
				log.Info("SIGHUP: logs reopened")
			})
			fmt.Fprintln(cmd.OutOrStdout(), "stopping")
			return a.Close()
		},
	}
	dataDirFlag(cmd, &o.DataDir)
	cmd.Flags().StringVar(&o.AdminAddr, "admin-addr", "", "admin plane listen address (HTTPS); default: the network settings' adminAddress (fulcrum setup), else "+appliance.DefaultAdminAddr)
	cmd.Flags().StringVar(&o.ManageNetwork, "manage-network", appliance.ManageAuto, "apply the network settings and what services need (VIPs, gateways, SNAT, transparency) to the host: auto (when privileged: CAP_NET_ADMIN), on (fail to start without the privilege) or off")
	cmd.Flags().StringVar(&o.ResolvConf, "resolv-conf", "", "resolver file written from the network settings' DNS (default /etc/resolv.conf)")
	cmd.Flags().StringVar(&pwFile, "admin-password-file", "", "file holding the first administrator's password (first start only)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().BoolVar(&o.Reinitialise, "reinitialise", false, "start with a new, empty store if the store file is missing, empty or damaged (a damaged file is kept aside, renamed fulcrum.db.damaged-<time>); a healthy store is opened as usual")
	cmd.Flags().StringVar(&o.MetricsAddr, "metrics-addr", "", "also serve Prometheus metrics (GET /metrics) WITHOUT authentication on this host:port, for scrapers that cannot send credentials; off by default because the admin plane stays authenticated (its /metrics takes an API key) and this listener exposes service names and addresses to anyone who can reach it: put it on a management network")
	cmd.Flags().StringVar(&pprofAddr, "pprof-listen", "", "serve net/http/pprof on this loopback address (off by default; for profiling)")
	return cmd
}

// startPprof serves the Go profiler's endpoints under /debug/pprof/ on addr,
// on a listener of its own, when addr is not empty. Only loopback addresses
// are accepted: the profiler has no authentication. The returned function
// closes the listener.
func startPprof(addr string, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof listener stopped", "err", err)
		}
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// checkLoopback accepts host:port only when host is a loopback IP address
// (names are refused: what they resolve to can change).
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: only a loopback address is allowed", addr)
	}
	return nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// waitForSignal returns at SIGINT or SIGTERM, and calls hup at every
// SIGHUP (logrotate's postrotate: the log files are reopened).
func waitForSignal(hup func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(ch)
	for sig := range ch {
		if sig == syscall.SIGHUP {
			hup()
			continue
		}
		return
	}
}
