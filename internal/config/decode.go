package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// MaxDocumentSize is the largest configuration document Decode accepts.
const MaxDocumentSize = 32 << 20

// Decode reads a configuration document in YAML or JSON (JSON is YAML),
// strictly: unknown keys, duplicate keys and values of the wrong type are
// errors, and every one of them is reported with its path in an Errors
// value. Defaults are set on the result; it is not validated.
func Decode(doc []byte) (*Config, error) {
	c := &Config{}
	if err := DecodeInto(doc, c); err != nil {
		return nil, err
	}
	c.SetDefaults()
	return c, nil
}

// DecodeInto strictly decodes a YAML or JSON document into v, which must be
// a pointer to one of this package's types (or a struct built the same way),
// reporting unknown keys and wrong types with their paths. Fields absent
// from the document keep their values in v.
func DecodeInto(doc []byte, v any) error {
	if len(doc) > MaxDocumentSize {
		return Errors{{Message: fmt.Sprintf("document too large: %d bytes, at most %d", len(doc), MaxDocumentSize)}}
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return Errors{{Message: "empty document"}}
	}
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Errors{{Message: "malformed document: " + cleanYAMLError(err)}}
	}
	if !json.Valid(doc) { // strict JSON has neither a second document nor other bases
		if err := checkYAML(doc); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return Errors{{Message: "malformed document: " + err.Error()}}
	}
	if _, ok := generic.(map[string]any); !ok {
		return Errors{{Message: "document must be a mapping of fields, got " + describe(generic)}}
	}
	var e errs
	checkShape(generic, reflect.TypeOf(v).Elem(), "", &e)
	if err := e.err(); err != nil {
		return err
	}
	if err := json.Unmarshal(js, v); err != nil {
		return Errors{{Message: "malformed document: " + err.Error()}}
	}
	return nil
}

// checkYAML refuses what YAML reads differently from what its writer most
// likely meant, or silently drops: a second document in the same file
// (only the first would be read), and integers written with a leading
// zero, a 0x/0o/0b prefix or underscores, which YAML 1.1 (the converter's)
// reads in another base — `port: 0755` is 493 there, 755 in YAML 1.2.
func checkYAML(doc []byte) error {
	dec := yaml3.NewDecoder(bytes.NewReader(doc))
	var root yaml3.Node
	if err := dec.Decode(&root); err != nil {
		return nil // syntax errors were reported by the converter
	}
	var next yaml3.Node
	if err := dec.Decode(&next); err == nil {
		return Errors{{Message: fmt.Sprintf("line %d: a second document: a configuration file holds one document", next.Line)}}
	}
	var out Errors
	var walk func(n *yaml3.Node)
	walk = func(n *yaml3.Node) {
		if n.Kind == yaml3.ScalarNode && n.Style == 0 && n.Tag == "!!int" && ambiguousInt(n.Value) {
			out = append(out, FieldError{Message: fmt.Sprintf("line %d: %s: a number written with a leading zero, a base prefix or underscores "+
				"is read in another base by YAML 1.1; write it in plain decimal, or quote it if it is a string", n.Line, n.Value)})
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if len(out) > 0 {
		return out
	}
	return nil
}

// ambiguousInt reports an integer literal other than plain decimal.
func ambiguousInt(v string) bool {
	v = strings.TrimLeft(v, "+-")
	return len(v) > 1 && v[0] == '0' || strings.ContainsAny(v, "_xXoObB")
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	return strings.TrimPrefix(s, "yaml: ")
}

// checkShape compares a generic JSON value with the Go type it will be
// decoded into and records every mismatch with its path.
func checkShape(v any, t reflect.Type, path string, e *errs) {
	if v == nil {
		return // null leaves the field at its zero value
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(v, t.Elem(), path, e)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			e.add(path, "must be a mapping of fields, got %s", describe(v))
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				e.add(join(path, k), "unknown field%s", suggest(k, fields))
				continue
			}
			checkShape(m[k], f.Type, join(path, k), e)
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			e.add(path, "must be a list, got %s", describe(v))
			return
		}
		for i, item := range list {
			checkShape(item, t.Elem(), index(path, i), e)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			e.add(path, "must be a mapping, got %s", describe(v))
			return
		}
		for k, item := range m {
			checkShape(item, t.Elem(), join(path, k), e)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			e.add(path, "must be a string, got %s", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			e.add(path, "must be true or false, got %s", describe(v))
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			e.add(path, "must be a whole number, got %s", describe(v))
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			e.add(path, "must be a whole number in range, got %s", n)
		}
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case json.Number:
		return "number " + x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprintf("%T", v)
}

// jsonFields maps the JSON names of t's exported fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// suggest proposes the known field whose name differs from k only in case.
func suggest(k string, fields map[string]reflect.StructField) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
	}
	return ""
}

// EncodeJSON returns the canonical indented JSON form of c.
func EncodeJSON(c *Config) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return append(b, '\n'), nil
}

// EncodeYAML returns c as a YAML document that Decode reads back equal.
func EncodeYAML(c *Config) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("encode configuration as YAML: %w", err)
	}
	return y, nil
}

// Equal reports whether two configurations encode identically.
func Equal(a, b *Config) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// IsErrors reports whether err holds field errors, and returns them.
func IsErrors(err error) (Errors, bool) {
	var es Errors
	if errors.As(err, &es) {
		return es, true
	}
	return nil, false
}
