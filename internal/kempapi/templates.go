package kempapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// LoadMaster's template commands over Fulcrum's template library
// (package templates, the same library the native API and web UI use):
// listtemplates, uploadtemplate, deltemplate, exportvstmplt and
// addvs … template=NAME. Imports and deletions change the library, not
// the configuration; applying a template is one change through the write
// path, all of its services or none.

// lmTemplateHelp is what a client that sent a file Fulcrum cannot read as
// a template is told to do instead.
const lmTemplateHelp = "a LoadMaster .tmpl template (a binary/encrypted file whose format Kemp does not publish) cannot be read by Fulcrum; " +
	"create the service with addvs/modvs (the LoadMaster's showvs lists its settings) and export it with exportvstmplt, " +
	"or use a Fulcrum template (listtemplates; format in docs/templates.md)"

// listtemplates answers one <template> per template, built-in first:
// LoadMaster's name, comment (the title) and certified (Y for the
// templates that ship with Fulcrum), then Fulcrum's own: the number of
// services it creates and its parameters, which addvs … template= takes
// by name.
func (c *call) listtemplates() result {
	list, err := c.s.tpl.List()
	if err != nil {
		return c.s.failure(err).result()
	}
	out := []node{}
	for _, s := range list {
		ns := []node{str("name", s.Name), str("comment", s.Title), yn("certified", s.Builtin), inum("services", s.Services)}
		if t, err := c.s.tpl.Get(s.Name); err == nil {
			for _, p := range t.Parameters {
				ns = append(ns, node{name: "parameter", kind: kGroup, item: true, children: []node{
					str("name", p.Name), str("type", p.Type), yn("required", p.Required), str("description", p.Description)}})
			}
		}
		out = append(out, node{name: "template", kind: kGroup, item: true, children: ns})
	}
	return withData(out...)
}

// uploadtemplate imports a template file: the raw POST body in v1 (as
// LoadMaster's SDKs send it), base64 "data" in v2. A template of the same
// name is replaced only with replace=1; built-in ones never.
func (c *call) uploadtemplate() result {
	replace, _, f := boolParam(c.p, "replace", "replace")
	if f != nil {
		return f.result()
	}
	if len(bytes.TrimSpace(c.req.body)) == 0 {
		return missing("data").result()
	}
	if f := readableTemplate(c.req.body); f != nil {
		return f.result()
	}
	t, err := c.s.tpl.Import(c.req.body, replace)
	if err != nil {
		c.s.auth.Audit(c.who, c.r.RemoteAddr, "template.import", "import template (kemp api): "+err.Error(), false)
		return templateFailure(c.s, err).result()
	}
	c.s.auth.Audit(c.who, c.r.RemoteAddr, "template.import", fmt.Sprintf("import template %q (kemp api)", t.Name), true)
	return completed()
}

// readableTemplate refuses, with the reason and what to do instead, a
// file that is not a Fulcrum template document: LoadMaster's binary .tmpl
// files, and text without Fulcrum's format marker (whose YAML parser
// message would say nothing useful).
func readableTemplate(doc []byte) *failure {
	if lmBinary(doc) {
		return invalid("Command Failed: %s", lmTemplateHelp)
	}
	if !bytes.Contains(doc, []byte(templates.Format)) {
		return invalid("Command Failed: not a Fulcrum template (it has no \"format: %s\"); %s", templates.Format, lmTemplateHelp)
	}
	return nil
}

// lmBinary reports whether doc is not text a template document can be:
// not UTF-8, holding control characters, or starting like an archive,
// an encrypted file or XML.
func lmBinary(doc []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("Salted__"), []byte("PK\x03\x04"), []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z'}} {
		if bytes.HasPrefix(doc, magic) {
			return true
		}
	}
	if !utf8.Valid(doc) {
		return true
	}
	if t := bytes.TrimSpace(bytes.TrimPrefix(doc, []byte("\xef\xbb\xbf"))); len(t) > 0 && t[0] == '<' {
		return true
	}
	for _, b := range doc {
		if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
			return true
		}
	}
	return false
}

// templateFailure maps an error of the template library to an answer.
func templateFailure(s *Server, err error) *failure {
	var es config.Errors
	switch {
	case errors.Is(err, templates.ErrNotFound):
		return invalid("Unknown template: %s", err.Error())
	case errors.Is(err, templates.ErrBuiltin):
		return invalid("Command Failed: %s", err.Error())
	case errors.As(err, &es):
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.Error()
		}
		return invalid("Command Failed: invalid template: %s", strings.Join(parts, "; "))
	case strings.Contains(err.Error(), "already exists"):
		return invalid("Command Failed: %s", strings.Replace(err.Error(), "set replace to overwrite it", "set replace=1 to replace it", 1))
	}
	return s.failure(err)
}

// templateName reads the name parameter of deltemplate.
func templateName(p params) (string, *failure) {
	name := strings.TrimSpace(p.str("name"))
	if name == "" {
		return "", missing("name")
	}
	return name, nil
}

// deltemplate deletes an imported template.
func (c *call) deltemplate() result {
	name, f := templateName(c.p)
	if f != nil {
		return f.result()
	}
	if err := c.s.tpl.Delete(name); err != nil {
		return templateFailure(c.s, err).result()
	}
	c.s.auth.Audit(c.who, c.r.RemoteAddr, "template.delete", fmt.Sprintf("delete template %q (kemp api)", name), true)
	return completed()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// exportName is the name of an exported template: the name parameter, or
// one made of the service's nickname, or of its address and port.
func exportName(p params, v *config.VirtualService) string {
	if n := strings.TrimSpace(p.str("name")); n != "" {
		return n
	}
	n := strings.Trim(unsafeName.ReplaceAllString(v.NickName, "-"), "-._")
	if n == "" {
		n = strings.Trim(unsafeName.ReplaceAllString(fmt.Sprintf("vs-%s-%d-%s", v.Address, v.Port, v.Protocol), "-"), "-")
	}
	if len(n) > 64 {
		n = strings.TrimRight(n[:64], "-._")
	}
	return n
}

// exportvstmplt answers a template of a service and its SubVSs as a file
// (v1: the YAML document itself; v2: base64 in "data"), as LoadMaster
// answers its template file. Its address becomes the parameter vip and its
// real servers the parameter servers; the content rules it uses come
// with it. name (Fulcrum's) names it.
func (c *call) exportvstmplt() result {
	cfg := c.s.ctl.Current().Config
	v, parent, f := findVS(cfg, c.p)
	if f != nil {
		return f.result()
	}
	if parent != nil {
		return invalid("vs: a SubVS is exported with its parent: export Virtual Service %d", parent.ID).result()
	}
	t, err := templates.FromService(cfg, v, exportName(c.p, v), "")
	if err != nil {
		return templateFailure(c.s, err).result()
	}
	doc, err := templates.Encode(t)
	if err != nil {
		return c.s.failure(err).result()
	}
	return result{blob: doc, blobCT: "application/yaml"}
}

// templateParam returns the template addvs is asked to apply: template=
// (REST22, Kemp's PowerShell module) or name= (Kemp's Python SDK).
func templateParam(p params) (string, bool) {
	if s, ok := p.get("template"); ok {
		return strings.TrimSpace(s), true
	}
	if s, ok := p.get("name"); ok {
		return strings.TrimSpace(s), true
	}
	return "", false
}

// addressing are the parameters of addvs that are not a template's or a
// service's.
var addressing = map[string]bool{"vs": true, "port": true, "prot": true, "template": true, "name": true}

// addvsTemplate creates a template's services at the address vs, as a
// LoadMaster does for addvs … template=NAME. vs fills the template's
// parameter vip (or its first address parameter); its other parameters
// are given by name. port and prot, when given, must be those of one of
// the template's services: the service parameters of the request
// (NickName, …) apply to that one, and the answer shows it.
func (c *call) addvsTemplate(name string) result {
	if name == "" {
		return missing("template").result()
	}
	t, err := c.s.tpl.Get(name)
	if err != nil {
		return templateFailure(c.s, err).result()
	}
	vs := strings.TrimSpace(c.p.str("vs"))
	if vs == "" {
		return missing("vs").result()
	}
	a, err := netip.ParseAddr(vs)
	if err != nil || a.Zone() != "" {
		return invalid("Invalid VS address %q", short(vs)).result()
	}
	vals, used, f := templateValues(t, c.p, a.Unmap().String())
	if f != nil {
		return f.result()
	}
	inst, err := t.Instantiate(vals)
	if err != nil {
		return instantiateFailure(c.s, err).result()
	}
	target, f := templateTarget(t, inst, c.p, a.Unmap())
	if f != nil {
		return f.result()
	}
	rest := params{}
	for k, v := range c.p {
		if !addressing[k] && !used[k] {
			rest[k] = v
		}
	}
	if target < 0 {
		for _, vp := range vsParams {
			if rest.has(vp.name) {
				return invalid("%s: template %s creates %d services; give port (and prot) to say which one it applies to",
					vp.display, t.Name, len(inst.VirtualServices)).result()
			}
		}
	}
	first := 0
	snap, f := c.change(control.Change{Summary: fmt.Sprintf("template %s: %d virtual services at %s", t.Name, len(inst.VirtualServices), vs),
		Mutate: func(cfg *config.Config) error {
			first = inst.AddTo(cfg)
			if target >= 0 {
				if f := applyVSParams(cfg, &cfg.VirtualServices[first+target], nil, rest); f != nil {
					return f
				}
			}
			return nil
		}})
	if f != nil {
		return f.result()
	}
	show := first + max(target, 0)
	if show >= len(snap.Config.VirtualServices) {
		return completed()
	}
	return c.showAfter(snap.Config, snap.Config.VirtualServices[show].ID)
}

// templateValues collects a template's parameter values from the request
// (parameter names in any case) and returns them with the lower-cased
// names used. addr fills vip, or else the first address parameter, unless
// the request names that parameter itself.
func templateValues(t *templates.Template, p params, addr string) (map[string]any, map[string]bool, *failure) {
	vals := map[string]any{}
	used := map[string]bool{}
	ipParam := ""
	for _, tp := range t.Parameters {
		if tp.Type == templates.TypeIP && (ipParam == "" || tp.Name == "vip") {
			ipParam = tp.Name
		}
	}
	if ipParam == "" {
		return nil, nil, invalid("template: template %s has no address parameter for vs", t.Name)
	}
	for _, tp := range t.Parameters {
		key := strings.ToLower(tp.Name)
		s, ok := p.get(key)
		if !ok {
			continue
		}
		used[key] = true
		switch tp.Type {
		case templates.TypeBool:
			b, good := parseBool(s)
			if !good {
				return nil, nil, invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", tp.Name, short(s))
			}
			vals[tp.Name] = b
		case templates.TypeServers:
			// A LoadMaster list is space-separated; commas work too.
			vals[tp.Name] = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }), ",")
		default:
			vals[tp.Name] = strings.TrimSpace(s)
		}
	}
	if _, given := vals[ipParam]; !given {
		vals[ipParam] = addr
	}
	return vals, used, nil
}

// instantiateFailure names the parameter of each problem as the client
// gave it: "certificate: required: …".
func instantiateFailure(s *Server, err error) *failure {
	es, ok := config.IsErrors(err)
	if !ok {
		return s.failure(err)
	}
	parts := make([]string, len(es))
	for i, e := range es {
		if name, ok := strings.CutPrefix(e.Path, "parameters."); ok {
			parts[i] = name + ": " + e.Message
		} else {
			parts[i] = e.Error()
		}
	}
	return invalid("%s", strings.Join(parts, "; "))
}

// templateTarget returns the index of the instance's service at addr that
// port and prot name, or of its only service; -1 when neither says which.
func templateTarget(t *templates.Template, inst *templates.Instance, p params, addr netip.Addr) (int, *failure) {
	ps, ok := p.get("port")
	if !ok || strings.TrimSpace(ps) == "" {
		if len(inst.VirtualServices) == 1 {
			return 0, nil
		}
		return -1, nil
	}
	port, f := parsePort(ps)
	if f != nil {
		return 0, f
	}
	prot, f := protocol(p)
	if f != nil {
		return 0, f
	}
	var have []string
	for i, v := range inst.VirtualServices {
		vp := v.Protocol
		if vp == "" {
			vp = "tcp"
		}
		va, err := netip.ParseAddr(v.Address)
		if err != nil || va.Unmap() != addr {
			continue
		}
		if v.Port == port && vp == prot {
			return i, nil
		}
		have = append(have, fmt.Sprintf("%d/%s", v.Port, vp))
	}
	return 0, invalid("port: template %s creates no service on %d/%s (it creates %s); leave port out or give one of them",
		t.Name, port, prot, strings.Join(have, ", "))
}
