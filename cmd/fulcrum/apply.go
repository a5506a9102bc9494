package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/console"
)

// changeResult mirrors the API's answer to a configuration change.
type changeResult struct {
	Revision  uint64 `json:"revision"`
	Committed bool   `json:"committed"`
	Summary   string `json:"summary"`
	Diff      []struct {
		Path string          `json:"path"`
		Old  json.RawMessage `json:"old"`
		New  json.RawMessage `json:"new"`
	} `json:"diff"`
}

func (r changeResult) print(w io.Writer) {
	for _, d := range r.Diff {
		switch {
		case d.Old == nil:
			fmt.Fprintf(w, "+ %s: %s\n", d.Path, d.New)
		case d.New == nil:
			fmt.Fprintf(w, "- %s: %s\n", d.Path, d.Old)
		default:
			fmt.Fprintf(w, "~ %s: %s -> %s\n", d.Path, d.Old, d.New)
		}
	}
}

func applyCmd() *cobra.Command {
	var dataDir, file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make a YAML or JSON file the whole configuration (shows the diff)",
		Long: `Apply a declarative configuration file (YAML or JSON, as written by
"fulcrum export"): the file becomes the whole configuration, as one new
revision. Services and real servers without ids keep the ids of the existing
ones with the same address and port. The diff is shown first; --dry-run
stops there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f FILE is required (use - for standard input)")
			}
			var doc []byte
			var err error
			if file == "-" {
				doc, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<20))
			} else {
				doc, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read configuration: %w", err)
			}
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			body, etag, err := c.Do("PUT", "/api/v1/config?dryRun=true", doc, "application/yaml", nil)
			if err != nil {
				return fmt.Errorf("%s is not accepted: %w", file, err)
			}
			var plan changeResult
			if err := json.Unmarshal(body, &plan); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			if len(plan.Diff) == 0 {
				fmt.Fprintf(out, "No changes: the configuration already matches (revision %d).\n", plan.Revision)
				return nil
			}
			plan.print(out)
			if dryRun {
				fmt.Fprintf(out, "Dry run: %d change(s) not applied (current revision %d).\n", len(plan.Diff), plan.Revision)
				return nil
			}
			body, _, err = c.Do("PUT", "/api/v1/config", doc, "application/yaml", map[string]string{"If-Match": etag})
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			var res changeResult
			if err := json.Unmarshal(body, &res); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			fmt.Fprintf(out, "Applied %d change(s) as revision %d.\n", len(res.Diff), res.Revision)
			if !c.Live {
				fmt.Fprintln(out, "No server is running on this data directory: the change takes effect when it starts.")
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVarP(&file, "file", "f", "", "configuration file (YAML or JSON; - for standard input)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the diff without applying it")
	return cmd
}

func exportCmd() *cobra.Command {
	var dataDir, format, output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print the whole configuration as YAML (or JSON) that apply takes back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "yaml" && format != "json" {
				return fmt.Errorf("--format must be yaml or json, got %q", format)
			}
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			body, _, err := c.Do("GET", "/api/v1/config?format="+format, nil, "", nil)
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			// The export holds private keys: readable by the owner only.
			return os.WriteFile(output, body, 0o600)
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600) instead of standard output")
	return cmd
}

func passwdCmd() *cobra.Command {
	var dataDir, user string
	var generate, revokeKeys, unlock bool
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Set a user's password from the console (default user bal)",
		Long: `Set a user's password from the console, without the old one: the
console's access to the data directory is the authority. The new password is
read from standard input (twice on a terminal), or generated with --generate.
The user's sessions are ended and the account's lockouts lifted. The user's
API keys keep working unless --revoke-keys is given: revoke them when the
password may have leaked, since a key made with it outlives it. With
--unlock the password is kept and only the lockouts are lifted (an account
guessed at from many addresses is locked for new addresses until then).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if unlock {
				return unlockUser(cmd, dataDir, user)
			}
			pw := ""
			if generate {
				pw = admin.GeneratePassword()
			} else {
				var err error
				if pw, err = readPassword(cmd); err != nil {
					return err
				}
			}
			c, err := console.Connect(dataDir)
			if err != nil {
				return err
			}
			defer c.Close()
			body, _ := json.Marshal(map[string]string{"newPassword": pw})
			if _, _, err := c.Do("PUT", "/api/v1/users/"+user+"/password", body, "application/json", nil); err != nil {
				return err
			}
			if generate {
				fmt.Fprintf(cmd.OutOrStdout(), "New password for %s: %s\n", user, pw)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Password of %s changed.\n", user)
			}
			return userKeys(cmd, c, user, revokeKeys)
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&user, "user", "bal", "user whose password to set")
	cmd.Flags().BoolVar(&generate, "generate", false, "generate a random password and print it")
	cmd.Flags().BoolVar(&revokeKeys, "revoke-keys", false, "also revoke every API key of the user")
	cmd.Flags().BoolVar(&unlock, "unlock", false, "keep the password and only lift the account's lockouts")
	cmd.MarkFlagsMutuallyExclusive("unlock", "generate")
	cmd.MarkFlagsMutuallyExclusive("unlock", "revoke-keys")
	return cmd
}

// unlockUser lifts the lockouts of user through the console.
func unlockUser(cmd *cobra.Command, dataDir, user string) error {
	c, err := console.Connect(dataDir)
	if err != nil {
		return err
	}
	defer c.Close()
	body, _, err := c.Do("POST", "/api/v1/users/"+url.PathEscape(user)+"/unlock", nil, "", nil)
	if err != nil {
		return err
	}
	var res struct {
		WasLocked bool `json:"wasLocked"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("unlock %s: %w", user, err)
	}
	if res.WasLocked {
		fmt.Fprintf(cmd.OutOrStdout(), "Lockouts of %s lifted: new addresses may sign in again.\n", user)
	} else {
		fmt.Fprintf(cmd.OutOrStdout(), "%s was not locked for new addresses; its per-address lockouts are lifted.\n", user)
	}
	return nil
}

// userKeys revokes the API keys of user through the console when revoke
// is set, and otherwise says how many keep working.
func userKeys(cmd *cobra.Command, c *console.Client, user string, revoke bool) error {
	body, _, err := c.Do("GET", "/api/v1/api-keys?user="+url.QueryEscape(user), nil, "", nil)
	if err != nil {
		return fmt.Errorf("list the API keys of %s: %w", user, err)
	}
	var list struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("list the API keys of %s: %w", user, err)
	}
	out := cmd.OutOrStdout()
	if !revoke {
		if n := len(list.Keys); n > 0 {
			fmt.Fprintf(out, "%s has %d API key(s), which keep working; revoke them with: fulcrum passwd --revoke-keys --user %s\n", user, n, user)
		}
		return nil
	}
	for _, k := range list.Keys {
		if _, _, err := c.Do("DELETE", "/api/v1/api-keys/"+url.PathEscape(k.ID), nil, "", nil); err != nil {
			return fmt.Errorf("revoke API key %s of %s: %w", k.ID, user, err)
		}
	}
	fmt.Fprintf(out, "Revoked %d API key(s) of %s.\n", len(list.Keys), user)
	return nil
}

func readPassword(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		first, err := promptHidden(cmd, f, "New password: ")
		if err != nil {
			return "", err
		}
		second, err := promptHidden(cmd, f, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if first != second {
			return "", fmt.Errorf("the passwords differ")
		}
		return first, nil
	}
	b, err := io.ReadAll(io.LimitReader(in, 4096))
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("no password on standard input (or use --generate)")
	}
	return line, nil
}
