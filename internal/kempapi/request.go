package kempapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Bounds of a request.
const (
	maxParams     = 256      // parameters in one request
	maxParamName  = 64       // bytes of a parameter name
	maxParamValue = 64 << 10 // bytes of a parameter value
	maxFormBody   = 1 << 20  // a POSTed form of a v1 request
	maxJSONBody   = 16 << 20
	maxCmdLen     = 64
	// maxPreAuthBody is how much of a form or v2 body is read before the
	// caller is authenticated. A body that fits is read whole, as before;
	// of a longer one only this much is read, to find the credentials it
	// carries (v1 apikey, v2 apikey or apiuser and apipass), and the rest
	// only once they are good: so unauthenticated clients cannot make the
	// server hold more than this per request.
	maxPreAuthBody = 8 << 10
)

// params are the parameters of one command by lower-cased name: LoadMaster
// takes parameter names in any case (Enable, enable, ENABLE).
type params map[string]string

// has reports whether the parameter is present, even with an empty value
// (createsubvs=).
func (p params) has(name string) bool { _, ok := p[name]; return ok }

// get returns a parameter's value.
func (p params) get(name string) (string, bool) { v, ok := p[name]; return v, ok }

// str returns a parameter's value or "".
func (p params) str(name string) string { return p[name] }

// add sets a parameter unless it is already set (the first occurrence wins).
func (p params) add(name, value string) *failure {
	if len(name) > maxParamName || name == "" {
		return fail(http.StatusBadRequest, "Invalid parameter name")
	}
	if len(value) > maxParamValue {
		return fail(http.StatusBadRequest, "%s: value too long", name)
	}
	name = strings.ToLower(name)
	if _, dup := p[name]; dup {
		return nil
	}
	if len(p) >= maxParams {
		return fail(http.StatusBadRequest, "Too many parameters")
	}
	p[name] = value
	return nil
}

// request is a parsed API request of either version.
type request struct {
	cmd  string // lower-cased; sub-commands as "logging/df"
	p    params
	body []byte // raw body (v1 binary commands) or decoded "data" (v2)
	v2   bool
	// fileBody is the unread body of a v1 binary command: it is read only
	// once the caller is authenticated and allowed to run the command.
	fileBody io.Reader
	// form is the unread body of a v1 form POST or of a v2 request; see
	// readPreAuth.
	form io.Reader
	// prefix is the first maxPreAuthBody+1 bytes of a body longer than
	// maxPreAuthBody, whose rest is still unread in form: only the
	// credentials found in prefix are in p until readRest has read the
	// whole body after authentication.
	prefix []byte
	// creds are the credentials taken from the parameters by
	// authenticate, to check that the whole body carries the same ones.
	creds map[string]string
}

// credentialParams are the parameters that carry credentials.
var credentialParams = []string{"apikey", "apiuser", "apipass"}

// pending reports whether part of the body is still unread.
func (r *request) pending() bool { return r.prefix != nil }

// parseV1 reads /access/<cmd>?params. POST bodies of binary commands are
// kept raw (clients send certificate and backup files with any content
// type, often application/x-www-form-urlencoded) and read after
// authentication; other POSTs may carry their parameters as a form, left
// for readPreAuth.
func parseV1(w http.ResponseWriter, r *http.Request) (request, *failure) {
	cmd := strings.TrimPrefix(r.URL.Path, "/access")
	cmd = strings.Trim(cmd, "/")
	req := request{cmd: strings.ToLower(cmd), p: params{}}
	if len(req.cmd) > maxCmdLen {
		return req, fail(http.StatusMethodNotAllowed, "Unknown command")
	}
	if err := addQuery(req.p, r.URL.RawQuery); err != nil {
		return req, err
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return req, nil
	}
	if c, ok := commands[req.cmd]; ok && c.binary {
		req.fileBody = http.MaxBytesReader(w, r.Body, c.maxBody())
		return req, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		req.form = http.MaxBytesReader(w, r.Body, maxFormBody)
	}
	return req, nil
}

// parseV2 checks a POST /accessv2 request; its JSON body,
// {"cmd": ..., params...}, is left for readPreAuth.
func parseV2(w http.ResponseWriter, r *http.Request) (request, *failure) {
	req := request{p: params{}, v2: true}
	if r.Method != http.MethodPost {
		return req, fail(http.StatusMethodNotAllowed, "accessv2 requires a POST of a JSON object")
	}
	if r.Body == nil {
		return req, fail(http.StatusBadRequest, "Invalid JSON: the request must be a JSON object")
	}
	req.form = http.MaxBytesReader(w, r.Body, maxJSONBody)
	return req, nil
}

// readPreAuth reads a request's form or v2 body before authentication: a
// body of at most maxPreAuthBody bytes whole, into the parameters; of a
// longer one only the first maxPreAuthBody+1 bytes, keeping from them only
// the credentials (a v1 apikey pair, the v2 apikey, apiuser and apipass
// members), which must lie whole within the first maxPreAuthBody bytes.
// The rest is read by readRest once the caller is authenticated.
func readPreAuth(r *http.Request, req *request) *failure {
	if req.form == nil {
		return nil
	}
	buf := make([]byte, maxPreAuthBody+1)
	n, err := io.ReadFull(req.form, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		body := buf[:n]
		req.form = nil
		if req.v2 {
			return decodeV2(body, req)
		}
		return addQuery(req.p, string(body))
	case err != nil:
		return bodyError(err)
	}
	req.prefix = buf
	var creds map[string]string
	if req.v2 {
		creds = scanV2Credentials(buf[:maxPreAuthBody])
	} else {
		creds = scanFormCredentials(buf[:maxPreAuthBody])
	}
	for _, name := range credentialParams {
		if v, ok := creds[name]; ok {
			if f := req.p.add(name, v); f != nil {
				return f
			}
		}
	}
	if !req.p.has("apikey") && !req.p.has("apiuser") && !req.p.has("apipass") && r.Header.Get("Authorization") == "" {
		return &failure{status: http.StatusUnauthorized, challenge: true, msg: fmt.Sprintf(
			"Authorization required: a request body over %d bytes must carry its credentials (apikey, or apiuser and apipass) "+
				"within its first %d bytes, or in an Authorization header", maxPreAuthBody, maxPreAuthBody)}
	}
	return nil
}

// readRest reads the rest of a body of which readPreAuth read only the
// beginning, now that the caller is authenticated, and parses it whole
// (up to maxFormBody or maxJSONBody). A v2 body must carry the credentials
// the caller was authenticated with and no others.
func readRest(req *request) *failure {
	if !req.pending() {
		return nil
	}
	b, err := io.ReadAll(io.MultiReader(bytes.NewReader(req.prefix), req.form))
	req.prefix, req.form = nil, nil
	if err != nil {
		return bodyError(err)
	}
	full := request{p: params{}, v2: req.v2, cmd: req.cmd}
	if req.v2 {
		if f := decodeV2(b, &full); f != nil {
			return f
		}
	} else {
		// The query's parameters come first, as before: the first
		// occurrence of a name wins.
		for k, v := range req.p {
			full.p[k] = v
		}
		if f := addQuery(full.p, string(b)); f != nil {
			return f
		}
	}
	for _, name := range credentialParams {
		v, ok := full.p[name]
		delete(full.p, name)
		if !req.v2 {
			// v1: the query's apikey, or else the form's first one, is
			// the one readPreAuth found and the caller used.
			continue
		}
		used, was := req.creds[name]
		switch {
		case ok && !was:
			return fail(http.StatusBadRequest, "%s: in a request body over %d bytes the credentials must come within the first %d bytes",
				name, maxPreAuthBody, maxPreAuthBody)
		case ok && v != used:
			return fail(http.StatusBadRequest, "Duplicate parameter: %s", name)
		}
	}
	full.creds = req.creds
	*req = full
	return nil
}

// scanV2Credentials returns the apikey, apiuser and apipass members (by
// lower-cased name) of the JSON object that prefix begins, as far as
// prefix holds them and the members before them whole.
func scanV2Credentials(prefix []byte) map[string]string {
	out := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(prefix))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return out
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, ok := tok.(string)
		if !ok {
			return out
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		lk := strings.ToLower(key)
		if slices.Contains(credentialParams, lk) {
			if _, dup := out[lk]; !dup {
				if v, f := jsonValue(key, raw); f == nil {
					out[lk] = v
				}
			}
		}
	}
	return out
}

// scanFormCredentials returns the first apikey pair of the form whose
// beginning prefix is, if that pair ends within prefix.
func scanFormCredentials(prefix []byte) map[string]string {
	out := map[string]string{}
	whole := string(prefix)
	if i := strings.LastIndexByte(whole, '&'); i >= 0 {
		whole = whole[:i] // the last pair may be cut
	} else {
		return out
	}
	for _, pair := range strings.Split(whole, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 == nil && err2 == nil && strings.EqualFold(key, "apikey") {
			out["apikey"] = val
			break
		}
	}
	return out
}

func bodyError(err error) *failure {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fail(http.StatusRequestEntityTooLarge, "Request too large: at most %d bytes", tooBig.Limit)
	}
	return fail(http.StatusBadRequest, "Cannot read the request body")
}

// addQuery adds the parameters of a query string, keeping the first value
// of a repeated name.
func addQuery(p params, raw string) *failure {
	if raw == "" {
		return nil
	}
	// url.ParseQuery would merge repeated names in map order; walk the
	// pairs in order instead so that "the first occurrence wins" holds.
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return fail(http.StatusBadRequest, "Invalid query string")
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return fail(http.StatusBadRequest, "Invalid query string")
		}
		if err := p.add(key, val); err != nil {
			return err
		}
	}
	return nil
}

// decodeV2 fills req from a JSON body.
func decodeV2(b []byte, req *request) *failure {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return fail(http.StatusBadRequest, "Invalid JSON: the request must be a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(http.StatusBadRequest, "Invalid JSON: data after the object")
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic when two keys differ only in case
	seen := map[string]string{}
	for _, k := range keys {
		lk := strings.ToLower(k)
		if other, dup := seen[lk]; dup {
			return fail(http.StatusBadRequest, "Duplicate parameter: %s and %s", other, k)
		}
		seen[lk] = k
		v, f := jsonValue(k, raw[k])
		if f != nil {
			return f
		}
		switch lk {
		case "cmd":
			req.cmd = strings.ToLower(strings.ReplaceAll(v, ".", "/"))
			if len(req.cmd) > maxCmdLen {
				return fail(http.StatusMethodNotAllowed, "Unknown command")
			}
		case "data":
			d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil {
				return fail(http.StatusBadRequest, "data: must be base64-encoded")
			}
			req.body = d
		default:
			if f := req.p.add(k, v); f != nil {
				return f
			}
		}
	}
	if req.cmd == "" {
		return missing("cmd")
	}
	return nil
}

// jsonValue turns a JSON parameter value into LoadMaster's text form.
func jsonValue(name string, raw json.RawMessage) (string, *failure) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fail(http.StatusBadRequest, "%s: invalid value", name)
	}
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		if len(t) > maxParamValue && !strings.EqualFold(name, "data") {
			return "", fail(http.StatusBadRequest, "%s: value too long", name)
		}
		return t, nil
	case bool:
		if t {
			return "1", nil
		}
		return "0", nil
	case json.Number:
		return t.String(), nil
	}
	return "", fail(http.StatusBadRequest, "%s: must be a string, number or boolean", name)
}

// parseBool reads a LoadMaster boolean: Y/N, y/n, 1/0, yes/no or
// true/false.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes", "1", "true", "on":
		return true, true
	case "n", "no", "0", "false", "off":
		return false, true
	}
	return false, false
}

// parseInt reads a decimal integer within int32 range.
func parseInt(s string) (int, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	return int(n), err == nil
}

// boolParam reads a boolean parameter named display (for errors) from p.
func boolParam(p params, name, display string) (v, present bool, f *failure) {
	s, ok := p.get(name)
	if !ok {
		return false, false, nil
	}
	b, good := parseBool(s)
	if !good {
		return false, true, invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(s))
	}
	return b, true, nil
}

// intParam reads an integer parameter.
func intParam(p params, name, display string) (v int, present bool, f *failure) {
	s, ok := p.get(name)
	if !ok {
		return 0, false, nil
	}
	n, good := parseInt(s)
	if !good {
		return 0, true, invalid("%s: Invalid integer value %q", display, short(s))
	}
	return n, true, nil
}

// short bounds a user-supplied value quoted in an error.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
