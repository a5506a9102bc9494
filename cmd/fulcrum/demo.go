package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

func demoCmd() *cobra.Command {
	var o appliance.Options
	var port int
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Fulcrum with three demo backends and one virtual service balancing them",
		Long: `Start three small HTTP backends on 127.0.0.1, Fulcrum in a temporary data
directory, and a virtual service on 127.0.0.1:PORT that balances them round
robin. Send requests to it and watch the answers rotate; look at it through
the admin API. Everything is removed on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port must be 1-65535, got %d", port)
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.DataDir == "" {
				dir, err := os.MkdirTemp("", "fulcrum-demo-")
				if err != nil {
					return fmt.Errorf("demo data directory: %w", err)
				}
				defer os.RemoveAll(dir)
				o.DataDir = dir
			}
			var servers []config.RealServer
			for i := 1; i <= 3; i++ {
				addr, stop, err := startBackend(i)
				if err != nil {
					return err
				}
				defer stop()
				servers = append(servers, config.RealServer{Address: "127.0.0.1", Port: addr.Port})
			}
			o.Logger, o.Out = log, out
			o.AdminPassword = os.Getenv(appliance.PasswordEnv)
			a, err := appliance.Start(o)
			if err != nil {
				return err
			}
			defer a.Close()
			vs := config.VirtualService{NickName: "demo", Address: "127.0.0.1", Port: port, Protocol: "tcp",
				Type: "gen", Schedule: "rr", RealServers: servers}
			_, err = a.Control.Apply(control.Change{
				Actor:   control.Actor{User: "demo", Source: control.SourceSystem},
				Summary: "demo: one virtual service over three backends",
				Mutate: func(c *config.Config) error {
					c.VirtualServices = append(c.VirtualServices, vs)
					return nil
				},
			})
			if err != nil {
				return fmt.Errorf("create the demo virtual service: %w", err)
			}
			fmt.Fprintf(out, "\nDemo virtual service: http://127.0.0.1:%d/ balancing round robin over\n", port)
			for _, rs := range servers {
				fmt.Fprintf(out, "  real server 127.0.0.1:%d\n", rs.Port)
			}
			fmt.Fprintf(out, "\nTry:\n  for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:%d/; done\n", port)
			fmt.Fprintf(out, "  curl -sk -u bal:PASSWORD %s/api/v1/status\n\nStop with Ctrl-C.\n", a.AdminURL())
			waitForSignal(func() { _ = a.ReopenLogs() })
			return nil
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "data directory (default: a temporary one, removed on exit)")
	cmd.Flags().StringVar(&o.AdminAddr, "admin-addr", appliance.DefaultAdminAddr, "admin plane listen address (HTTPS)")
	cmd.Flags().IntVar(&port, "port", 8080, "port of the demo virtual service on 127.0.0.1")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}

// startBackend runs demo backend n: an HTTP server on 127.0.0.1 that says
// which backend answered.
func startBackend(n int) (*net.TCPAddr, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("demo backend %d: %w", n, err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Hello from demo backend %d (127.0.0.1:%d), you are %s\n", n, addr.Port, r.RemoteAddr)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "demo backend %d: %v\n", n, err)
		}
	}()
	return addr, func() { _ = srv.Close() }, nil
}
