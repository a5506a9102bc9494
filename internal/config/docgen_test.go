package config

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files (docs/configuration.md)")

// docTypes are the documented types, in the order the reference shows them.
var docTypes = []any{Config{}, Options{}, HealthTimers{}, Lockout{}, Adaptive{}, VirtualService{}, Persistence{}, Limits{},
	TLS{}, HealthCheck{}, RealServer{}, Endpoint{}, Certificate{}, SmokeCheck{}, HTTPSettings{}, ContentRule{},
	Metrics{}, Logging{}, SyslogHost{}, AccessLog{}, Alerts{}, Email{}, Webhook{}}

// TestConfigurationReference keeps docs/configuration.md equal to what the
// doc comments of the model say; run `go test ./internal/config -run
// Reference -update` after changing a field.
func TestConfigurationReference(t *testing.T) {
	fset := token.NewFileSet()
	comments := map[string]string{} // "Type" and "Type.Field" → doc
	var decls []ast.Decl
	for _, name := range []string{"model.go", "l7.go", "checks.go", "observability.go"} {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		decls = append(decls, f.Decls...)
	}
	for _, decl := range decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			comments[ts.Name.Name] = gd.Doc.Text()
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, fld := range st.Fields.List {
				for _, n := range fld.Names {
					if fld.Doc == nil {
						t.Errorf("%s.%s has no doc comment", ts.Name.Name, n.Name)
					}
					comments[ts.Name.Name+"."+n.Name] = fld.Doc.Text()
				}
			}
		}
	}
	var out bytes.Buffer
	out.WriteString("# Configuration reference\n\n")
	out.WriteString("<!-- Generated from internal/config/model.go by `go test ./internal/config -run Reference -update`; do not edit. -->\n\n")
	out.WriteString("A configuration document is YAML or JSON (`fulcrum export` writes one, `fulcrum apply -f` and\n")
	out.WriteString("`PUT /api/v1/config` take one). Unknown keys are errors. Absent fields take the default shown.\n")
	out.WriteString("`Validate` reports every problem at once, each with its path, such as\n")
	out.WriteString("`virtualServices[2].realServers[0].port: must be 1-65535, got 70000`.\n")
	for _, v := range docTypes {
		typ := reflect.TypeOf(v)
		fmt.Fprintf(&out, "\n## %s\n\n%s\n\n", typ.Name(), oneParagraph(comments[typ.Name()]))
		out.WriteString("| field | type | meaning |\n|---|---|---|\n")
		for i := 0; i < typ.NumField(); i++ {
			fld := typ.Field(i)
			name, _, _ := strings.Cut(fld.Tag.Get("json"), ",")
			doc := oneParagraph(comments[typ.Name()+"."+fld.Name])
			doc = strings.TrimPrefix(doc, fld.Name+" ")
			fmt.Fprintf(&out, "| `%s` | %s | %s |\n", name, typeName(fld.Type), strings.ReplaceAll(doc, "|", "\\|"))
		}
	}
	path := "../../docs/configuration.md"
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, out.Bytes()) {
		t.Errorf("docs/configuration.md is out of date with model.go: run go test ./internal/config -run Reference -update")
	}
}

func oneParagraph(s string) string { return strings.Join(strings.Fields(s), " ") }

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Struct:
		return "[" + t.Name() + "](#" + strings.ToLower(t.Name()) + ")"
	case reflect.Int:
		return "integer"
	case reflect.Bool:
		return "boolean"
	}
	return t.Kind().String()
}
