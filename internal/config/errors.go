package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field of a configuration.
type FieldError struct {
	// Path locates the field, e.g. "virtualServices[2].realServers[0].port".
	Path string `json:"path"`
	// Message says what is wrong, e.g. "must be 1-65535, got 70000".
	Message string `json:"message"`
}

// Error implements error.
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is every problem found in one configuration; it is returned by
// Validate and Decode as an error.
type Errors []FieldError

// Error implements error; it lists every problem on its own line.
func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// errs collects field errors while walking a configuration.
type errs struct{ list Errors }

func (e *errs) add(path, format string, args ...any) {
	e.list = append(e.list, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// rng checks that v lies in [lo, hi].
func (e *errs) rng(path string, v, lo, hi int) {
	if v < lo || v > hi {
		e.add(path, "must be %d-%d, got %d", lo, hi, v)
	}
}

// oneOf checks that v is one of allowed.
func (e *errs) oneOf(path, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	e.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
