package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/setupui"
)

func setupCmd() *cobra.Command {
	var dataDir, pwFile, logLevel string
	var nonInteractive bool
	var a setupui.Answers
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Quick setup of an appliance: interface, address, gateway, DNS, host name, admin password and listener",
		Long: `Set up a new appliance from its console: the network-side interface and its
address, the default gateway, DNS servers and search domains, the host name,
the administrator's password and the admin listener's address. The answers are
written to the data directory's store (created if new) as one network revision,
confirmed, and the password of the administrator "bal"; "fulcrum serve" applies
them when it starts. A running Fulcrum holds the store and is refused: change
its network in the web UI, or stop it first.

Without --non-interactive it asks on the terminal. With --non-interactive the
answers are the flags; the password comes from --admin-password-file or
$FULCRUM_ADMIN_PASSWORD (for a new store without either, one is generated and
printed once; an existing administrator keeps its password). A flag not given
keeps the stored setting (the admin listener follows the address unless it was
set to something else); --gateway "" and the like clear one. Bad input exits
with status 2, naming the flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if !nonInteractive {
				if f := answerFlagSet(cmd); f != "" {
					return &exitError{code: 2, err: fmt.Errorf("--%s needs --non-interactive", f)}
				}
				if !isTerminal(os.Stdin) || !isTerminal(os.Stdout) {
					return errors.New("setup asks on a terminal; without one, give the answers as flags with --non-interactive (see fulcrum setup --help)")
				}
			}
			s, err := setupui.Open(setupui.Options{DataDir: dataDir, Logger: log})
			if err != nil {
				return err
			}
			defer s.Close()
			var res setupui.Result
			if nonInteractive {
				a = flagAnswers(cmd, s.Stored(a.Interface), a)
				a.Password = os.Getenv(appliance.PasswordEnv)
				if pwFile != "" {
					if a.Password, err = appliance.ReadPasswordFile(pwFile); err != nil {
						return &exitError{code: 2, err: fmt.Errorf("--admin-password-file: %w", err)}
					}
				}
				a.PasswordAgain = a.Password
				res, err = s.Write(a)
			} else {
				res, err = setupui.Run(s, nil, nil)
			}
			var bad setupui.InputError
			if errors.As(err, &bad) {
				return &exitError{code: 2, err: fmt.Errorf("bad input, nothing written:\n%s", bad.Flags())}
			}
			if err != nil {
				return err
			}
			res.Print(cmd.OutOrStdout())
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	f := cmd.Flags()
	f.BoolVar(&nonInteractive, "non-interactive", false, "take the answers from the flags instead of asking")
	f.StringVar(&a.Interface, "interface", "", "network-side interface, e.g. eth0")
	f.StringVar(&a.Address, "address", "", "its address with prefix length, e.g. 10.0.0.5/24")
	f.StringVar(&a.Gateway, "gateway", "", "default gateway, in the address's subnet")
	f.StringSliceVar(&a.DNS, "dns", nil, "DNS server (up to 3: repeat the flag or separate with commas)")
	f.StringSliceVar(&a.Search, "search", nil, "DNS search domain (repeat the flag or separate with commas)")
	f.StringVar(&a.Hostname, "hostname", "", "host name (empty leaves the host's name alone)")
	f.StringVar(&a.AdminAddr, "admin-addr", "", "admin listener address (default: the address's IP, port 8443)")
	f.StringVar(&pwFile, "admin-password-file", "", "file holding the administrator's password (default: $"+appliance.PasswordEnv+")")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}

// answerFlagSet names an answer flag that was given, or "".
func answerFlagSet(cmd *cobra.Command) string {
	for _, name := range []string{"interface", "address", "gateway", "dns", "search", "hostname", "admin-addr", "admin-password-file"} {
		if cmd.Flags().Changed(name) {
			return name
		}
	}
	return ""
}

// flagAnswers is stored with the answers of the flags given (in flags).
func flagAnswers(cmd *cobra.Command, stored, flags setupui.Answers) setupui.Answers {
	a := stored
	set := cmd.Flags().Changed
	if set("address") {
		a.Address = flags.Address
	}
	if set("gateway") {
		a.Gateway = flags.Gateway
	}
	if set("dns") {
		a.DNS = flags.DNS
	}
	if set("search") {
		a.Search = flags.Search
	}
	if set("hostname") {
		a.Hostname = flags.Hostname
	}
	if set("admin-addr") {
		a.AdminAddr = flags.AdminAddr
	}
	return a
}
