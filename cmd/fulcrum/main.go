// Command fulcrum is the Fulcrum load balancer appliance: the server
// (serve), the quick setup of a new appliance (setup), a one-command
// demonstration (demo), and the console tools that change its
// configuration (apply, export, passwd).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "fulcrum",
		Short:         "Fulcrum: a load balancer appliance",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), demoCmd(), applyCmd(), exportCmd(), passwdCmd(), templateCmd(), verifyCmd(), versionCmd(), storeCmd())
	root.AddCommand(backupCmd(), restoreCmd(), setupCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "fulcrum %s (commit %s)\n", version, commit)
			return nil
		},
	}
}

// dataDirFlag adds the --data-dir flag shared by the commands.
func dataDirFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "data-dir", appliance.DefaultDataDir, "data directory (store, admin certificate, console socket)")
}
