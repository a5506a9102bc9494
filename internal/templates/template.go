// Package templates is Fulcrum's application templates: a documented,
// versioned YAML/JSON format for a named set of virtual services with
// parameters (VIP addresses, certificate, real servers, ports) and
// defaults, the built-in templates (the Lync/Skype 2013 set, Exchange, a
// generic HTTPS farm), and instantiation into configuration objects that
// the control package applies as one change.
//
// A template's virtual services are written in the configuration format
// itself (see docs/configuration.md) with "${name}" placeholders: a string
// that is exactly "${name}" takes the parameter's value with its type
// (number, list, ...); "${name}" inside a longer string is replaced by the
// value's text; "$$" stands for "$". One extra key, realServersFrom, turns a
// parameter of type servers into the service's real servers.
package templates

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Format and Version identify the template document format.
const (
	Format  = "fulcrum-template"
	Version = 1
)

// MaxDocumentSize is the largest template document accepted.
const MaxDocumentSize = 1 << 20

// Template is one template document.
type Template struct {
	// Format must be "fulcrum-template".
	Format string `json:"format"`
	// Version is the format version; 1.
	Version int `json:"version"`
	// Name identifies the template: letters, digits, '.', '-', '_', at most
	// 64 characters.
	Name string `json:"name"`
	// Title is the human-readable name shown in lists.
	Title string `json:"title"`
	// Description says what the template is for and where each value comes
	// from.
	Description string `json:"description,omitempty"`
	// Parameters are the values asked for when the template is used.
	Parameters []Parameter `json:"parameters,omitempty"`
	// VirtualServices are the services the template creates, in the
	// configuration format with placeholders (kept generic until
	// instantiation).
	VirtualServices []map[string]any `json:"virtualServices"`
	// ContentRules are layer-7 content rules the services refer to by name
	// (config.ContentRule with placeholders); they are added with the
	// services. Put a parameter in their names (such as the VIP) so that a
	// template can be used twice.
	ContentRules []map[string]any `json:"contentRules,omitempty"`
	// Checks are smoke checks that `fulcrum verify` runs through the
	// services once they are up, with placeholders too.
	Checks []map[string]any `json:"checks,omitempty"`
}

// Parameter types.
const (
	TypeString      = "string"
	TypeInt         = "int"
	TypePort        = "port"
	TypeBool        = "bool"
	TypeIP          = "ip"
	TypeHostname    = "hostname"
	TypeCertificate = "certificate"
	TypeServers     = "servers"
)

// ParameterTypes lists the valid Parameter.Type values.
var ParameterTypes = []string{TypeString, TypeInt, TypePort, TypeBool, TypeIP, TypeHostname, TypeCertificate, TypeServers}

// Parameter is a value the user supplies when instantiating a template.
type Parameter struct {
	// Name is used in placeholders: letters, digits and '_', starting with a
	// letter.
	Name string `json:"name"`
	// Type is string, int, port, bool, ip, hostname, certificate (the name
	// of an imported certificate) or servers (a list of real servers, each
	// "address", "address:port" or {address, port, weight}).
	Type string `json:"type"`
	// Description tells the user what to give.
	Description string `json:"description,omitempty"`
	// Required parameters must be given; others fall back to Default.
	Required bool `json:"required,omitempty"`
	// Default is used when the parameter is not given.
	Default any `json:"default,omitempty"`
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	paramRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	placeRE = regexp.MustCompile(`\$\{([^}]*)\}`)
)

// Parse reads and checks a template document (YAML or JSON): the format and
// version, the name, the parameters and their defaults, and that every
// placeholder names a parameter and every service decodes. It reports every
// problem with its path.
func Parse(doc []byte) (*Template, error) {
	if len(doc) > MaxDocumentSize {
		return nil, config.Errors{{Message: fmt.Sprintf("template too large: %d bytes, at most %d", len(doc), MaxDocumentSize)}}
	}
	t := &Template{}
	if err := config.DecodeInto(doc, t); err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Template) check() error {
	var es config.Errors
	add := func(path, format string, args ...any) {
		es = append(es, config.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if t.Format != Format {
		add("format", "must be %q, got %q", Format, t.Format)
	}
	if t.Version != Version {
		add("version", "must be %d, got %d", Version, t.Version)
	}
	if !nameRE.MatchString(t.Name) {
		add("name", "must be 1-64 letters, digits, '.', '-' or '_', got %q", t.Name)
	}
	if strings.TrimSpace(t.Title) == "" {
		add("title", "required")
	}
	params := map[string]Parameter{}
	for i, p := range t.Parameters {
		path := fmt.Sprintf("parameters[%d]", i)
		if !paramRE.MatchString(p.Name) {
			add(path+".name", "must be letters, digits and '_' starting with a letter, got %q", p.Name)
		}
		if _, dup := params[p.Name]; dup {
			add(path+".name", "duplicate parameter %q", p.Name)
		}
		params[p.Name] = p
		if !contains(ParameterTypes, p.Type) {
			add(path+".type", "must be one of %s, got %q", strings.Join(ParameterTypes, ", "), p.Type)
			continue
		}
		if p.Default != nil {
			if _, err := convert(p, p.Default); err != nil {
				add(path+".default", "%v", err)
			}
		}
	}
	if len(t.VirtualServices) == 0 {
		add("virtualServices", "required: at least one virtual service")
	}
	walkPlaceholders(t.VirtualServices, "virtualServices", func(path, name string) {
		if _, ok := params[name]; !ok {
			add(path, "placeholder ${%s} names no parameter", name)
		}
	})
	walkPlaceholders(t.ContentRules, "contentRules", func(path, name string) {
		if _, ok := params[name]; !ok {
			add(path, "placeholder ${%s} names no parameter", name)
		}
	})
	walkPlaceholders(t.Checks, "checks", func(path, name string) {
		if _, ok := params[name]; !ok {
			add(path, "placeholder ${%s} names no parameter", name)
		}
	})
	if len(es) > 0 {
		return es
	}
	// Trial instantiation with sample values finds services that cannot
	// decode or validate whatever the user gives.
	if _, err := t.instantiate(t.samples(), true); err != nil {
		return err
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// walkPlaceholders calls fn for every placeholder in the generic tree v.
func walkPlaceholders(v any, path string, fn func(path, name string)) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkPlaceholders(x[k], path+"."+k, fn)
		}
	case []map[string]any:
		for i, item := range x {
			walkPlaceholders(item, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case []any:
		for i, item := range x {
			walkPlaceholders(item, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case string:
		for _, m := range placeRE.FindAllStringSubmatch(strings.ReplaceAll(x, "$$", ""), -1) {
			fn(path, m[1])
		}
	}
}

// Server is one entry of a servers parameter.
type Server struct {
	// Address is the real server's IP address or DNS name.
	Address string `json:"address"`
	// Port overrides the port the template gives; 0 keeps it.
	Port int `json:"port,omitempty"`
	// Weight overrides the default weight; 0 keeps it.
	Weight int `json:"weight,omitempty"`
}

// convert checks a parameter value and returns it in its canonical form:
// string, int, bool or []Server.
func convert(p Parameter, v any) (any, error) {
	switch p.Type {
	case TypeString, TypeHostname, TypeCertificate, TypeIP:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, got %v", v)
		}
		switch p.Type {
		case TypeIP:
			if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("must be an IP address, got %q", s)
			}
		case TypeHostname, TypeCertificate:
			if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '/' }) {
				return nil, fmt.Errorf("must be a name without spaces, got %q", s)
			}
		}
		return s, nil
	case TypeInt, TypePort:
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		if p.Type == TypePort && (n < 1 || n > 65535) {
			return nil, fmt.Errorf("must be a port 1-65535, got %d", n)
		}
		return n, nil
	case TypeBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if pb, err := strconv.ParseBool(b); err == nil {
				return pb, nil
			}
		}
		return nil, fmt.Errorf("must be true or false, got %v", v)
	case TypeServers:
		return toServers(v)
	}
	return nil, fmt.Errorf("unknown parameter type %q", p.Type)
}

func toInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	case string:
		if i, err := strconv.Atoi(n); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("must be a whole number, got %v", v)
}

func toServers(v any) ([]Server, error) {
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	case []Server:
		return x, nil
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		return nil, fmt.Errorf("must be a list of servers, got %v", v)
	}
	out := make([]Server, 0, len(items))
	for i, item := range items {
		var s Server
		switch x := item.(type) {
		case string:
			host, port, err := splitHostPort(x)
			if err != nil {
				return nil, fmt.Errorf("server %d: %w", i, err)
			}
			s = Server{Address: host, Port: port}
		case map[string]any:
			for k, val := range x {
				switch k {
				case "address":
					a, ok := val.(string)
					if !ok {
						return nil, fmt.Errorf("server %d: address must be a string", i)
					}
					s.Address = a
				case "port", "weight":
					n, err := toInt(val)
					if err != nil {
						return nil, fmt.Errorf("server %d: %s %w", i, k, err)
					}
					if k == "port" {
						s.Port = n
					} else {
						s.Weight = n
					}
				default:
					return nil, fmt.Errorf("server %d: unknown field %q", i, k)
				}
			}
		default:
			return nil, fmt.Errorf("server %d: must be \"address\", \"address:port\" or {address, port, weight}", i)
		}
		if s.Address == "" {
			return nil, fmt.Errorf("server %d: address required", i)
		}
		out = append(out, s)
	}
	return out, nil
}

// splitHostPort accepts "host", "host:port", "[v6]:port" and a bare IPv6
// address.
func splitHostPort(s string) (string, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), 0, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), int(ap.Port()), nil
	}
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return s, 0, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", s)
	}
	return host, n, nil
}

// samples returns a value of each parameter's type for trial
// instantiation: its default when it has one.
func (t *Template) samples() map[string]any {
	out := map[string]any{}
	for i, p := range t.Parameters {
		if p.Default != nil {
			out[p.Name] = p.Default
			continue
		}
		switch p.Type {
		case TypeString, TypeHostname:
			out[p.Name] = "sample.example"
		case TypeCertificate:
			out[p.Name] = "sample-certificate"
		case TypeIP:
			out[p.Name] = fmt.Sprintf("127.0.%d.%d", 100+i/250, 1+i%250)
		case TypeInt:
			out[p.Name] = 1
		case TypePort:
			out[p.Name] = 1
		case TypeBool:
			out[p.Name] = false
		case TypeServers:
			out[p.Name] = []any{"127.0.0.1"}
		}
	}
	return out
}
