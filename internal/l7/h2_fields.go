package l7

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// h2HeadPool holds parsed response heads (with their field and byte
// buffers) for reuse by HTTP/2 streams, so that a response head costs no
// allocation once the buffers have grown to the size of real responses.
var h2HeadPool = sync.Pool{New: func() any { return new(h1.Head) }}

func getH2Head() *h1.Head { return h2HeadPool.Get().(*h1.Head) }

// putH2Head gives h back to h2HeadPool. Its byte buffer is bounded by the
// largest head accepted from a real server; a head with an unusually long
// list of fields is left to the collector.
func putH2Head(h *h1.Head) {
	if cap(h.Fields) > 256 {
		return
	}
	h.Reset()
	h2HeadPool.Put(h)
}

// addFields adds the forwarded fields of a real server's response head to
// an HTTP/2 response header map, and Content-Length when clen >= 0 (which
// replaces any such field). Fields marked Hop are left out, and so are
// fields of kind KindTrailer when skipTrailer is set.
//
// It costs three allocations whatever the number of fields: every value
// (and the length) is one substring of a single string, every value slice
// is a slice of one backing array, and the names of common fields are
// constants; a name that is not common is canonicalised as net/http would.
func addFields(h http.Header, fields []h1.Field, skipTrailer bool, clen int64) {
	n, size := 0, 0
	for i := range fields {
		f := &fields[i]
		if f.Hop || (skipTrailer && f.Kind == h1.KindTrailer) {
			continue
		}
		n++
		size += len(f.Value)
	}
	var num [20]byte
	cl := num[:0]
	if clen >= 0 {
		cl = strconv.AppendInt(cl, clen, 10)
		n++
		size += len(cl)
	}
	if n == 0 {
		return
	}
	var sb strings.Builder
	sb.Grow(size)
	for i := range fields {
		f := &fields[i]
		if f.Hop || (skipTrailer && f.Kind == h1.KindTrailer) {
			continue
		}
		sb.Write(f.Value)
	}
	sb.Write(cl)
	all := sb.String()
	vals := make([]string, n)
	at, k := 0, 0
	for i := range fields {
		f := &fields[i]
		if f.Hop || (skipTrailer && f.Kind == h1.KindTrailer) {
			continue
		}
		v := all[at : at+len(f.Value)]
		at += len(f.Value)
		name := canonicalFieldName(f.Name)
		if clen >= 0 && name == "Content-Length" {
			continue
		}
		if old := h[name]; len(old) > 0 {
			h[name] = append(old, v)
			continue
		}
		vals[k] = v
		h[name] = vals[k : k+1 : k+1]
		k++
	}
	if clen >= 0 {
		vals[k] = all[at:]
		h["Content-Length"] = vals[k : k+1 : k+1]
	}
}

// canonicalFieldName returns the canonical form of a field name, without
// allocating for the fields real servers commonly send.
func canonicalFieldName(b []byte) string {
	// The switch on string(b) compares without converting.
	switch string(b) {
	case "Server":
		return "Server"
	case "Date":
		return "Date"
	case "Content-Type":
		return "Content-Type"
	case "Content-Length":
		return "Content-Length"
	case "Last-Modified":
		return "Last-Modified"
	case "ETag":
		return "Etag"
	case "Etag":
		return "Etag"
	case "Accept-Ranges":
		return "Accept-Ranges"
	case "Cache-Control":
		return "Cache-Control"
	case "Content-Encoding":
		return "Content-Encoding"
	case "Vary":
		return "Vary"
	case "Expires":
		return "Expires"
	case "Location":
		return "Location"
	case "Set-Cookie":
		return "Set-Cookie"
	}
	return textproto.CanonicalMIMEHeaderKey(string(b))
}
