package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/console"
)

func templateCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "template",
		Short: "List, show, import and instantiate application templates",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", appliance.DefaultDataDir, "data directory (store, admin certificate, console socket)")
	connect := func() (*console.Client, error) { return console.Connect(dataDir) }

	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in and imported templates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/templates", nil, "", nil)
			if err != nil {
				return err
			}
			var out struct {
				Templates []struct {
					Name, Title string
					Builtin     bool
					Services    int
				}
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSERVICES\tKIND\tTITLE")
			for _, t := range out.Templates {
				kind := "imported"
				if t.Builtin {
					kind = "built-in"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Services, kind, t.Title)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a template document (YAML)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/templates/"+url.PathEscape(args[0]), nil, "", nil)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(body)
			return err
		},
	}
	var replace bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a template document (YAML or JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read template: %w", err)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			path := "/api/v1/templates"
			if replace {
				path += "?replace=true"
			}
			if _, _, err := c.Do("POST", path, doc, "application/yaml", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Imported %s.\n", args[0])
			return nil
		},
	}
	imp.Flags().BoolVar(&replace, "replace", false, "replace an imported template of the same name")
	var params []string
	var dryRun bool
	inst := &cobra.Command{
		Use:   "instantiate NAME --param name=value ...",
		Short: "Create a template's virtual services in one change",
		Long: `Create a template's virtual services as one revision (all or none).
Give parameters as --param name=value; a servers parameter takes a comma-separated
list of address or address:port.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			values := map[string]any{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q: want name=value", p)
				}
				values[k] = v
			}
			body, _ := json.Marshal(map[string]any{"parameters": values})
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			path := "/api/v1/templates/" + url.PathEscape(args[0]) + "/instantiate"
			if dryRun {
				path += "?dryRun=true"
			}
			answer, _, err := c.Do("POST", path, body, "application/json", nil)
			if err != nil {
				return err
			}
			var res struct {
				changeResult
				VirtualServices []int `json:"virtualServices"`
			}
			if err := json.Unmarshal(answer, &res); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if dryRun {
				res.print(cmd.OutOrStdout())
				fmt.Fprintf(cmd.OutOrStdout(), "Dry run: nothing created.\n")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created virtual services %v as revision %d.\n", res.VirtualServices, res.Revision)
			return nil
		},
	}
	inst.Flags().StringArrayVar(&params, "param", nil, "parameter as name=value (repeatable)")
	inst.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be created without creating it")
	cmd.AddCommand(list, show, imp, inst)
	return cmd
}
