package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// templateList is the response of GET /templates.
type templateList struct {
	// Templates are the built-in and imported templates.
	Templates []templates.Summary `json:"templates"`
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	list, err := s.tpl.List()
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []templates.Summary{}
	}
	writeJSON(w, http.StatusOK, templateList{Templates: list})
}

func (s *Server) templateErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, templates.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, templates.ErrBuiltin):
		writeError(w, http.StatusConflict, err.Error(), nil)
	default:
		s.fail(w, err)
	}
}

// getTemplate returns a template document as YAML (default) or JSON
// (?format=json).
func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := s.tpl.Get(r.PathValue("name"))
	if err != nil {
		s.templateErr(w, err)
		return
	}
	s.writeTemplate(w, r, http.StatusOK, t)
}

func (s *Server) writeTemplate(w http.ResponseWriter, r *http.Request, status int, t *templates.Template) {
	if r.URL.Query().Get("format") == "json" {
		writeJSON(w, status, t)
		return
	}
	y, err := templates.Encode(t)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(status)
	_, _ = w.Write(y)
}

// importTemplate stores a template document (YAML or JSON); ?replace=true
// overwrites an imported template of the same name.
func (s *Server) importTemplate(w http.ResponseWriter, r *http.Request) {
	replace, err := queryBool(r, "replace")
	if err != nil {
		s.fail(w, err)
		return
	}
	body, err := readBody(w, r, templates.MaxDocumentSize, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	t, err := s.tpl.Import(body, replace)
	if err != nil {
		if strings.Contains(err.Error(), "already exists") {
			writeError(w, http.StatusConflict, err.Error(), nil)
			return
		}
		s.templateErr(w, err)
		return
	}
	s.auth.Audit(principal(r), r.RemoteAddr, "template.import", "import template "+strconv.Quote(t.Name), true)
	w.Header().Set("Location", "/api/v1/templates/"+t.Name)
	writeJSON(w, http.StatusCreated, templates.Summary{Name: t.Name, Title: t.Title, Services: len(t.VirtualServices)})
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.tpl.Delete(name); err != nil {
		s.templateErr(w, err)
		return
	}
	s.auth.Audit(principal(r), r.RemoteAddr, "template.delete", "delete template "+strconv.Quote(name), true)
	w.WriteHeader(http.StatusNoContent)
}

// instantiateRequest is the body of POST /templates/{name}/instantiate.
type instantiateRequest struct {
	// Parameters are the template's parameter values by name.
	Parameters map[string]any `json:"parameters"`
}

// instantiateResult is the response of POST /templates/{name}/instantiate.
type instantiateResult struct {
	changeResult
	// VirtualServices are the IDs of the services created.
	VirtualServices []int `json:"virtualServices"`
	// Checks are the template's smoke checks with the parameters filled.
	Checks []map[string]any `json:"checks,omitempty"`
}

// instantiate adds a template's services as one change: all or none.
func (s *Server) instantiate(w http.ResponseWriter, r *http.Request) {
	dry, err := queryBool(r, "dryRun")
	if err != nil {
		s.fail(w, err)
		return
	}
	t, err := s.tpl.Get(r.PathValue("name"))
	if err != nil {
		s.templateErr(w, err)
		return
	}
	var req instantiateRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	inst, err := t.Instantiate(req.Parameters)
	if err != nil {
		s.fail(w, err)
		return
	}
	first := 0
	res, ok := s.apply(w, r, control.Change{DryRun: dry, Summary: fmt.Sprintf("template %s: %d virtual services", t.Name, len(inst.VirtualServices)),
		Mutate: func(c *config.Config) error {
			first = inst.AddTo(c)
			return nil
		}})
	if !ok {
		return
	}
	out := instantiateResult{changeResult: result(res), VirtualServices: []int{}, Checks: inst.Checks}
	if res.Committed {
		for _, v := range res.Snapshot.Config.VirtualServices[first:] {
			out.VirtualServices = append(out.VirtualServices, v.ID)
		}
		writeJSON(w, http.StatusCreated, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// exportRequest is the body of POST /virtual-services/{id}/template.
type exportRequest struct {
	// Name is the new template's name. Required.
	Name string `json:"name"`
	// Title is its human-readable name; default the service's nickname.
	Title string `json:"title,omitempty"`
	// Save imports the template as well as returning it.
	Save bool `json:"save,omitempty"`
}

// exportTemplate makes a template of a service and its SubVSs (LoadMaster's
// exportvstmplt).
func (s *Server) exportTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := pathInt(r, "id")
	if err != nil {
		s.fail(w, err)
		return
	}
	var req exportRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	cfg := s.ctl.Current().Config
	v := cfg.VirtualServiceByID(id)
	if v == nil {
		s.fail(w, fmt.Errorf("virtual service %d: %w", id, control.ErrNotFound))
		return
	}
	t, err := templates.FromService(cfg, v, req.Name, req.Title)
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Save {
		doc, err := templates.Encode(t)
		if err == nil {
			_, err = s.tpl.Import(doc, false)
		}
		if err != nil {
			s.templateErr(w, err)
			return
		}
	}
	s.writeTemplate(w, r, http.StatusOK, t)
}
