package webui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
)

// certFields are the fields of the import form.
var certFields = []string{"name", "kind", "file", "pem", "password", "replace"}

// certRow is one certificate in the list.
type certRow struct {
	Info    certs.Info
	Err     string
	UsedBy  []string
	Expired bool
}

// certsData is the Certificates page's data.
type certsData struct {
	Certs []certRow
	Form  *form
}

func (s *Server) certsPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(certFields...)
	f.set("kind", "certificate")
	s.renderCerts(w, r, p, http.StatusOK, f)
}

func (s *Server) renderCerts(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, f *form) {
	snap := s.ctl.Current()
	used := map[string][]string{}
	snap.Config.Walk(func(v, _ *config.VirtualService) {
		for _, n := range v.TLS.Certificates {
			used[n] = append(used[n], displayName(v))
		}
	})
	d := certsData{Form: f}
	now := s.now()
	for _, c := range snap.Config.Certificates {
		row := certRow{UsedBy: used[c.Name]}
		info, err := certs.Describe(c.Name, c.Intermediate, c.CertPEM)
		if err != nil {
			row.Err = err.Error()
		}
		row.Info = info
		row.Expired = !info.NotAfter.IsZero() && info.NotAfter.Before(now)
		d.Certs = append(d.Certs, row)
	}
	infos := make([]certs.Info, len(d.Certs))
	for i := range d.Certs {
		infos[i] = d.Certs[i].Info
	}
	certs.Annotate(infos, snap.Config.Certificates, now)
	for i := range d.Certs {
		d.Certs[i].Info.Warnings = infos[i].Warnings
	}
	s.render(w, r, p, status, "certs", view{Title: "Certificates", Nav: "certs", Revision: snap.Revision, Data: d})
}

// readUpload returns the uploaded file of a multipart form field, at most
// limit bytes, or nil when none was sent.
func readUpload(r *http.Request, field string, limit int64) ([]byte, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	fhs := r.MultipartForm.File[field]
	if len(fhs) == 0 || fhs[0].Size == 0 {
		return nil, nil
	}
	if fhs[0].Size > limit {
		return nil, fmt.Errorf("the file is too large: %d bytes, at most %d", fhs[0].Size, limit)
	}
	fh, err := fhs[0].Open()
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, limit+1))
}

// parseCertUpload turns the import form into a certificate, or field
// errors under "certificates[i]"-relative names.
func parseCertUpload(name, kind string, file []byte, pasted, password string) (config.Certificate, config.Errors) {
	fe := func(field, msg string) config.Errors { return config.Errors{{Path: field, Message: msg}} }
	data := file
	src := "file"
	if len(data) == 0 && strings.TrimSpace(pasted) != "" {
		data, src = []byte(pasted), "pem"
	}
	switch {
	case name == "":
		return config.Certificate{}, fe("name", "required: a name for the certificate, such as meet-example-com")
	case len(data) == 0:
		return config.Certificate{}, fe("file", "choose a certificate file (PEM with its key, or PFX), or paste PEM below")
	}
	isPEM := bytes.Contains(data, []byte("-----BEGIN"))
	if kind == "intermediate" {
		p, err := certs.ParseIntermediate(data)
		if err != nil {
			return config.Certificate{}, fe(src, err.Error())
		}
		return config.Certificate{Name: name, Intermediate: true, CertPEM: p}, nil
	}
	var imp certs.Imported
	var err error
	if isPEM {
		imp, err = certs.ParsePEM(data)
	} else {
		imp, err = certs.ParsePFX(data, password)
		if err != nil && strings.Contains(err.Error(), "password") {
			return config.Certificate{}, fe("password", err.Error())
		}
	}
	if err != nil {
		return config.Certificate{}, fe(src, err.Error())
	}
	return config.Certificate{Name: name, CertPEM: imp.CertPEM, KeyPEM: imp.KeyPEM}, nil
}

// certImport imports a certificate or an intermediate (Certificates >
// SSL Certificates > Import).
func (s *Server) certImport(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(certFields...)
	f.keep(r.PostForm)
	f.set("password", "") // never echo a password back
	f.set("file", "")
	name := strings.TrimSpace(r.PostFormValue("name"))
	replace := r.PostFormValue("replace") != ""
	file, err := readUpload(r, "file", certs.MaxImportSize)
	if err != nil {
		f.addErrors(config.Errors{{Path: "file", Message: err.Error()}}, "")
		s.renderCerts(w, r, p, http.StatusUnprocessableEntity, f)
		return
	}
	ct, es := parseCertUpload(name, r.PostFormValue("kind"), file, r.PostFormValue("pem"), r.PostFormValue("password"))
	if len(es) > 0 {
		f.addErrors(es, "")
		s.renderCerts(w, r, p, http.StatusUnprocessableEntity, f)
		return
	}
	var prefix string
	kind := "Certificate"
	if ct.Intermediate {
		kind = "Intermediate certificate"
	}
	res, err := s.run(r, p, formEdit{edit: edit.ImportCertificate{Cert: ct, Replace: replace}, mutate: func(c *config.Config) error {
		prefix = fmt.Sprintf("certificates[%d]", len(c.Certificates))
		for i := range c.Certificates {
			if c.Certificates[i].Name == ct.Name {
				prefix = fmt.Sprintf("certificates[%d]", i)
				break
			}
		}
		return nil
	}})
	var exists *edit.ExistsError
	if errors.As(err, &exists) {
		err = config.Errors{{Path: prefix + ".name", Message: fmt.Sprintf("a certificate named %q exists: choose another name, or tick Replace", name)}}
	}
	if err != nil {
		if es, ok := config.IsErrors(err); ok {
			// certPem and keyPem problems are problems of the file.
			for i := range es {
				es[i].Path = strings.Replace(strings.Replace(es[i].Path, ".certPem", ".file", 1), ".keyPem", ".file", 1)
			}
		}
		status := explain(f, err, prefix)
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.renderCerts(w, r, p, status, f)
		return
	}
	s.redirect(w, r, p, "/certificates", committedMsg(res, kind+" "+name+" imported"))
}

func (s *Server) certDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	snap := s.ctl.Current()
	found := false
	for _, c := range snap.Config.Certificates {
		found = found || c.Name == name
	}
	if !found {
		s.errorPage(w, r, p, http.StatusNotFound, fmt.Sprintf("There is no certificate %q.", name))
		return
	}
	if !s.confirmed(w, r, p, fmt.Sprintf("Delete certificate %s? Its private key is deleted with it (it stays in older revisions and backups).", name), "Delete", "/certificates") {
		return
	}
	res, err := s.run(r, p, formEdit{edit: edit.DeleteCertificate{Name: name}})
	if err != nil {
		if es, ok := config.IsErrors(err); ok {
			var users []string
			for _, e := range es {
				users = append(users, e.Error())
			}
			s.setFlash(p, "error", fmt.Sprintf("Certificate %s was not deleted: it is in use (%s). Unassign it first.", name, strings.Join(users, "; ")))
			http.Redirect(w, r, "/certificates", http.StatusSeeOther)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/certificates", committedMsg(res, "Certificate "+name+" deleted"))
}
