package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

var timeNow = time.Now

func (s *Server) getOptions(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, redact(r, snap.Config).Options)
}

// updateOptions serves PUT (replace; absent fields take their defaults) and
// PATCH (merge) of the global options.
func (s *Server) updateOptions(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxBody, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	merge := r.Method == http.MethodPatch
	res, ok := s.apply(w, r, control.Change{Mutate: func(c *config.Config) error {
		cur := c.Clone().Options // decoding into next may reuse the lists' arrays
		next := config.Options{}
		if merge {
			next = c.Clone().Options
		}
		if err := config.DecodeInto(body, &next); err != nil {
			return prefix(err, "options")
		}
		if err := next.KeepSecrets(&cur); err != nil {
			return err
		}
		c.Options = next
		return nil
	}})
	if ok {
		writeJSON(w, http.StatusOK, res.Snapshot.Config.Options)
	}
}

// prefix puts path in front of the paths of field errors.
func prefix(err error, path string) error {
	es, ok := config.IsErrors(err)
	if !ok {
		return err
	}
	out := make(config.Errors, len(es))
	for i, e := range es {
		out[i] = e
		if e.Path == "" {
			out[i].Path = path
		} else {
			out[i].Path = path + "." + e.Path
		}
	}
	return out
}

// redact returns c without private keys, the e-mail password and webhook
// secrets unless the caller may read secrets.
func redact(r *http.Request, c *config.Config) *config.Config {
	if principal(r).Can(admin.PermReadSecrets) {
		return c
	}
	out := c.Clone()
	for i := range out.Certificates {
		if out.Certificates[i].KeyPEM != "" {
			out.Certificates[i].KeyPEM = config.Redacted
		}
	}
	out.Options.RedactSecrets()
	return out
}

func wantsYAML(r *http.Request) bool {
	return r.URL.Query().Get("format") == "yaml" || strings.Contains(r.Header.Get("Accept"), "yaml")
}

// getConfig returns the whole configuration as JSON, or YAML with
// ?format=yaml; that document is what PUT /config and `fulcrum apply` take.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	setETag(w, snap.Revision)
	c := redact(r, snap.Config)
	if wantsYAML(r) {
		y, err := config.EncodeYAML(c)
		if err != nil {
			s.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(y)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// putConfig replaces the whole configuration (declarative apply).
// ?dryRun=true only validates and returns the diff.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	dry, err := queryBool(r, "dryRun")
	if err != nil {
		s.fail(w, err)
		return
	}
	body, err := readBody(w, r, maxConfigBody, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	cfg, err := config.Decode(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, ok := s.apply(w, r, control.Change{DryRun: dry, Summary: r.URL.Query().Get("summary"), Mutate: func(c *config.Config) error {
		if err := cfg.Options.KeepSecrets(&c.Options); err != nil {
			return err
		}
		*c = *cfg
		return nil
	}})
	if ok {
		writeJSON(w, http.StatusOK, result(res))
	}
}

// certUpload is the body of POST /certificates.
type certUpload struct {
	// Name is the certificate's name. Required.
	Name string `json:"name"`
	// PEM is a PEM file holding the certificate (and chain) and its key, or
	// for an intermediate the CA certificate(s).
	PEM string `json:"pem,omitempty"`
	// PFX is a base64-encoded PFX/PKCS#12 file, as an alternative to PEM.
	PFX string `json:"pfx,omitempty"`
	// Password unlocks the PFX file.
	Password string `json:"password,omitempty"`
	// Intermediate imports an intermediate CA certificate (no key).
	Intermediate bool `json:"intermediate,omitempty"`
	// Replace allows replacing an existing certificate of the same name.
	Replace bool `json:"replace,omitempty"`
}

// certList is the response of GET /certificates.
type certList struct {
	// Revision is the configuration revision listed.
	Revision uint64 `json:"revision"`
	// Certificates describe the stored certificates, without keys.
	Certificates []certs.Info `json:"certificates"`
}

func (s *Server) listCerts(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	out := certList{Revision: snap.Revision, Certificates: []certs.Info{}}
	for _, c := range snap.Config.Certificates {
		info, err := certs.Describe(c.Name, c.Intermediate, c.CertPEM)
		if err != nil {
			s.fail(w, err)
			return
		}
		out.Certificates = append(out.Certificates, info)
	}
	certs.Annotate(out.Certificates, snap.Config.Certificates, time.Now())
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCert(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	name := r.PathValue("name")
	for _, c := range snap.Config.Certificates {
		if c.Name == name {
			info, err := certs.Describe(c.Name, c.Intermediate, c.CertPEM)
			if err != nil {
				s.fail(w, err)
				return
			}
			one := []certs.Info{info}
			certs.Annotate(one, snap.Config.Certificates, time.Now())
			setETag(w, snap.Revision)
			writeJSON(w, http.StatusOK, one[0])
			return
		}
	}
	s.fail(w, fmt.Errorf("certificate %q: %w", name, control.ErrNotFound))
}

func (s *Server) uploadCert(w http.ResponseWriter, r *http.Request) {
	var up certUpload
	b, err := readBody(w, r, 3*certs.MaxImportSize, false)
	if err == nil {
		err = config.DecodeInto(b, &up)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	ct, err := importCert(up)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, ok := s.apply(w, r, control.Change{Edit: edit.ImportCertificate{Cert: ct, Replace: up.Replace}})
	if !ok {
		return
	}
	info, err := certs.Describe(ct.Name, ct.Intermediate, ct.CertPEM)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/certificates/"+ct.Name)
	_ = res
	writeJSON(w, http.StatusCreated, info)
}

func importCert(up certUpload) (config.Certificate, error) {
	fe := func(path, msg string) error { return config.Errors{{Path: path, Message: msg}} }
	switch {
	case up.Name == "":
		return config.Certificate{}, fe("name", "required")
	case up.PEM == "" && up.PFX == "":
		return config.Certificate{}, fe("pem", "required: a PEM file, or pfx with password")
	case up.PEM != "" && up.PFX != "":
		return config.Certificate{}, fe("pfx", "give pem or pfx, not both")
	}
	if up.Intermediate {
		if up.PFX != "" {
			return config.Certificate{}, fe("pfx", "an intermediate is imported as PEM or DER in pem")
		}
		p, err := certs.ParseIntermediate([]byte(up.PEM))
		if err != nil {
			return config.Certificate{}, fe("pem", err.Error())
		}
		return config.Certificate{Name: up.Name, Intermediate: true, CertPEM: p}, nil
	}
	var imp certs.Imported
	var err error
	if up.PFX != "" {
		data, derr := base64.StdEncoding.DecodeString(up.PFX)
		if derr != nil {
			return config.Certificate{}, fe("pfx", "must be base64: "+derr.Error())
		}
		imp, err = certs.ParsePFX(data, up.Password)
		if err != nil {
			return config.Certificate{}, fe("pfx", err.Error())
		}
	} else if imp, err = certs.ParsePEM([]byte(up.PEM)); err != nil {
		return config.Certificate{}, fe("pem", err.Error())
	}
	return config.Certificate{Name: up.Name, CertPEM: imp.CertPEM, KeyPEM: imp.KeyPEM}, nil
}

func (s *Server) deleteCert(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, ok := s.apply(w, r, control.Change{Edit: edit.DeleteCertificate{Name: name}})
	if ok {
		writeJSON(w, http.StatusOK, result(res))
	}
}

// revisionList is the response of GET /revisions.
type revisionList struct {
	// Current is the current revision.
	Current uint64 `json:"current"`
	// Revisions are the newest revisions first.
	Revisions []store.Change `json:"revisions"`
}

func (s *Server) listRevisions(w http.ResponseWriter, r *http.Request) {
	if list, ok := s.changes(w, r, s.hist.History); ok {
		writeJSON(w, http.StatusOK, revisionList{Current: s.ctl.Current().Revision, Revisions: list})
	}
}

// changes reads a page (?before=&limit=) of a history with list; on an
// error it answers it and reports false.
func (s *Server) changes(w http.ResponseWriter, r *http.Request, list func(before uint64, limit int) ([]store.Change, error)) ([]store.Change, bool) {
	before, limit, err := page(r)
	if err == nil {
		var l []store.Change
		if l, err = list(before, limit); err == nil {
			if l == nil {
				l = []store.Change{}
			}
			return l, true
		}
	}
	s.fail(w, err)
	return nil, false
}

// revisionBody is the response of GET /revisions/{rev}.
type revisionBody struct {
	store.Change
	// Config is the configuration of that revision.
	Config *config.Config `json:"config"`
}

func (s *Server) revision(w http.ResponseWriter, r *http.Request) (store.Revision, bool) {
	n, err := pathInt(r, "rev")
	if err != nil {
		s.fail(w, err)
		return store.Revision{}, false
	}
	rev, err := s.hist.Revision(uint64(n))
	if err != nil {
		s.fail(w, err)
		return rev, false
	}
	return rev, true
}

func (s *Server) getRevision(w http.ResponseWriter, r *http.Request) {
	rev, ok := s.revision(w, r)
	if ok {
		writeJSON(w, http.StatusOK, revisionBody{Change: rev.Change, Config: redact(r, rev.Config)})
	}
}

// diffBody is the response of GET /revisions/{rev}/diff.
type diffBody struct {
	// From is the older revision.
	From uint64 `json:"from"`
	// To is the newer revision.
	To uint64 `json:"to"`
	// Diff lists the changed fields.
	Diff []config.Difference `json:"diff"`
}

// diffRevision compares revision rev with ?from= (default: rev-1).
func (s *Server) diffRevision(w http.ResponseWriter, r *http.Request) {
	to, ok := s.revision(w, r)
	if !ok {
		return
	}
	fromN, err := queryUint(r, "from", to.Revision-1)
	if err != nil {
		s.fail(w, err)
		return
	}
	from := config.Default()
	if fromN > 0 {
		old, err := s.hist.Revision(fromN)
		if err != nil {
			s.fail(w, err)
			return
		}
		from = old.Config
	}
	d := config.Diff(from, to.Config)
	if d == nil {
		d = []config.Difference{}
	}
	writeJSON(w, http.StatusOK, diffBody{From: fromN, To: to.Revision, Diff: d})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	n, err := pathInt(r, "rev")
	if err != nil {
		s.fail(w, err)
		return
	}
	dry, err := queryBool(r, "dryRun")
	if err != nil {
		s.fail(w, err)
		return
	}
	old, err := s.hist.Revision(uint64(n))
	if err != nil {
		s.fail(w, err)
		return
	}
	res, ok := s.apply(w, r, control.Change{DryRun: dry, Summary: fmt.Sprintf("rollback to revision %d", n), Mutate: func(c *config.Config) error {
		*c = *old.Config.Clone()
		return nil
	}})
	if ok {
		writeJSON(w, http.StatusOK, result(res))
	}
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	name := fmt.Sprintf("fulcrum-backup-r%d-%s.json.gz", snap.Revision, timeNow().UTC().Format("20060102T150405Z"))
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if err := s.hist.Backup(w); err != nil {
		s.log.Error("backup failed", "err", err)
		return
	}
	s.auth.Audit(principal(r), admin.RemoteHost(r.RemoteAddr), "backup", "backup of revision "+fmt.Sprint(snap.Revision), true)
}

// statusBody is the response of GET /status.
type statusBody struct {
	// Revision is the configuration revision the data plane runs.
	Revision uint64 `json:"revision"`
	// RuntimeError is the data plane's start-up error, if any.
	RuntimeError string `json:"runtimeError,omitempty"`
	// VirtualServices is the data plane's per-service status and counters
	// ([]status.VS; any, as the OpenAPI document leaves its schema open).
	VirtualServices any `json:"virtualServices"`
	// Limits are the data plane's shares of the descriptor limit and their
	// use (connection ceiling, per-service defaults, UDP sessions): a
	// status.Limits, absent without a data plane.
	Limits any `json:"limits,omitempty"`
	// CertificateWarnings are the stored certificates' problems (expired or
	// expiring, weak keys, broken or incomplete chains), as
	// "name: message".
	CertificateWarnings []string `json:"certificateWarnings,omitempty"`
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	snap := s.ctl.Current()
	setETag(w, snap.Revision)
	body := statusBody{Revision: snap.Revision, RuntimeError: s.ctl.RuntimeError(), VirtualServices: []status.VS{},
		CertificateWarnings: certWarnings(snap.Config.Certificates)}
	if s.status != nil {
		body.VirtualServices, body.Limits = s.status.Status(), s.status.Limits()
	}
	writeJSON(w, http.StatusOK, body)
}

// certWarnings lists certs.Check's findings as "name: message".
func certWarnings(list []config.Certificate) []string {
	var out []string
	for _, w := range certs.Check(list, time.Now()) {
		out = append(out, w.String())
	}
	return out
}
