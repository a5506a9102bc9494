package kempapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// kind is the type of a response element. The same tree is written as
// LoadMaster's v1 XML and as its v2 JSON; the kind decides how a value is
// spelled in each (a boolean is Y/N in XML and true/false in JSON).
type kind uint8

const (
	kString kind = iota // a string in both formats
	kNumStr             // a number written as a JSON string (VSPort, PersistTimeout, ...)
	kInt                // a number
	kBool               // Y/N in XML, true/false in JSON
	kYesNo              // yes/no in XML, true/false in JSON (get/set parameters)
	kOpts               // a list of strings: <Name><Opt>a</Opt>...</Name>, or a JSON array
	kGroup              // an element with children
)

// node is one element of a response. Nodes with item set are list members:
// in JSON, consecutive siblings of the same name become one array, even a
// single one (as LoadMaster writes "Rs": [ ... ]).
type node struct {
	name     string
	kind     kind
	str      string
	num      int64
	flag     bool
	opts     []string
	children []node
	item     bool
}

func str(name, v string) node        { return node{name: name, kind: kString, str: v} }
func numStr(name string, v int) node { return node{name: name, kind: kNumStr, num: int64(v)} }
func num(name string, v int64) node  { return node{name: name, kind: kInt, num: v} }
func inum(name string, v int) node   { return num(name, int64(v)) }
func yn(name string, v bool) node    { return node{name: name, kind: kBool, flag: v} }
func yesno(name string, v bool) node { return node{name: name, kind: kYesNo, flag: v} }
func opts(name string, v ...string) node {
	return node{name: name, kind: kOpts, opts: v}
}
func group(name string, children ...node) node {
	return node{name: name, kind: kGroup, children: children}
}

// result is the outcome of one command: data (the children of <Data>), a
// success message, a binary blob, or an error.
type result struct {
	status  int    // HTTP status and stat attribute; 0 means 200
	message string // success text or error text
	data    []node // nil with message for "Command completed ok"
	blob    []byte // raw answer (backup, readcert): body in v1, base64 "data" in v2
	blobCT  string // content type of blob in v1
}

// The success message of commands that return no data.
const completedOK = "Command completed ok"

func completed() result { return result{message: completedOK} }

func withData(ns ...node) result { return result{data: ns} }

// failure is a command error: a status and LoadMaster-style text. It is
// also an error so that Mutate functions can return it through the write
// path unchanged.
type failure struct {
	status     int
	msg        string
	retryAfter int  // seconds, for a lockout
	challenge  bool // ask for HTTP Basic credentials
}

func (f *failure) Error() string { return f.msg }

func fail(status int, format string, args ...any) *failure {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &failure{status: status, msg: msg}
}

// Common failures, with LoadMaster's texts where they are known.
func missing(param string) *failure {
	return fail(http.StatusBadRequest, "%s: String Value missing", param)
}

func invalid(format string, args ...any) *failure {
	return fail(http.StatusUnprocessableEntity, format, args...)
}

var (
	errUnknownVS = &failure{status: http.StatusUnprocessableEntity, msg: "Unknown VS"}
	errUnknownRS = &failure{status: http.StatusUnprocessableEntity, msg: "Unknown Real Server"}
)

func (f *failure) result() result { return result{status: f.status, message: f.msg} }

// writeXML writes a v1 answer.
func writeXML(w http.ResponseWriter, res result) {
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	if res.blob != nil && status == http.StatusOK {
		ct := res.blobCT
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write(res.blob)
		return
	}
	var b bytes.Buffer
	b.Grow(16 << 10)
	b.WriteString("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n")
	code := "ok"
	if status >= 400 {
		code = "fail"
	}
	b.WriteString(`<Response stat="` + strconv.Itoa(status) + `" code="` + code + "\">\n")
	switch {
	case status >= 400:
		b.WriteString("<Error>")
		xmlText(&b, res.message)
		b.WriteString("</Error>\n")
	case res.data != nil:
		b.WriteString("<Success><Data>")
		for _, n := range res.data {
			writeXMLNode(&b, n)
		}
		b.WriteString("</Data></Success>\n")
	default:
		b.WriteString("<Success>")
		xmlText(&b, res.message)
		b.WriteString("</Success>\n")
	}
	b.WriteString("</Response>\n")
	w.Header().Set("Content-Type", "text/xml; charset=ISO-8859-1")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func writeXMLNode(b *bytes.Buffer, n node) {
	b.WriteString("<" + n.name + ">")
	switch n.kind {
	case kGroup:
		b.WriteByte('\n')
		for _, c := range n.children {
			writeXMLNode(b, c)
		}
	case kOpts:
		b.WriteByte('\n')
		for _, o := range n.opts {
			b.WriteString("<Opt>")
			xmlText(b, o)
			b.WriteString("</Opt>\n")
		}
	default:
		xmlText(b, n.text())
	}
	b.WriteString("</" + n.name + ">\n")
}

// text is a leaf's value as XML text.
func (n node) text() string {
	switch n.kind {
	case kNumStr, kInt:
		return strconv.FormatInt(n.num, 10)
	case kBool:
		if n.flag {
			return "Y"
		}
		return "N"
	case kYesNo:
		if n.flag {
			return "yes"
		}
		return "no"
	}
	return n.str
}

// xmlText writes s escaped for XML in pure ASCII, so that it is correct
// under the ISO-8859-1 declaration LoadMaster uses: characters beyond
// ASCII become numeric references, and characters XML cannot carry at all
// (control characters, invalid UTF-8) become U+FFFD.
func xmlText(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString("&#65533;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&apos;")
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0xfffe && r <= 0xffff) || (r >= 0xd800 && r <= 0xdfff):
			b.WriteString("&#65533;")
		case r > 0x7e:
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		default:
			b.WriteRune(r)
		}
	}
}

// writeJSON writes a v2 answer: {"code": N, fields..., "status": "ok"},
// with the data flattened to the top level as LoadMaster's APIv2 does.
func writeJSON(w http.ResponseWriter, res result) {
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	var b bytes.Buffer
	b.Grow(16 << 10)
	b.WriteString(`{"code":` + strconv.Itoa(status))
	switch {
	case status >= 400:
		b.WriteString(`,"message":`)
		jsonString(&b, res.message)
		b.WriteString(`,"status":"fail"}`)
	default:
		switch {
		case res.blob != nil:
			b.WriteString(`,"data":`)
			jsonString(&b, base64.StdEncoding.EncodeToString(res.blob))
		case res.data != nil:
			writeJSONMembers(&b, res.data, true)
		default:
			b.WriteString(`,"message":`)
			jsonString(&b, res.message)
		}
		b.WriteString(`,"status":"ok"}`)
	}
	b.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// writeJSONMembers writes nodes as object members; lead says whether a
// comma must precede the first one.
func writeJSONMembers(b *bytes.Buffer, ns []node, lead bool) {
	first := !lead
	for i := 0; i < len(ns); i++ {
		if !first {
			b.WriteByte(',')
		}
		first = false
		n := ns[i]
		jsonString(b, n.name)
		b.WriteByte(':')
		if !n.item {
			writeJSONValue(b, n)
			continue
		}
		b.WriteByte('[')
		j := i
		for ; j < len(ns) && ns[j].item && ns[j].name == n.name; j++ {
			if j > i {
				b.WriteByte(',')
			}
			writeJSONValue(b, ns[j])
		}
		b.WriteByte(']')
		i = j - 1
	}
}

func writeJSONValue(b *bytes.Buffer, n node) {
	switch n.kind {
	case kGroup:
		b.WriteByte('{')
		writeJSONMembers(b, n.children, false)
		b.WriteByte('}')
	case kOpts:
		b.WriteByte('[')
		for i, o := range n.opts {
			if i > 0 {
				b.WriteByte(',')
			}
			jsonString(b, o)
		}
		b.WriteByte(']')
	case kInt:
		b.WriteString(strconv.FormatInt(n.num, 10))
	case kNumStr:
		b.WriteString(`"` + strconv.FormatInt(n.num, 10) + `"`)
	case kBool, kYesNo:
		b.WriteString(strconv.FormatBool(n.flag))
	default:
		jsonString(b, n.str)
	}
}

// jsonString writes s as a JSON string, escaped as encoding/json does
// (HTML-sensitive characters and U+2028/U+2029 too); invalid UTF-8 becomes
// U+FFFD.
func jsonString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028':
			b.WriteString(`\u2028`)
		case r == '\u2029':
			b.WriteString(`\u2029`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
