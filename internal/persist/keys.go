package persist

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Key domains: every key is a 64-bit hash, keyed by the Registry's
// random seed, of a domain tag and what the mode looks at, so keys of
// different modes sharing a table (port following) never mean the same
// thing. Two distinct clients collide with probability about
// entries/2^64 (under 10^-13 for a million entries), and then merely share
// a real server; the seed keeps collisions from being chosen from outside.
const (
	tagSrc      = 'S'
	tagSuper    = 'F'
	tagSuperSrc = 'X'
	tagCookie   = 'C'
	tagCookies  = 'H'
	tagURL      = 'U'
	tagQuery    = 'Q'
	tagHost     = 'O'
	tagHeader   = 'R'
	tagTLS      = 'T'
	tagSIP      = 'P'
)

// primaryKey returns the key of the mode's own kind (not the source-IP
// fallback), if in has one.
func (p *Persister) primaryKey(in *Input) (uint64, bool) {
	r := in.HTTP
	switch p.set.Mode {
	case ModeSuper, ModeSuperSrc:
		var ua, auth string
		if r != nil {
			ua, auth = r.Header.Get("User-Agent"), r.Header.Get("Authorization")
		}
		if p.set.Mode == ModeSuper {
			if ua == "" && auth == "" {
				return 0, false
			}
			return p.fingerprint(tagSuper, ua, auth, nil), true
		}
		a := in.Request.Client.Addr()
		if !a.IsValid() {
			return 0, false
		}
		b := p.maskAddr(a).As16()
		return p.fingerprint(tagSuperSrc, ua, auth, b[:]), true
	case ModeCookie, ModeCookieSrc:
		if v := requestCookie(in, p.set.Name); v != "" {
			return p.stringKey(tagCookie, "", v), true
		}
	case ModeCookieHash, ModeCookieHashSrc:
		if r != nil {
			return p.cookiesKey(r)
		}
	case ModeURL:
		if r != nil && r.URL != nil {
			return p.stringKey(tagURL, "", r.URL.RequestURI()), true
		}
	case ModeQueryHash:
		if r != nil && r.URL != nil {
			if v, ok := queryValue(r.URL.RawQuery, p.set.QueryTag); ok {
				return p.stringKey(tagQuery, p.set.QueryTag, v), true
			}
		}
	case ModeHost:
		if r != nil && r.Host != "" {
			return p.stringKey(tagHost, "", strings.ToLower(r.Host)), true
		}
	case ModeHeader:
		if r != nil {
			if v := r.Header.Get(p.set.Name); v != "" {
				return p.stringKey(tagHeader, http.CanonicalHeaderKey(p.set.Name), v), true
			}
		}
	case ModeSSL:
		if len(in.TLSSession) > 0 {
			return p.bytesKey(tagTLS, in.TLSSession), true
		}
	case ModeUDPSIP:
		if id, err := CallID(in.SIP); err == nil {
			return p.bytesKey(tagSIP, id), true
		}
	}
	return 0, false
}

// srcKey returns the source-IP key of in, after the mask.
func (p *Persister) srcKey(in *Input) (uint64, bool) {
	a := in.Request.Client.Addr()
	if !a.IsValid() {
		return 0, false
	}
	var b [17]byte
	b[0] = tagSrc
	a16 := p.maskAddr(a).As16()
	copy(b[1:], a16[:])
	return maphash.Bytes(p.table.seed, b[:]), true
}

// fingerprint hashes the Super HTTP fingerprint (User-Agent and
// Authorization, length-prefixed so that no two pairs hash the same input)
// and, for super-src, the masked source address.
func (p *Persister) fingerprint(tag byte, ua, auth string, addr []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(p.table.seed)
	var n [8]byte
	n[0] = tag
	binary.BigEndian.PutUint32(n[4:], uint32(len(ua)))
	h.Write(n[:])
	h.WriteString(ua)
	binary.BigEndian.PutUint32(n[4:], uint32(len(auth)))
	h.Write(n[4:])
	h.WriteString(auth)
	h.Write(addr)
	return h.Sum64()
}

// stringKey hashes a tag, a qualifier (a header or query item name) and a
// value.
func (p *Persister) stringKey(tag byte, qual, v string) uint64 {
	var h maphash.Hash
	h.SetSeed(p.table.seed)
	var n [5]byte
	n[0] = tag
	binary.BigEndian.PutUint32(n[1:], uint32(len(qual)))
	h.Write(n[:])
	h.WriteString(qual)
	h.WriteString(v)
	return h.Sum64()
}

// bytesKey hashes a tag and a value.
func (p *Persister) bytesKey(tag byte, v []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(p.table.seed)
	h.WriteByte(tag)
	h.Write(v)
	return h.Sum64()
}

// cookiesKey hashes all the request's cookies, sorted by name and value so
// that the order the client sends them in does not matter.
func (p *Persister) cookiesKey(r *http.Request) (uint64, bool) {
	cs := r.Cookies()
	if len(cs) == 0 {
		return 0, false
	}
	slices.SortFunc(cs, func(a, b *http.Cookie) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Value, b.Value))
	})
	var h maphash.Hash
	h.SetSeed(p.table.seed)
	h.WriteByte(tagCookies)
	var n [4]byte
	for _, c := range cs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Name)))
		h.Write(n[:])
		h.WriteString(c.Name)
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Value)))
		h.Write(n[:])
		h.WriteString(c.Value)
	}
	return h.Sum64(), true
}

// queryValue returns the (unescaped) value of the first query item named
// tag in a raw query.
func queryValue(raw, tag string) (string, bool) {
	for raw != "" {
		var item string
		item, raw, _ = strings.Cut(raw, "&")
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		if k != tag {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			uk, err := url.QueryUnescape(k)
			if err != nil || uk != tag {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
		}
		return v, true
	}
	return "", false
}
