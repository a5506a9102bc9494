package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// enums gives the allowed values of enumerated fields, by Go type and field.
var enums = map[string][]string{
	"VirtualService.Protocol": config.Protocols,
	"VirtualService.Type":     config.ServiceTypes,
	"VirtualService.Schedule": config.Schedules,
	"VirtualService.AddVia":   config.AddViaModes,
	"Persistence.Mode":        config.PersistModes,
	"TLS.Profile":             config.TLSProfiles,
	"HealthCheck.Type":        config.CheckTypes,
	"HealthCheck.Method":      config.CheckMethods,
	"Options.AlwaysPersist":   config.AlwaysPersistModes,
	"newUser.Role":            config.Roles,
	"userPatch.Role":          config.Roles,
	"Event.Severity":          config.Severities,
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// OpenAPI builds the OpenAPI 3 document from the route table.
func (s *Server) OpenAPI() map[string]any {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": strings.ToLower(rt.method) + opName(rt.path),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			typ := "integer"
			if m[1] == "name" {
				typ = "string"
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": typ}})
		}
		if rt.perm != 0 && rt.method != "GET" {
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": false,
				"description": "the revision the change is based on; a stale one gets 412", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.body), schemas)}}}
		}
		status := rt.status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		if rt.resp != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.resp), schemas)}}
		}
		errRef := map[string]any{"description": "error", "content": map[string]any{
			"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(errorBody{}), schemas)}}}
		op["responses"] = map[string]any{itoa(status): ok, "default": errRef}
		if rt.perm == 0 {
			op["security"] = []any{}
		}
		oapi := pathParam.ReplaceAllString(rt.path, "{$1}")
		if paths[oapi] == nil {
			paths[oapi] = map[string]any{}
		}
		paths[oapi][strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Fulcrum native API", "version": "1",
			"description": "Configuration and status of a Fulcrum load balancer. Every write goes through one validated, revisioned write path."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"basic":   map[string]any{"type": "http", "scheme": "basic"},
				"apiKey":  map[string]any{"type": "http", "scheme": "bearer"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": "fulcrum_session"},
			},
		},
		"security": []any{map[string]any{"basic": []any{}}, map[string]any{"apiKey": []any{}}, map[string]any{"session": []any{}}},
	}
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.OpenAPI())
}

func opName(path string) string {
	var sb strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.Split(part, "-") {
			if w != "" {
				sb.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
	}
	return sb.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

var timeType = reflect.TypeOf(time.Time{})

// schemaOf returns the JSON schema of t, registering named struct types in
// schemas and referring to them.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return schemaOf(t.Elem(), schemas)
	case t == reflect.TypeOf(json.RawMessage(nil)):
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Struct:
		name := t.Name()
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, done := schemas[name]; done {
			return ref
		}
		schemas[name] = map[string]any{} // placeholder against recursion
		props := map[string]any{}
		var embedded []any
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if f.Anonymous && tag == "" {
				embedded = append(embedded, schemaOf(f.Type, schemas))
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			ps := schemaOf(f.Type, schemas)
			if vals, ok := enums[name+"."+f.Name]; ok {
				ps = map[string]any{"type": "string", "enum": vals}
			}
			props[tag] = ps
		}
		obj := map[string]any{"type": "object", "properties": props}
		if embedded != nil {
			schemas[name] = map[string]any{"allOf": append(embedded, obj)}
		} else {
			schemas[name] = obj
		}
		return ref
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32, reflect.Uint16:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	return map[string]any{}
}
