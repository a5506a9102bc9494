package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Store keeps imported templates; *store.Store implements it.
type Store interface {
	Templates() (map[string][]byte, error)
	PutTemplate(name string, doc []byte) error
	DeleteTemplate(name string) error
}

// ErrNotFound is returned (wrapped) for a template that does not exist.
var ErrNotFound = errors.New("no such template")

// ErrBuiltin is returned (wrapped) when an import would replace, or a
// delete would remove, a built-in template.
var ErrBuiltin = errors.New("built-in template")

// Library is the built-in templates plus those imported into the store.
type Library struct {
	builtin map[string]*Template
	store   Store
}

// Builtin returns the built-in templates, parsed and checked.
func Builtin() (map[string]*Template, error) {
	out := map[string]*Template{}
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		return nil, fmt.Errorf("built-in templates: %w", err)
	}
	for _, e := range entries {
		doc, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("built-in template %s: %w", e.Name(), err)
		}
		t, err := Parse(doc)
		if err != nil {
			return nil, fmt.Errorf("built-in template %s: %w", e.Name(), err)
		}
		out[t.Name] = t
	}
	return out, nil
}

// NewLibrary returns a library over the built-in templates and st.
func NewLibrary(st Store) (*Library, error) {
	b, err := Builtin()
	if err != nil {
		return nil, err
	}
	return &Library{builtin: b, store: st}, nil
}

// Summary describes a template in a listing.
type Summary struct {
	// Name identifies the template.
	Name string `json:"name"`
	// Title is the human-readable name.
	Title string `json:"title"`
	// Builtin is true for templates that ship with Fulcrum.
	Builtin bool `json:"builtin"`
	// Services is the number of virtual services the template creates.
	Services int `json:"services"`
}

// List returns every template, built-in first, by name.
func (l *Library) List() ([]Summary, error) {
	var out []Summary
	for _, t := range l.builtin {
		out = append(out, Summary{Name: t.Name, Title: t.Title, Builtin: true, Services: len(t.VirtualServices)})
	}
	stored, err := l.store.Templates()
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	for name, doc := range stored {
		t, err := Parse(doc)
		if err != nil {
			out = append(out, Summary{Name: name, Title: "(unreadable: " + err.Error() + ")"})
			continue
		}
		out = append(out, Summary{Name: t.Name, Title: t.Title, Services: len(t.VirtualServices)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Builtin != out[j].Builtin {
			return out[i].Builtin
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Get returns the named template.
func (l *Library) Get(name string) (*Template, error) {
	if t, ok := l.builtin[name]; ok {
		return t, nil
	}
	stored, err := l.store.Templates()
	if err != nil {
		return nil, fmt.Errorf("read template %q: %w", name, err)
	}
	doc, ok := stored[name]
	if !ok {
		return nil, fmt.Errorf("template %q: %w", name, ErrNotFound)
	}
	return Parse(doc)
}

// Import checks a template document and stores it under its name. A
// template of the same name is replaced only when replace is set; built-in
// templates are never replaced.
func (l *Library) Import(doc []byte, replace bool) (*Template, error) {
	t, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	if _, ok := l.builtin[t.Name]; ok {
		return nil, fmt.Errorf("template %q is a %w; import it under another name", t.Name, ErrBuiltin)
	}
	stored, err := l.store.Templates()
	if err != nil {
		return nil, fmt.Errorf("import template: %w", err)
	}
	if _, exists := stored[t.Name]; exists && !replace {
		return nil, fmt.Errorf("template %q already exists: set replace to overwrite it", t.Name)
	}
	canon, err := Encode(t)
	if err != nil {
		return nil, err
	}
	if err := l.store.PutTemplate(t.Name, canon); err != nil {
		return nil, fmt.Errorf("import template: %w", err)
	}
	return t, nil
}

// Delete removes an imported template.
func (l *Library) Delete(name string) error {
	if _, ok := l.builtin[name]; ok {
		return fmt.Errorf("template %q is a %w and cannot be deleted", name, ErrBuiltin)
	}
	if err := l.store.DeleteTemplate(name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("template %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("delete template %q: %w", name, err)
	}
	return nil
}

// Encode returns a template as YAML.
func Encode(t *Template) ([]byte, error) {
	y, err := yaml.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode template: %w", err)
	}
	return y, nil
}

// readOnly is a Store with no imported templates that refuses imports.
type readOnly struct{}

func (readOnly) Templates() (map[string][]byte, error) { return map[string][]byte{}, nil }
func (readOnly) PutTemplate(string, []byte) error {
	return errors.New("this library holds the built-in templates only")
}
func (readOnly) DeleteTemplate(string) error { return store.ErrNotFound }

// BuiltinOnly returns a library of the built-in templates that refuses
// imports.
func BuiltinOnly() (*Library, error) { return NewLibrary(readOnly{}) }
