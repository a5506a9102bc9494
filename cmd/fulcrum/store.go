package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Exit codes of `fulcrum store check` and `fulcrum store salvage`.
const (
	exitDamaged   = 1 // check: damage found; salvage: written, but something was lost
	exitCannotRun = 2 // the command could not do its work
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Check the store file, or salvage what a damaged one holds",
		Long: `Commands for a store file that Fulcrum refused to start with.

Both read the file without changing it, and refuse to run while a Fulcrum
server holds it.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(storeCheckCmd(), storeSalvageCmd())
	return cmd
}

// storeFile returns the store file of the flags: --file, else the one in
// --data-dir.
func storeFile(dataDir, file string) string {
	if file != "" {
		return file
	}
	return filepath.Join(dataDir, store.FileName)
}

func storeCheckCmd() *cobra.Command {
	var dataDir, file string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the store file and say what is wrong with it",
		Long: `Check the store file: the layout of its pages, bbolt's consistency check, and
every record (each revision's change and configuration, users, API keys, audit
entries). The file is not changed.

Exit status: 0 no damage found, 1 damaged, 2 the check could not run (no such
file, or a running Fulcrum holds it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := storeFile(dataDir, file)
			out := cmd.OutOrStdout()
			r, err := store.Check(path, store.CheckOptions{Timeout: timeout})
			if errors.Is(err, fs.ErrNotExist) {
				if ev := evidence(filepath.Dir(path)); len(ev) > 0 {
					fmt.Fprintf(out, "Store file %s: missing, in a data directory that holds an install (it has %v).\n", path, ev)
					recovery(out, filepath.Dir(path), false)
					return &exitError{exitDamaged, fmt.Errorf("the store file %s is missing", path)}
				}
			}
			if err != nil {
				return &exitError{exitCannotRun, cannotRun(err)}
			}
			printReport(out, r)
			if !r.Damaged() {
				fmt.Fprintln(out, "No damage found.")
				return nil
			}
			recovery(out, filepath.Dir(path), r.Size > 0)
			return &exitError{exitDamaged, fmt.Errorf("the store file %s is damaged", path)}
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&file, "file", "", "store file to check (default: fulcrum.db in the data directory)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop checking after this long and say so (0: check everything)")
	return cmd
}

func storeSalvageCmd() *cobra.Command {
	var dataDir, file, outFile string
	cmd := &cobra.Command{
		Use:   "salvage --out FILE",
		Short: "Copy every readable revision, user, API key and audit entry into a new store file",
		Long: `Read the store file, damaged or not, and copy every revision, user, API key,
audit entry, template and secret that can be read into a new store file, FILE
(which must not exist). The damaged file is never changed. What could not be
read is listed, and recorded in the new file's audit log.

Exit status: 0 everything was copied, 1 the new file was written but something
could not be read, 2 nothing was written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if outFile == "" {
				return &exitError{exitCannotRun, errors.New("--out FILE is required: the new store file to write")}
			}
			path := storeFile(dataDir, file)
			out := cmd.OutOrStdout()
			r, err := store.Salvage(path, outFile, store.SalvageOptions{})
			if err != nil {
				return &exitError{exitCannotRun, cannotRun(err)}
			}
			fmt.Fprintf(out, "Salvaged %s into %s (read from %s):\n", r.Source, r.Out, sourceName(r))
			fmt.Fprintf(out, "  %d revisions", r.Revisions)
			if r.Revisions > 0 {
				fmt.Fprintf(out, " (%d-%d)", r.OldestRevision, r.NewestRevision)
			}
			fmt.Fprintf(out, ", %d users, %d API keys, %d audit entries, %d templates, %d secrets, %d network revisions\n",
				r.Users, r.APIKeys, r.AuditEntries, r.Templates, r.Secrets, r.NetworkRevisions)
			for _, n := range r.Notes {
				fmt.Fprintf(out, "  note: %s\n", n)
			}
			if len(r.Lost) > 0 {
				fmt.Fprintln(out, "Could not be read:")
				for _, l := range r.Lost {
					fmt.Fprintf(out, "  - %s\n", l)
				}
			}
			dir := filepath.Dir(path)
			fmt.Fprintf(out, "To use it: stop Fulcrum, move %s aside (e.g. to %s.damaged), move %s to %s, check it with `fulcrum store check --data-dir %s`, and start Fulcrum.\n",
				path, path, r.Out, path, dir)
			if len(r.Lost) > 0 {
				return &exitError{exitDamaged, fmt.Errorf("%d things could not be read from %s; the rest is in %s", len(r.Lost), path, r.Out)}
			}
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&file, "file", "", "damaged store file (default: fulcrum.db in the data directory)")
	cmd.Flags().StringVar(&outFile, "out", "", "new store file to write (must not exist)")
	return cmd
}

func sourceName(r *store.SalvageReport) string {
	if r.Transaction == 0 {
		return "a root bucket found among the pages (both meta pages are damaged)"
	}
	return fmt.Sprintf("transaction %d", r.Transaction)
}

// cannotRun explains an error that kept a command from running.
func cannotRun(err error) error {
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: a running Fulcrum holds the store file; stop it first", err)
	}
	return err
}

// evidence returns the files of dir that show it holds an install.
func evidence(dir string) []string {
	var out []string
	for _, name := range store.InstallFiles() {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			out = append(out, name)
		}
	}
	return out
}

func printReport(w io.Writer, r *store.Report) {
	fmt.Fprintf(w, "Store file %s: %d bytes", r.Path, r.Size)
	if r.PageSize > 0 {
		fmt.Fprintf(w, ", %d pages of %d bytes in use (%d checked), transaction %d", r.PagesInUse, r.PageSize, r.PagesChecked, r.Transaction)
	}
	fmt.Fprintln(w)
	if r.InstallID != "" {
		fmt.Fprintf(w, "Install %s\n", r.InstallID)
	}
	fmt.Fprintf(w, "%d revisions", r.Revisions)
	if r.Revisions > 0 {
		fmt.Fprintf(w, " (%d-%d)", r.OldestRevision, r.NewestRevision)
	}
	fmt.Fprintf(w, ", %d users, %d API keys, %d audit entries, %d templates, %d network revisions readable; checked in %v\n",
		r.Users, r.APIKeys, r.AuditEntries, r.Templates, r.NetworkRevisions, r.Elapsed.Round(time.Millisecond))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	if r.Damaged() {
		fmt.Fprintln(w, "Damaged:")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		if r.MoreProblems > 0 {
			fmt.Fprintf(w, "  (and %d more)\n", r.MoreProblems)
		}
	}
}

// recovery prints the ways out of a damaged or missing store.
func recovery(w io.Writer, dir string, salvage bool) {
	fmt.Fprintln(w, "What to do (Fulcrum refuses to start with this store):")
	if salvage {
		fmt.Fprintf(w, "  - copy what is readable into a new store file: fulcrum store salvage --data-dir %s --out FILE,\n    then put FILE in place of the damaged file;\n", dir)
	}
	fmt.Fprintf(w, "  - or start afresh with fulcrum serve --data-dir %s --reinitialise (any old file is kept aside)\n    and restore a backup (POST /api/v1/restore).\n", dir)
}
