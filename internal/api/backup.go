package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// restoreResult is the answer of POST /restore: the change, and what the
// restore changed (with dryRun=true: would change).
type restoreResult struct {
	// Revision is the current revision after the restore (for a dry run,
	// the current one).
	Revision uint64 `json:"revision"`
	// Committed is false for a dry run.
	Committed bool `json:"committed"`
	// Summary says which backup was restored and what changed.
	Summary string `json:"summary"`
	// Diff lists the configuration's changes, from the configuration
	// before the restore to the backup's.
	Diff []config.Difference `json:"diff"`
	// Backup describes the backup: its version, revision, when it was made
	// and how it is signed (own, trusted, unsigned, unknown-key, invalid).
	Backup store.BackupInfo `json:"backup"`
	// AccountsRestored is true when users and API keys were replaced
	// (users=true); otherwise they were kept, and Users and APIKeys say
	// what replacing them would change.
	AccountsRestored bool `json:"accountsRestored"`
	// Users lists the users added, removed or changed, by name (never a
	// password hash).
	Users []store.AccountChange `json:"users"`
	// APIKeys lists the API keys added, removed or changed, by ID (never
	// a key hash).
	APIKeys []store.AccountChange `json:"apiKeys"`
}

// restore reads a backup file from the body (any content type). Query:
// dryRun=true only answers what the restore would change;
// allowUnsigned=true accepts a backup that is not signed by this
// installation or a trusted key; users=true replaces the users and API
// keys too (the default restores the configuration only).
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	var o store.RestoreOptions
	for _, q := range []struct {
		name string
		dst  *bool
	}{{"dryRun", &o.DryRun}, {"allowUnsigned", &o.AllowUnsigned}, {"users", &o.Accounts}} {
		v, err := queryBool(r, q.name)
		if err != nil {
			s.fail(w, err)
			return
		}
		*q.dst = v
	}
	p := principal(r)
	if o.Accounts && !p.Can(admin.PermUsers) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: role %s lacks %s, which restoring users (users=true) needs", p.Role, admin.PermUsers), nil)
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxBackupBody)
	snap, plan, err := s.ctl.RestoreWith(body, actor(r), o)
	if err != nil {
		if !o.DryRun {
			s.auth.Audit(p, r.RemoteAddr, "restore", err.Error(), false)
		}
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig) || !errors.Is(err, store.ErrBadBackup):
			s.fail(w, err)
		case errors.Is(err, store.ErrUntrustedBackup):
			writeError(w, http.StatusForbidden, err.Error()+" (allowUnsigned=true allows it; dryRun=true shows what it would change)", nil)
		default:
			fields, _ := config.IsErrors(err)
			writeError(w, http.StatusBadRequest, err.Error(), fields)
		}
		return
	}
	res := restoreResult{Revision: snap.Revision, Committed: !o.DryRun, Diff: plan.Diff, Backup: plan.Backup,
		AccountsRestored: plan.AccountsRestored, Users: plan.Users, APIKeys: plan.APIKeys}
	if o.DryRun {
		res.Summary = plan.Summary()
	} else {
		res.Summary = snap.Change.Summary
		s.auth.Audit(p, r.RemoteAddr, "restore", fmt.Sprintf("revision %d: %s", snap.Revision, plan.Detail()), true)
	}
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, res)
}

// backupKeyStore manages the keys backups are signed with and checked
// against; *store.Store is one.
type backupKeyStore interface {
	BackupKey() (text, id string, err error)
	ImportBackupKey(text string) (store.BackupKeyInfo, error)
	BackupKeys() ([]store.BackupKeyInfo, error)
	RemoveBackupKey(id string) error
}

// backupKeyExport is the answer of GET /backup/key, and the body of
// POST /backup/keys.
type backupKeyExport struct {
	// Key is the key as text (fulcrum-backup-key-1:…). Whoever holds it
	// can make backups that the installations trusting it restore: keep
	// it like a password.
	Key string `json:"key"`
	// ID names the key; signed backups carry it. Ignored on import.
	ID string `json:"id,omitempty"`
}

// backupKeyList is the answer of GET /backup/keys.
type backupKeyList struct {
	// Keys are this installation's signing key (own: true) and the
	// imported keys whose backups are trusted.
	Keys []store.BackupKeyInfo `json:"keys"`
}

// keys returns the store's key management, or answers 501.
func (s *Server) keys(w http.ResponseWriter) (backupKeyStore, bool) {
	ks, ok := s.hist.(backupKeyStore)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this store has no backup signing keys", nil)
	}
	return ks, ok
}

// exportBackupKey answers this installation's backup signing key.
func (s *Server) exportBackupKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keys(w)
	if !ok {
		return
	}
	text, id, err := ks.BackupKey()
	if err != nil {
		s.fail(w, err)
		return
	}
	s.auth.Audit(principal(r), admin.RemoteHost(r.RemoteAddr), "backup-key-export", "exported backup signing key "+id, true)
	writeJSON(w, http.StatusOK, backupKeyExport{Key: text, ID: id})
}

// listBackupKeys lists the keys backups are checked against.
func (s *Server) listBackupKeys(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keys(w)
	if !ok {
		return
	}
	list, err := ks.BackupKeys()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, backupKeyList{Keys: list})
}

// importBackupKey trusts the backups signed with another installation's
// key.
func (s *Server) importBackupKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keys(w)
	if !ok {
		return
	}
	var req backupKeyExport
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	info, err := ks.ImportBackupKey(req.Key)
	if err != nil {
		s.auth.Audit(principal(r), admin.RemoteHost(r.RemoteAddr), "backup-key-import", err.Error(), false)
		s.failKey(w, err)
		return
	}
	detail := "trusting backups signed with key " + info.ID
	if info.Own {
		detail = "imported this installation's own key " + info.ID + " (nothing changed)"
	}
	s.auth.Audit(principal(r), admin.RemoteHost(r.RemoteAddr), "backup-key-import", detail, true)
	writeJSON(w, http.StatusCreated, info)
}

// removeBackupKey stops trusting an imported key.
func (s *Server) removeBackupKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keys(w)
	if !ok {
		return
	}
	id := r.PathValue("name")
	if err := ks.RemoveBackupKey(id); err != nil {
		s.failKey(w, err)
		return
	}
	s.auth.Audit(principal(r), admin.RemoteHost(r.RemoteAddr), "backup-key-remove", "no longer trusting backups signed with key "+id, true)
	w.WriteHeader(http.StatusNoContent)
}

// failKey answers an error of the key management: 400 for a refusal.
func (s *Server) failKey(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrBadBackupKey) {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	s.fail(w, err)
}
