package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/console"
)

// maxBackupFile is the largest backup file restore reads (the API's limit).
const maxBackupFile = 64 << 20

func backupCmd() *cobra.Command {
	var dataDir, output string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a backup file: configuration, users and API keys, signed by this installation",
		Long: `Write a backup file (gzip'd JSON) with the current configuration, the users
and the API keys (password and key hashes included: keep it like a secret),
signed with this installation's backup signing key. "fulcrum restore" restores
it here; another installation restores it only after "fulcrum backup key
import" of this installation's key, or with --allow-unsigned.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return errors.New("-o FILE is required (use - for standard output)")
			}
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/backup", nil, "", nil)
			if err != nil {
				return err
			}
			return writeOutput(cmd, output, body)
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the backup to this file (mode 0600); - for standard output")
	cmd.AddCommand(backupKeyCmd())
	return cmd
}

// writeOutput writes data to standard output (file "-") or to a new file
// readable by its owner only.
func writeOutput(cmd *cobra.Command, file string, data []byte) error {
	if file == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// readInput reads a file, or standard input for "-", up to limit bytes.
func readInput(cmd *cobra.Command, file string, limit int64) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB", file, limit>>20)
	}
	return b, nil
}

// restoreAnswer mirrors the API's answer to POST /restore.
type restoreAnswer struct {
	changeResult
	Backup struct {
		Version   int       `json:"version"`
		Revision  uint64    `json:"revision"`
		Created   time.Time `json:"created"`
		Signature string    `json:"signature"`
		SignedBy  string    `json:"signedBy"`
	} `json:"backup"`
	AccountsRestored bool            `json:"accountsRestored"`
	Users            []accountChange `json:"users"`
	APIKeys          []accountChange `json:"apiKeys"`
}

// accountChange mirrors store.AccountChange.
type accountChange struct {
	Name   string   `json:"name"`
	User   string   `json:"user"`
	Role   string   `json:"role"`
	Change string   `json:"change"`
	Fields []string `json:"fields"`
}

// signatures words the API's signature states.
var signatures = map[string]string{
	"own":         "signed by this installation",
	"trusted":     "signed by the trusted key %s",
	"unsigned":    "NOT signed",
	"unknown-key": "signed by the unknown key %s (another installation's)",
	"invalid":     "with a signature that does NOT match its content (changed after it was signed)",
}

func (a restoreAnswer) print(w io.Writer) {
	sig := signatures[a.Backup.Signature]
	if strings.Contains(sig, "%s") {
		sig = fmt.Sprintf(sig, a.Backup.SignedBy)
	}
	if sig == "" {
		sig = "signature: " + a.Backup.Signature
	}
	fmt.Fprintf(w, "Backup of revision %d made %s, %s.\n", a.Backup.Revision, a.Backup.Created.UTC().Format(time.RFC3339), sig)
	if len(a.Diff) == 0 {
		fmt.Fprintln(w, "Configuration: no changes.")
	} else {
		fmt.Fprintf(w, "Configuration: %d change(s):\n", len(a.Diff))
		a.changeResult.print(w)
	}
	state := "kept (--users replaces them)"
	if a.AccountsRestored {
		state = "replaced"
	}
	for _, part := range []struct {
		what string
		list []accountChange
	}{{"Users", a.Users}, {"API keys", a.APIKeys}} {
		if len(part.list) == 0 {
			fmt.Fprintf(w, "%s: the backup's are the same.\n", part.what)
			continue
		}
		fmt.Fprintf(w, "%s %s:\n", part.what, state)
		for _, c := range part.list {
			mark := map[string]string{"added": "+", "removed": "-", "changed": "~"}[c.Change]
			who := c.Name + " (" + c.Role
			if c.User != "" {
				who = fmt.Sprintf("%q (user %s", c.Name, c.User)
			}
			if len(c.Fields) > 0 {
				who += "; " + strings.Join(c.Fields, ", ")
			}
			fmt.Fprintf(w, "  %s %s)\n", mark, who)
		}
	}
}

func restoreCmd() *cobra.Command {
	var dataDir string
	var dryRun, allowUnsigned, users bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup file (configuration only unless --users); shows what it changes",
		Long: `Restore a backup file made by "fulcrum backup" (or GET /api/v1/backup) as a
new revision. What it changes is shown first: the configuration's diff, and the
users and API keys it would add, remove or change, by name. --dry-run stops
there.

Only the configuration is restored unless --users is given: then the users and
API keys are replaced by the backup's too.

A backup must be signed by this installation, or by a key imported with "fulcrum
backup key import". One that is unsigned, signed by an unknown key, or changed
after it was signed is refused unless --allow-unsigned is given: use it only for
a backup you know, after a --dry-run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			data, err := readInput(cmd, file, maxBackupFile)
			if err != nil {
				return fmt.Errorf("read backup: %w", err)
			}
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			q := url.Values{}
			if allowUnsigned {
				q.Set("allowUnsigned", "true")
			}
			if users {
				q.Set("users", "true")
			}
			do := func(dry bool) (restoreAnswer, error) {
				v := url.Values{}
				for k, vs := range q {
					v[k] = vs
				}
				if dry {
					v.Set("dryRun", "true")
				}
				var a restoreAnswer
				path := "/api/v1/restore"
				if len(v) > 0 {
					path += "?" + v.Encode()
				}
				body, _, err := c.Do("POST", path, data, "application/gzip", nil)
				if err != nil {
					var ae *console.APIError
					if errors.As(err, &ae) && ae.Status == http.StatusForbidden && !allowUnsigned {
						return a, fmt.Errorf("%s is refused: %w\nIf you know where it comes from: fulcrum restore --dry-run --allow-unsigned %s shows what it would change", file, err, file)
					}
					return a, fmt.Errorf("%s is refused: %w", file, err)
				}
				if err := json.Unmarshal(body, &a); err != nil {
					return a, fmt.Errorf("read answer: %w", err)
				}
				return a, nil
			}
			out := cmd.OutOrStdout()
			plan, err := do(true)
			if err != nil {
				return err
			}
			plan.print(out)
			if dryRun {
				fmt.Fprintf(out, "Dry run: nothing restored (current revision %d).\n", plan.Revision)
				return nil
			}
			res, err := do(false)
			if err != nil {
				return err
			}
			what := "configuration"
			if res.AccountsRestored {
				what = "configuration, users and API keys"
			}
			fmt.Fprintf(out, "Restored the %s as revision %d.\n", what, res.Revision)
			if !c.Live {
				fmt.Fprintln(out, "No server is running on this data directory: the change takes effect when it starts.")
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what the restore would change, and restore nothing")
	cmd.Flags().BoolVar(&allowUnsigned, "allow-unsigned", false, "accept a backup not signed by this installation or a trusted key (unsigned, foreign, or changed after signing)")
	cmd.Flags().BoolVar(&users, "users", false, "replace the users and API keys with the backup's too")
	return cmd
}

func backupKeyCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Export, import, list and remove the keys backups are signed with",
		Long: `Each installation signs its backups with its own key, kept in its store (never
in a backup). To restore a backup on another installation on purpose, export
this installation's key and import it there:

  fulcrum backup key export -o this.key        # here
  fulcrum backup key import this.key           # there

The key lets whoever holds it make backups that the importing installation
trusts, users included: keep it like a password, and remove it there when the
move is done (fulcrum backup key remove ID).`,
		Args: cobra.NoArgs,
	}
	connect := func() (*console.Client, error) { return console.Connect(dataDir) }
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", appliance.DefaultDataDir, "data directory (store, admin certificate, console socket)")

	var output string
	export := &cobra.Command{
		Use:   "export -o FILE",
		Short: "Write this installation's backup signing key (keep it like a password)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return errors.New("-o FILE is required (use - for standard output)")
			}
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/backup/key", nil, "", nil)
			if err != nil {
				return err
			}
			var k struct {
				Key string `json:"key"`
				ID  string `json:"id"`
			}
			if err := json.Unmarshal(body, &k); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if err := writeOutput(cmd, output, []byte(k.Key+"\n")); err != nil {
				return err
			}
			if output != "-" {
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote backup key %s to %s.\n", k.ID, output)
			}
			return nil
		},
	}
	export.Flags().StringVarP(&output, "output", "o", "", "write the key to this file (mode 0600); - for standard output")

	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Trust the backups signed with another installation's key (FILE from its export; - for standard input)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readInput(cmd, args[0], 4096)
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			req, _ := json.Marshal(map[string]string{"key": strings.TrimSpace(string(text))})
			body, _, err := c.Do("POST", "/api/v1/backup/keys", req, "application/json", nil)
			if err != nil {
				return err
			}
			var k struct {
				ID  string `json:"id"`
				Own bool   `json:"own"`
			}
			if err := json.Unmarshal(body, &k); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if k.Own {
				fmt.Fprintf(cmd.OutOrStdout(), "Key %s is this installation's own: nothing to do.\n", k.ID)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Backups signed with key %s are now trusted.\n", k.ID)
			}
			return nil
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List this installation's key and the trusted ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/backup/keys", nil, "", nil)
			if err != nil {
				return err
			}
			var l struct {
				Keys []struct {
					ID  string `json:"id"`
					Own bool   `json:"own"`
				} `json:"keys"`
			}
			if err := json.Unmarshal(body, &l); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			for _, k := range l.Keys {
				what := "trusted (imported)"
				if k.Own {
					what = "this installation's (signs its backups)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", k.ID, what)
			}
			return nil
		},
	}

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Stop trusting the backups signed with an imported key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			if _, _, err := c.Do("DELETE", "/api/v1/backup/keys/"+url.PathEscape(args[0]), nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backups signed with key %s are no longer trusted.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(export, imp, list, remove)
	return cmd
}
