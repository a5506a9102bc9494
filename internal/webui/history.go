package webui

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// pageSize is the number of rows of the history and audit lists.
const pageSize = 50

// historyData is the Configuration history page's data.
type historyData struct {
	Current   uint64
	Revisions []store.Change
	// Older is the ?before= of the next page, 0 when there is none.
	Older uint64
}

// before reads the ?before= of a paged list.
func before(r *http.Request) uint64 {
	n, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	return n
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	list, err := s.hist.History(before(r), pageSize)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	d := historyData{Current: s.ctl.Current().Revision, Revisions: list}
	if len(list) == pageSize && list[len(list)-1].Revision > 1 {
		d.Older = list[len(list)-1].Revision
	}
	s.render(w, r, p, http.StatusOK, "history", view{Title: "Configuration history", Nav: "history", Data: d})
}

// diffLine is one changed field of a revision diff.
type diffLine struct {
	Kind string // "add", "del" or "mod"
	Path string
	Old  string
	New  string
}

// revisionData is a revision page's data.
type revisionData struct {
	Rev     store.Change
	From    uint64
	Current uint64
	Lines   []diffLine
}

func (s *Server) revisionPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	n, err := strconv.ParseUint(r.PathValue("rev"), 10, 64)
	if err != nil || n == 0 {
		s.errorPage(w, r, p, http.StatusNotFound, "No such revision.")
		return
	}
	to, err := s.hist.Revision(n)
	if err != nil {
		s.revisionErr(w, r, p, n, err)
		return
	}
	fromN := n - 1
	if v := r.URL.Query().Get("from"); v != "" {
		if fromN, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.errorPage(w, r, p, http.StatusBadRequest, "from must be a revision number.")
			return
		}
	}
	from := config.Default()
	if fromN > 0 {
		old, err := s.hist.Revision(fromN)
		if err != nil {
			s.revisionErr(w, r, p, fromN, err)
			return
		}
		from = old.Config
	}
	d := revisionData{Rev: to.Change, From: fromN, Current: s.ctl.Current().Revision}
	for _, df := range config.Diff(from, to.Config) {
		l := diffLine{Path: df.Path, Old: string(df.Old), New: string(df.New), Kind: "mod"}
		switch {
		case df.Old == nil:
			l.Kind = "add"
		case df.New == nil:
			l.Kind = "del"
		}
		d.Lines = append(d.Lines, l)
	}
	s.render(w, r, p, http.StatusOK, "revision", view{Title: fmt.Sprintf("Revision %d", n), Nav: "history", Data: d})
}

func (s *Server) revisionErr(w http.ResponseWriter, r *http.Request, p admin.Principal, n uint64, err error) {
	if errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, p, http.StatusNotFound, fmt.Sprintf("Revision %d does not exist or was pruned.", n))
		return
	}
	s.fail(w, r, p, err)
}

// rollback makes a revision's configuration current again, as a new
// revision.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	n, err := strconv.ParseUint(r.PathValue("rev"), 10, 64)
	if err != nil || n == 0 {
		s.errorPage(w, r, p, http.StatusNotFound, "No such revision.")
		return
	}
	old, err := s.hist.Revision(n)
	if err != nil {
		s.revisionErr(w, r, p, n, err)
		return
	}
	if !s.confirmed(w, r, p, fmt.Sprintf("Roll the configuration back to revision %d (%s)? This makes a new revision; the current one stays in the history.", n, old.Summary),
		"Roll back", fmt.Sprintf("/history/%d", n)) {
		return
	}
	res, err := s.run(r, p, formEdit{summary: fmt.Sprintf("rollback to revision %d", n), mutate: func(c *config.Config) error {
		*c = *old.Config.Clone()
		return nil
	}})
	if err != nil {
		f := newForm()
		if status := explain(f, err, ""); status != 0 {
			s.setFlash(p, "error", fmt.Sprintf("Rollback to revision %d refused: %s", n, joinMsgs(f)))
			http.Redirect(w, r, fmt.Sprintf("/history/%d", n), http.StatusSeeOther)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/history", committedMsg(res, fmt.Sprintf("Rolled back to revision %d", n)))
}

func joinMsgs(f *form) string {
	out := ""
	for _, m := range append(f.General(), flatErrs(f)...) {
		if out != "" {
			out += "; "
		}
		out += m
	}
	return out
}

// auditData is the Audit log page's data.
type auditData struct {
	Entries []store.AuditEntry
	Older   uint64
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	list, err := s.hist.Audit(before(r), pageSize)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	d := auditData{Entries: list}
	if len(list) == pageSize && list[len(list)-1].Seq > 1 {
		d.Older = list[len(list)-1].Seq
	}
	s.render(w, r, p, http.StatusOK, "audit", view{Title: "Audit log", Nav: "audit", Data: d})
}

// backupData is the Backup and restore page's data.
type backupData struct {
	Form *form
}

func (s *Server) backupPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.render(w, r, p, http.StatusOK, "backup", view{Title: "Backup and restore", Nav: "backup", Data: backupData{Form: newForm("file")}})
}

// backupDownload sends a backup file (configuration with private keys,
// users and API keys), so it needs the read-secrets permission.
func (s *Server) backupDownload(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	name := fmt.Sprintf("fulcrum-backup-r%d-%s.json.gz", snap.Revision, s.now().UTC().Format("20060102T150405Z"))
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.hist.Backup(w); err != nil {
		s.log.Error("webui: backup failed", "err", err)
		return
	}
	s.auth.Audit(p, r.RemoteAddr, "backup", fmt.Sprintf("backup of revision %d (web UI)", snap.Revision), true)
}

// restore replaces configuration, users and API keys with a backup file's.
func (s *Server) restore(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("file")
	data, err := readUpload(r, "file", maxUploadBody)
	if err == nil && len(data) == 0 {
		err = errors.New("choose a backup file")
	}
	if err != nil {
		f.errs["file"] = []string{err.Error()}
		s.render(w, r, p, http.StatusUnprocessableEntity, "backup", view{Title: "Backup and restore", Nav: "backup", Data: backupData{Form: f}})
		return
	}
	if !s.confirmedUpload(w, r, p) {
		return
	}
	snap, err := s.ctl.Restore(bytes.NewReader(data), actor(r, p))
	if err != nil {
		s.auth.Audit(p, r.RemoteAddr, "restore", err.Error(), false)
		f.errs["file"] = []string{err.Error()}
		if !errors.Is(err, store.ErrBadBackup) {
			s.log.Error("webui: restore failed", "err", err)
		}
		s.render(w, r, p, http.StatusUnprocessableEntity, "backup", view{Title: "Backup and restore", Nav: "backup", Data: backupData{Form: f}})
		return
	}
	s.auth.Audit(p, r.RemoteAddr, "restore", snap.Change.Summary, true)
	s.redirect(w, r, p, "/history", fmt.Sprintf("Backup restored as revision %d: its configuration only; users and API keys were kept (the API restores them with users=true).", snap.Revision))
}

// confirmedUpload is confirmed for the restore form: a file upload cannot
// be carried through a confirmation page, so the form must say yes (the
// JavaScript dialog does; without it, a confirmation checkbox).
func (s *Server) confirmedUpload(w http.ResponseWriter, r *http.Request, p admin.Principal) bool {
	if v := r.PostFormValue("confirmed"); v == "yes" || v == "on" {
		return true
	}
	f := newForm("file", "confirmed")
	f.errs["confirmed"] = []string{"Tick this box to confirm: a restore replaces the whole configuration, the users and the API keys."}
	s.render(w, r, p, http.StatusUnprocessableEntity, "backup", view{Title: "Backup and restore", Nav: "backup", Data: backupData{Form: f}})
	return false
}
