package webui

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// FuzzFormParsing feeds arbitrary form values through the UI's parsers and
// the error-to-field mapping: nothing panics, parse errors name the field
// under the prefix, and safeNext only ever returns a local path.
func FuzzFormParsing(f *testing.F) {
	f.Add("42", "403, 404", "X-A: 1\nX-B: 2", "virtualServices[0].tls.certificates[3]", "/vs/1")
	f.Add("-1", "abc", "no colon", "virtualServices[0]", "//evil")
	f.Add("99999999999999999999", ",,,", ":\n:", "options.health.interval", "/\\x")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, num, list, headers, path, next string) {
		v := url.Values{"n": {num}, "l": {list}, "h": {headers}}
		p := &parser{v: v, prefix: "virtualServices[0]"}
		p.int("n")
		p.ints("l")
		p.headers("h")
		p.bool("n")
		p.list("l")
		for _, e := range p.errs {
			if !strings.HasPrefix(e.Path, "virtualServices[0].") || e.Message == "" {
				t.Fatalf("parse error %+v", e)
			}
		}
		fm := newForm("port", "tls.certificates", "healthCheck.headers")
		fm.addErrors(append(p.errs, config.FieldError{Path: path, Message: "m"}), "virtualServices[0]")
		if len(fm.errs)+len(fm.general) == 0 {
			t.Fatal("an error was lost")
		}
		if got := safeNext(next); !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
	})
}
