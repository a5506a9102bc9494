package webui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// view is what every page template gets.
type view struct {
	// Title is the page title.
	Title string
	// Nav names the navigation entry to highlight.
	Nav string
	// User is the signed-in user.
	User admin.Principal
	// CSRF is the session's CSRF token for the page's forms.
	CSRF string
	// Flash is a message left by the previous request.
	Flash *flash
	// Revision is the current configuration revision.
	Revision uint64
	// Can says what the user's role allows.
	Can perms
	// Data is the page's own data.
	Data any
	// NetPending is the network change waiting for confirmation, shown
	// on every page; nil when none is.
	NetPending *netPending
	// Here is the page's own path, where a form of the layout returns.
	Here string
}

// perms are the permissions templates test.
type perms struct {
	Write, Operate, Users, Secrets bool
}

func permsOf(p admin.Principal) perms {
	return perms{Write: p.Can(admin.PermWrite), Operate: p.Can(admin.PermOperate),
		Users: p.Can(admin.PermUsers), Secrets: p.Can(admin.PermReadSecrets)}
}

// pageNames are the templates under templates/ that are whole pages; each
// is parsed together with layout.html and parts.html.
var pageNames = []string{"login", "dashboard", "vs_list", "vs_new", "vs", "rs", "certs", "system",
	"users", "audit", "history", "revision", "backup", "confirm", "error", "live_vs_list", "live_vs", "templates", "template_use", "verify", "network", "logs", "logging"}

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":    s.asset,
		"fld":      newField,
		"opts":     options,
		"time":     fmtTime,
		"ago":      func(t time.Time) string { return ago(s.now(), t) },
		"until":    func(t time.Time) string { return until(s.now(), t) },
		"expiring": func(t time.Time) bool { return t.Sub(s.now()) < 30*24*time.Hour },
		"bytes":    fmtBytes,
		"lower":    strings.ToLower,
		"stateCls": stateClass,
		"join":     strings.Join,
		"add":      func(a, b int) int { return a + b },
		"query":    url.QueryEscape,
		"choices":  choices,
		"label":    label,
		"endpoint": endpoint,
		"name":     displayName,
		"enabled":  func(b *bool) bool { return b == nil || *b },
		"sevCls":   severityClass,
		"either": func(c bool, a, b string) string {
			if c {
				return a
			}
			return b
		},
		"sevOpts":  severityOptions,
		"kindOpts": kindOptions,

		// The states a page shows without a status: a real server that
		// is not enabled, and one the data plane reports nothing about.
		"stateDisabled": func() status.State { return status.Disabled },
		"stateNone":     func() status.State { return "" },
	}
}

func (s *Server) parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(s.funcs()).ParseFS(templateFS,
		"templates/layout.html", "templates/parts.html"))
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
		out[name] = t
	}
	return out
}

// templateNames lists the template files, for tests.
func templateNames() ([]string, error) {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(path.Base(e.Name()), ".html"))
	}
	return out, nil
}

// render writes a page. The template "page" of name's file is executed
// within the layout, or the template "fragment" for fragments.
func (s *Server) render(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, name string, v view) {
	t, ok := s.pages[name]
	if !ok {
		s.log.Error("webui: no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.User = p
	v.CSRF = p.CSRFToken
	v.Can = permsOf(p)
	if v.Revision == 0 && s.ctl != nil {
		v.Revision = s.ctl.Current().Revision
	}
	if p.SessionID != "" && !isFragment(r) {
		v.Flash = s.takeFlash(p)
		v.NetPending = s.pendingNet()
	}
	v.Here = "/"
	if r.Method == http.MethodGet {
		v.Here = r.URL.RequestURI()
	} else if r.URL.Path == "/network" || strings.HasPrefix(r.URL.Path, "/network/") {
		v.Here = "/network"
	}
	entry := "layout"
	if t.Lookup("fragment") != nil {
		entry = "fragment"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, v); err != nil {
		s.log.Error("webui: render failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders a message page with status.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, msg string) {
	if isFragment(r) {
		http.Error(w, msg, status)
		return
	}
	s.render(w, r, p, status, "error", view{Title: http.StatusText(status), Data: msg})
}

// confirmData is shown by the confirmation page that stands in for the
// JavaScript dialog of a destructive action.
type confirmData struct {
	// Message asks the question.
	Message string
	// Action is the form's target.
	Action string
	// Button is the confirm button's label.
	Button string
	// Back is where Cancel goes.
	Back string
	// Fields are the hidden fields to post again.
	Fields map[string]string
}

// confirmed reports whether a destructive form post carries the
// confirmation; if not it renders the confirmation page and returns false.
func (s *Server) confirmed(w http.ResponseWriter, r *http.Request, p admin.Principal, msg, button, back string) bool {
	if r.PostFormValue("confirmed") == "yes" {
		return true
	}
	fields := map[string]string{}
	for k, vs := range r.PostForm {
		if k != "csrf" && k != "confirmed" && len(vs) > 0 {
			fields[k] = vs[0]
		}
	}
	s.render(w, r, p, http.StatusOK, "confirm", view{Title: "Please confirm",
		Data: confirmData{Message: msg, Action: r.URL.Path, Button: button, Back: back, Fields: fields}})
	return false
}

// option is one choice of a select or a group of checkboxes.
type option struct {
	Value, Label string
}

// options makes options from value/label pairs given as "value=label" or
// plain values.
func options(list ...string) []option {
	out := make([]option, 0, len(list))
	for _, s := range list {
		v, l, ok := strings.Cut(s, "=")
		if !ok {
			l = v
		}
		out = append(out, option{Value: v, Label: l})
	}
	return out
}

// field is what the field templates get: a form, the field's name (its
// path relative to the object the form edits) and its label.
type field struct {
	F     *form
	Name  string
	Label string
	Type  string
	Help  string
	Opts  []option
	Attrs map[string]string
}

// ID is the HTML id of the field's input.
func (f field) ID() string {
	r := strings.NewReplacer(".", "-", "[", "-", "]", "")
	if f.F != nil && f.F.idp != "" {
		return "f-" + f.F.idp + "-" + r.Replace(f.Name)
	}
	return "f-" + r.Replace(f.Name)
}

// newField builds a field for the templates: fld FORM NAME LABEL TYPE
// [HELP] [OPTIONS] [ATTR VALUE]... where OPTIONS is a []option.
func newField(f *form, name, label, typ string, rest ...any) field {
	fl := field{F: f, Name: name, Label: label, Type: typ, Attrs: map[string]string{}}
	var pendingAttr string
	for _, x := range rest {
		switch v := x.(type) {
		case []option:
			fl.Opts = v
		case string:
			switch {
			case pendingAttr != "":
				fl.Attrs[pendingAttr] = v
				pendingAttr = ""
			case strings.HasPrefix(v, "@"):
				pendingAttr = strings.TrimPrefix(v, "@")
			default:
				fl.Help = v
			}
		}
	}
	return fl
}

// Attr returns an extra attribute of the field.
func (f field) Attr(name string) string { return f.Attrs[name] }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// ago says how long before now t was, roughly.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// until says how long from now until t, roughly ("expired" when past).
func until(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Hour:
		return fmt.Sprintf("in %d min", int(d.Minutes())+1)
	case d < 48*time.Hour:
		return fmt.Sprintf("in %d h", int(d.Hours()))
	}
	return fmt.Sprintf("in %d days", int(d.Hours()/24))
}

// fmtBytes renders a byte count with a binary unit.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// stateClass maps a state to the CSS class of its colour.
func stateClass(state status.State) string {
	switch state {
	case status.Up:
		return "st-up"
	case status.Down:
		return "st-down"
	case status.Disabled:
		return "st-off"
	case status.Enabled, status.Unknown, status.Unchecked:
		return "st-info"
	case status.NotServed, status.Draining:
		return "st-warn"
	}
	return "st-off"
}
