package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/console"
)

func verifyCmd() *cobra.Command {
	var dataDir, caFile string
	var vs int
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Test the deployment: send every service's smoke checks through it as a client would",
		Long: `Send the smoke checks of the virtual services (the URLs templates add, such as
the Lync meeting and dial-in URLs, or checks you added to a service) through each
service as a client would, and report per URL: pass or fail, the status, the real
server that answered, and for HTTPS whether the certificate chain verifies and its
names cover the host. The exit code is 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{}
			if vs != 0 {
				body["vs"] = vs
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
				body["caPem"] = string(pem)
			}
			doc, _ := json.Marshal(body)
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			if !c.Live {
				return fmt.Errorf("no server is running on %s: verification sends traffic through the running services", dataDir)
			}
			answer, _, err := c.Do("POST", "/api/v1/verify", doc, "application/json", nil)
			if err != nil {
				return err
			}
			var rep struct {
				Passed, Failed int
				Results        []struct {
					Service, Check, URL, Error, RealServer string
					Pass                                   bool
					Status                                 int
					TLS                                    *struct {
						CoversHost, ChainValid bool
						ChainError             string
					}
				}
			}
			if err := json.Unmarshal(answer, &rep); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			out := cmd.OutOrStdout()
			if len(rep.Results) == 0 {
				fmt.Fprintln(out, "No service has smoke checks (templates add them; or add checks to a service).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RESULT\tSERVICE\tCHECK\tSTATUS\tREAL SERVER\tTLS\tURL")
			for _, r := range rep.Results {
				res := "pass"
				if !r.Pass {
					res = "FAIL"
				}
				tlsNote := "-"
				if r.TLS != nil {
					tlsNote = "chain ok"
					if !r.TLS.ChainValid {
						tlsNote = "chain not trusted"
					}
					if !r.TLS.CoversHost {
						tlsNote += ", name not covered"
					}
				}
				rs := r.RealServer
				if rs == "" {
					rs = "?"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", res, r.Service, r.Check, r.Status, rs, tlsNote, r.URL)
				if r.Error != "" {
					fmt.Fprintf(tw, "\t\t  %s\t\t\t\t\n", r.Error)
				}
			}
			_ = tw.Flush()
			fmt.Fprintf(out, "%d passed, %d failed\n", rep.Passed, rep.Failed)
			if rep.Failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d smoke check(s) failed", rep.Failed)}
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().IntVar(&vs, "vs", 0, "verify only this virtual service (id)")
	cmd.Flags().StringVar(&caFile, "ca", "", "PEM file of extra trusted root certificates for the chain check")
	return cmd
}
