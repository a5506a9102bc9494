package webui

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// form is the state of one HTML form: the values its inputs show (from the
// configuration, or what the user typed when a post failed) and the errors
// to show next to each field. Field names are paths relative to the object
// the form edits, as in the configuration model ("persistence.timeout").
type form struct {
	// idp prefixes the HTML ids of the form's inputs, so that two forms
	// of one page with a field of the same name differ.
	idp     string
	values  url.Values
	fields  map[string]bool     // the form's field names
	errs    map[string][]string // field name → messages
	general []string            // errors that name no field of this form
}

// withID sets the prefix of the form's input ids and returns f.
func (f *form) withID(p string) *form {
	f.idp = p
	return f
}

func newForm(fields ...string) *form {
	f := &form{values: url.Values{}, fields: map[string]bool{}, errs: map[string][]string{}}
	for _, n := range fields {
		f.fields[n] = true
	}
	return f
}

// set sets a field's value.
func (f *form) set(name string, v any) {
	switch x := v.(type) {
	case string:
		f.values.Set(name, x)
	case int:
		f.values.Set(name, strconv.Itoa(x))
	case bool:
		if x {
			f.values.Set(name, "on")
		} else {
			f.values.Del(name)
		}
	case []string:
		f.values[name] = append([]string(nil), x...)
	default:
		f.values.Set(name, fmt.Sprint(x))
	}
}

// keep replaces the values by those posted, for the form's fields, so a
// failed post shows what the user typed.
func (f *form) keep(posted url.Values) {
	for n := range f.fields {
		if vs, ok := posted[n]; ok {
			f.values[n] = append([]string(nil), vs...)
		} else {
			f.values.Del(n) // an unchecked checkbox or an empty multi-select
		}
	}
}

// Value returns a field's value.
func (f *form) Value(name string) string { return f.values.Get(name) }

// Has reports whether a multi-valued field (checkboxes, multi-select)
// holds value.
func (f *form) Has(name, value string) bool {
	for _, v := range f.values[name] {
		if v == value {
			return true
		}
	}
	return false
}

// Checked reports whether a checkbox field is on.
func (f *form) Checked(name string) bool {
	v := f.values.Get(name)
	return v == "on" || v == "true" || v == "1" || v == "yes"
}

// Err returns the messages of a field.
func (f *form) Err(name string) []string { return f.errs[name] }

// Invalid reports whether any field has an error.
func (f *form) Invalid() bool { return len(f.errs) > 0 || len(f.general) > 0 }

// General returns the errors that name no field of the form.
func (f *form) General() []string { return f.general }

// addGeneral adds an error that names no field.
func (f *form) addGeneral(msg string) { f.general = append(f.general, msg) }

// indexRE matches a list index or a map key step at the end of a path.
var indexRE = regexp.MustCompile(`(\[[^\]]*\]|\.[^.\[\]]+)$`)

// fieldFor maps a path relative to the form's object to the form field
// that shows it: the path itself, or its nearest parent that is a field
// ("tls.certificates[0]" → "tls.certificates", "healthCheck.headers.X-A"
// → "healthCheck.headers"). ok is false when no field matches.
func (f *form) fieldFor(rel string) (string, bool) {
	for i := 0; i < 16 && rel != ""; i++ {
		if f.fields[rel] {
			return rel, true
		}
		loc := indexRE.FindStringIndex(rel)
		if loc == nil {
			return "", false
		}
		rel = rel[:loc[0]]
	}
	return "", false
}

// addErrors places each field error of a configuration next to the field
// it names. prefix is the path of the form's object in the configuration
// ("virtualServices[2]"), "" for the top level. Errors about other objects
// or the object as a whole become general errors.
func (f *form) addErrors(es config.Errors, prefix string) {
	for _, e := range es {
		rel, inObject := relPath(e.Path, prefix)
		if inObject && rel != "" {
			if name, ok := f.fieldFor(rel); ok {
				if !contains(f.errs[name], e.Message) {
					f.errs[name] = append(f.errs[name], e.Message)
				}
				continue
			}
		}
		msg := e.Message
		if !inObject || rel != "" {
			msg = e.Error()
		}
		if !contains(f.general, msg) {
			f.general = append(f.general, msg)
		}
	}
}

// relPath returns path relative to prefix, and whether path lies within
// (or is) prefix.
func relPath(path, prefix string) (string, bool) {
	if prefix == "" {
		return path, true
	}
	if path == prefix {
		return "", true
	}
	if rest, ok := strings.CutPrefix(path, prefix); ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "[")) {
		return strings.TrimPrefix(rest, "."), true
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parser reads typed values from a posted form, collecting an error, with
// the field's path under prefix, for each value that does not parse.
type parser struct {
	v      url.Values
	prefix string
	errs   config.Errors
}

func (p *parser) path(name string) string {
	if p.prefix == "" {
		return name
	}
	return p.prefix + "." + name
}

// str returns a field's value, trimmed.
func (p *parser) str(name string) string { return strings.TrimSpace(p.v.Get(name)) }

// int returns a field's whole-number value; empty means 0.
func (p *parser) int(name string) int {
	s := p.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 12 {
		p.errs = append(p.errs, config.FieldError{Path: p.path(name), Message: fmt.Sprintf("must be a whole number, got %q", clip(s, 40))})
		return 0
	}
	return n
}

// bool returns a checkbox's value.
func (p *parser) bool(name string) bool {
	switch strings.ToLower(p.str(name)) {
	case "on", "true", "1", "yes":
		return true
	}
	return false
}

// list returns the non-empty values of a multi-valued field.
func (p *parser) list(name string) []string {
	var out []string
	for _, v := range p.v[name] {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// ints parses a list of whole numbers separated by commas or spaces.
func (p *parser) ints(name string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(p.str(name), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		n, err := strconv.Atoi(f)
		if err != nil || len(f) > 12 {
			p.errs = append(p.errs, config.FieldError{Path: p.path(name), Message: fmt.Sprintf("must be whole numbers separated by commas, got %q", clip(f, 40))})
			return nil
		}
		out = append(out, n)
	}
	return out
}

// headers parses "Name: value" lines into a map; an empty text gives nil.
func (p *parser) headers(name string) map[string]string {
	text := p.v.Get(name)
	if strings.TrimSpace(text) == "" {
		return nil
	}
	out := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			p.errs = append(p.errs, config.FieldError{Path: p.path(name),
				Message: fmt.Sprintf("line %d must be \"Name: value\", got %q", i+1, clip(line, 40))})
			return nil
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// formatHeaders renders a header map as "Name: value" lines, sorted.
func formatHeaders(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k + ": " + h[k] + "\n")
	}
	return sb.String()
}

// formatInts renders numbers as a comma-separated list.
func formatInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// withoutParsed drops validation errors on fields that already have a
// parse error (their value was not usable, so the validation error would
// only repeat it).
func withoutParsed(valid, parsed config.Errors) config.Errors {
	bad := map[string]bool{}
	for _, e := range parsed {
		bad[e.Path] = true
	}
	out := append(config.Errors{}, parsed...)
	for _, e := range valid {
		if !bad[e.Path] {
			out = append(out, e)
		}
	}
	return out
}

// urlQueryEscape escapes s for a query parameter value.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext returns next if it is a local path of the UI, or "/".
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") || strings.HasPrefix(next, "/api/") || strings.HasPrefix(next, "/static/") {
		return "/"
	}
	return next
}
