package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
)

func serveCmd() *cobra.Command {
	var o appliance.Options
	var pwFile, logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Fulcrum: the data plane and the admin API",
		Long: `Run Fulcrum with the configuration stored in the data directory.

On the first start the administrator "bal" is created. Its password is taken
from $FULCRUM_ADMIN_PASSWORD or --admin-password-file; otherwise a random one is
generated and printed once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			o.Logger, o.Out, o.Version = log, cmd.OutOrStdout(), version
			o.AdminPassword = os.Getenv(appliance.PasswordEnv)
			if pwFile != "" {
				if o.AdminPassword, err = appliance.ReadPasswordFile(pwFile); err != nil {
					return err
				}
			}
			a, err := appliance.Start(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Fulcrum %s serving configuration revision %d from %s. Stop with Ctrl-C.\n",
				version, a.Control.Current().Revision, o.DataDir)
			waitForSignal()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping")
			return a.Close()
		},
	}
	dataDirFlag(cmd, &o.DataDir)
	cmd.Flags().StringVar(&o.AdminAddr, "admin-addr", appliance.DefaultAdminAddr, "admin plane listen address (HTTPS)")
	cmd.Flags().StringVar(&pwFile, "admin-password-file", "", "file holding the first administrator's password (first start only)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	signal.Stop(ch)
}
