package webui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// templateListData is the Templates page's data.
type templateListData struct {
	Templates []templates.Summary
	Form      *form
}

func (s *Server) templatesPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.renderTemplates(w, r, p, http.StatusOK, newForm("file", "replace"))
}

func (s *Server) renderTemplates(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, f *form) {
	list, err := s.tpl.List()
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, status, "templates", view{Title: "Templates", Nav: "templates", Data: templateListData{Templates: list, Form: f}})
}

// templateImport imports a template document (Virtual Services > Manage
// Templates > Add New Template).
func (s *Server) templateImport(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("file", "replace")
	doc, err := readUpload(r, "file", templates.MaxDocumentSize)
	if err == nil && len(doc) == 0 {
		err = errors.New("choose a template file (YAML or JSON)")
	}
	if err != nil {
		f.errs["file"] = []string{err.Error()}
		s.renderTemplates(w, r, p, http.StatusUnprocessableEntity, f)
		return
	}
	t, err := s.tpl.Import(doc, r.PostFormValue("replace") != "")
	if err != nil {
		s.auth.Audit(p, r.RemoteAddr, "template.import", "import template: "+err.Error(), false)
		if es, ok := config.IsErrors(err); ok {
			for _, e := range es {
				f.errs["file"] = append(f.errs["file"], e.Error())
			}
		} else {
			f.errs["file"] = []string{err.Error()}
		}
		s.renderTemplates(w, r, p, http.StatusUnprocessableEntity, f)
		return
	}
	s.auth.Audit(p, r.RemoteAddr, "template.import", "import template "+strconv.Quote(t.Name), true)
	s.redirect(w, r, p, "/templates", fmt.Sprintf("Template %s (%s) imported: %d virtual services.", t.Name, t.Title, len(t.VirtualServices)))
}

func (s *Server) templateDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	if !s.confirmed(w, r, p, "Delete template "+name+"? Services made from it stay as they are.", "Delete", "/templates") {
		return
	}
	if err := s.tpl.Delete(name); err != nil {
		s.setFlash(p, "error", "Template "+name+" was not deleted: "+err.Error())
		http.Redirect(w, r, "/templates", http.StatusSeeOther)
		return
	}
	s.auth.Audit(p, r.RemoteAddr, "template.delete", "delete template "+strconv.Quote(name), true)
	s.redirect(w, r, p, "/templates", "Template "+name+" deleted.")
}

// paramView is one parameter of the use-template form.
type paramView struct {
	P     templates.Parameter
	Field string // the form field: "parameters.<name>"
	// Default renders the default value for the help text.
	Default string
}

// serviceView is one service a template creates, for the preview and
// its port field.
type serviceView struct {
	Index    int
	Field    string // "svcport.<i>"
	NickName string
	Protocol string
	Type     string
	Port     string
}

// templateData is the use-template page's data.
type templateData struct {
	T        *templates.Template
	Params   []paramView
	Services []serviceView
	Certs    []string
	Form     *form
}

// templateFields lists the form's fields for t.
func templateFields(t *templates.Template) []string {
	var out []string
	for _, p := range t.Parameters {
		out = append(out, "parameters."+p.Name)
	}
	for i := range t.VirtualServices {
		out = append(out, "svcport."+strconv.Itoa(i))
	}
	return out
}

func (s *Server) templateView(t *templates.Template, f *form) templateData {
	d := templateData{T: t, Form: f}
	for _, p := range t.Parameters {
		pv := paramView{P: p, Field: "parameters." + p.Name}
		if p.Default != nil {
			switch def := p.Default.(type) {
			case []any:
				if len(def) > 0 {
					pv.Default = fmt.Sprint(def...)
				}
			default:
				pv.Default = fmt.Sprint(def)
			}
		}
		d.Params = append(d.Params, pv)
	}
	for i, m := range t.VirtualServices {
		sv := serviceView{Index: i, Field: "svcport." + strconv.Itoa(i), NickName: str(m["nickname"]), Protocol: str(m["protocol"]),
			Type: str(m["type"]), Port: str(m["port"])}
		if sv.Protocol == "" {
			sv.Protocol = "tcp"
		}
		if sv.Type == "" {
			sv.Type = "gen"
		}
		d.Services = append(d.Services, sv)
	}
	for _, c := range s.ctl.Current().Config.Certificates {
		if !c.Intermediate {
			d.Certs = append(d.Certs, c.Name)
		}
	}
	return d
}

// str renders a template value (string, number) as text.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// templatePage shows a template and the form to use it. From Add New,
// ?address= fills the first IP parameter and ?port= the first service's
// port.
func (s *Server) templatePage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	t, err := s.tpl.Get(r.PathValue("name"))
	if err != nil {
		s.templateErr(w, r, p, err)
		return
	}
	f := newForm(templateFields(t)...)
	d := s.templateView(t, f)
	q := r.URL.Query()
	ipDone := false
	for _, pv := range d.Params {
		switch {
		case pv.P.Type == templates.TypeIP && !ipDone && q.Get("address") != "":
			f.set(pv.Field, q.Get("address"))
			ipDone = true
		case pv.P.Type == templates.TypeCertificate && len(d.Certs) == 1:
			f.set(pv.Field, d.Certs[0])
		case pv.P.Type == templates.TypeBool:
			f.set(pv.Field, fmt.Sprint(pv.P.Default) == "true")
		case pv.P.Type != templates.TypeServers && pv.Default != "":
			f.set(pv.Field, pv.Default)
		}
	}
	for i, sv := range d.Services {
		f.set(sv.Field, sv.Port)
		if i == 0 && q.Get("port") != "" {
			f.set(sv.Field, q.Get("port"))
		}
	}
	s.render(w, r, p, http.StatusOK, "template_use", view{Title: t.Title, Nav: "templates", Data: d})
}

func (s *Server) templateErr(w http.ResponseWriter, r *http.Request, p admin.Principal, err error) {
	if errors.Is(err, templates.ErrNotFound) {
		s.errorPage(w, r, p, http.StatusNotFound, "There is no template "+strconv.Quote(r.PathValue("name"))+".")
		return
	}
	s.fail(w, r, p, err)
}

// templateParams reads the parameters of the use-template form: empty
// fields are left out (the template's default applies); servers are given
// one per line or separated by commas.
func templateParams(t *templates.Template, v url.Values) map[string]any {
	out := map[string]any{}
	for _, p := range t.Parameters {
		raw := strings.TrimSpace(v.Get("parameters." + p.Name))
		switch p.Type {
		case templates.TypeBool:
			out[p.Name] = raw == "on" || raw == "true"
			continue
		case templates.TypeServers:
			raw = strings.Join(strings.Fields(strings.ReplaceAll(raw, ",", " ")), ",")
		}
		if raw != "" {
			out[p.Name] = raw
		}
	}
	return out
}

// templateUse instantiates a template: its services are added as one
// change, all or none.
func (s *Server) templateUse(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	t, err := s.tpl.Get(r.PathValue("name"))
	if err != nil {
		s.templateErr(w, r, p, err)
		return
	}
	f := newForm(templateFields(t)...)
	f.keep(r.PostForm)
	fail := func(status int) {
		s.render(w, r, p, status, "template_use", view{Title: t.Title, Nav: "templates", Data: s.templateView(t, f)})
	}
	inst, err := t.Instantiate(templateParams(t, r.PostForm))
	if err != nil {
		if st := explain(f, err, ""); st != 0 {
			fail(st)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	// The ports asked for (LoadMaster's Add New lets the port be changed).
	ps := &parser{v: r.PostForm}
	for i := range inst.VirtualServices {
		if port := ps.int("svcport." + strconv.Itoa(i)); port != 0 {
			inst.VirtualServices[i].Port = port
		}
	}
	if len(ps.errs) > 0 {
		f.addErrors(ps.errs, "")
		fail(http.StatusUnprocessableEntity)
		return
	}
	first := 0
	res, err := s.run(r, p, formEdit{summary: fmt.Sprintf("template %s: %d virtual services", t.Name, len(inst.VirtualServices)),
		mutate: func(c *config.Config) error {
			first = inst.AddTo(c)
			return nil
		}})
	if err != nil {
		// A port of a new service is shown next to its field.
		if es, ok := config.IsErrors(err); ok {
			for i := range es {
				var n int
				var rest string
				if k, _ := fmt.Sscanf(es[i].Path, "virtualServices[%d]%s", &n, &rest); k >= 1 && n >= first && rest == ".port" {
					es[i].Path = "svcport." + strconv.Itoa(n-first)
				}
			}
		}
		if st := explain(f, err, ""); st != 0 {
			fail(st)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	created := res.Snapshot.Config.VirtualServices[first:]
	names := make([]string, 0, len(created))
	for i := range created {
		names = append(names, displayName(&created[i]))
	}
	msg := fmt.Sprintf("Template %s added %d virtual services (%s) as revision %d.", t.Title, len(created), strings.Join(names, ", "), res.Snapshot.Revision)
	if len(inst.Checks) > 0 {
		var checks []string
		for _, c := range inst.Checks {
			checks = append(checks, fmt.Sprintf("%s %s", str(c["name"]), str(c["url"])))
		}
		msg += "\nOnce the real servers are up, check: " + strings.Join(checks, "; ") + "."
	}
	to := "/vs"
	if len(created) > 0 {
		to = fmt.Sprintf("/vs/%d", created[0].ID)
	}
	s.redirect(w, r, p, to, msg)
}
