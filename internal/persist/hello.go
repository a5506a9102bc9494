package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Hello is what ssl persistence needs from the first TLS handshake message
// of either side of a connection, as a layer-4 proxy sees it before
// relaying it.
type Hello struct {
	// Server is true for a ServerHello (or HelloRetryRequest), false for a
	// ClientHello.
	Server bool
	// SessionID is the legacy session ID: in a ClientHello, the session the
	// client wants to resume (or, for TLS 1.3 clients, usually random); in
	// a TLS ≤ 1.2 ServerHello, the ID of the session, which the client will
	// present to resume it.
	SessionID []byte
	// SNI is the server name of a ClientHello, if any.
	SNI string
	// TLS13 is true for a ClientHello that offers TLS 1.3 and for a
	// ServerHello that selects it.
	TLS13 bool
}

// Errors of ParseHello.
var (
	// ErrIncomplete means more bytes are needed to read the message.
	ErrIncomplete = errors.New("tls: handshake message incomplete")
	// ErrNotHello means the bytes are not a TLS ClientHello or ServerHello.
	ErrNotHello = errors.New("tls: not a ClientHello or ServerHello")
)

// maxHello bounds the handshake message ParseHello reads.
const maxHello = 1 << 16

// ParseHello parses the TLS record at the start of b, which must hold a
// ClientHello or ServerHello (possibly spread over several handshake
// records). It returns ErrIncomplete when b ends before the message does.
// The returned SessionID aliases b.
func ParseHello(b []byte) (Hello, error) {
	msg, err := handshakeMessage(b)
	if err != nil {
		return Hello{}, err
	}
	var h Hello
	switch msg[0] {
	case 1:
	case 2:
		h.Server = true
	default:
		return Hello{}, ErrNotHello
	}
	r := reader(msg[4:])
	if _, ok := r.take(2 + 32); !ok { // legacy version, random
		return Hello{}, errShort("random")
	}
	sid, ok := r.vec8()
	if !ok || len(sid) > 32 {
		return Hello{}, errShort("session id")
	}
	if len(sid) > 0 {
		h.SessionID = sid
	}
	if h.Server {
		if _, ok := r.take(3); !ok { // cipher suite, compression
			return Hello{}, errShort("cipher suite")
		}
	} else {
		if _, ok := r.vec16(); !ok {
			return Hello{}, errShort("cipher suites")
		}
		if _, ok := r.vec8(); !ok {
			return Hello{}, errShort("compression methods")
		}
	}
	if len(r) == 0 {
		return h, nil // no extensions
	}
	exts, ok := r.vec16()
	if !ok {
		return Hello{}, errShort("extensions")
	}
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return Hello{}, errShort("extension")
		}
		switch typ {
		case 0: // server_name
			if !h.Server {
				sni, err := parseSNI(data)
				if err != nil {
					return Hello{}, err
				}
				h.SNI = sni
			}
		case 43: // supported_versions
			if h.Server {
				v, ok := data.u16()
				if !ok {
					return Hello{}, errShort("supported_versions")
				}
				h.TLS13 = v == 0x0304
			} else {
				list, ok := data.vec8()
				if !ok || len(list)%2 != 0 {
					return Hello{}, errShort("supported_versions")
				}
				for i := 0; i+1 < len(list); i += 2 {
					if binary.BigEndian.Uint16(list[i:]) == 0x0304 {
						h.TLS13 = true
					}
				}
			}
		}
	}
	return h, nil
}

// handshakeMessage reassembles the first handshake message from the
// handshake records at the start of b.
func handshakeMessage(b []byte) ([]byte, error) {
	var msg []byte
	for {
		if len(b) < 5 {
			return nil, ErrIncomplete
		}
		if b[0] != 22 || b[1] != 3 {
			return nil, ErrNotHello
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if n == 0 || n > 1<<14+2048 {
			return nil, fmt.Errorf("tls: record length %d: %w", n, ErrNotHello)
		}
		if len(b) < 5+n {
			return nil, ErrIncomplete
		}
		frag := b[5 : 5+n]
		b = b[5+n:]
		if msg == nil && len(frag) >= 4 {
			// Fast path: the whole message in the first record.
			if l := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3]); 4+l <= len(frag) {
				return frag[:4+l], nil
			}
		}
		msg = append(msg, frag...)
		if len(msg) >= 4 {
			l := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
			if l > maxHello {
				return nil, fmt.Errorf("tls: handshake message of %d bytes: %w", l, ErrNotHello)
			}
			if 4+l <= len(msg) {
				return msg[:4+l], nil
			}
		}
	}
}

// parseSNI reads the host name of a server_name extension.
func parseSNI(data reader) (string, error) {
	list, ok := data.vec16()
	if !ok {
		return "", errShort("server_name")
	}
	for len(list) > 0 {
		typ, ok1 := list.take(1)
		name, ok2 := list.vec16()
		if !ok1 || !ok2 {
			return "", errShort("server_name")
		}
		if typ[0] == 0 {
			return string(name), nil
		}
	}
	return "", nil
}

func errShort(what string) error {
	return fmt.Errorf("tls: hello truncated in %s: %w", what, ErrNotHello)
}

// reader reads TLS vectors.
type reader []byte

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || len(*r) < n {
		return nil, false
	}
	out := (*r)[:n]
	*r = (*r)[n:]
	return out, true
}

func (r *reader) u16() (uint16, bool) {
	b, ok := r.take(2)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (r *reader) vec8() (reader, bool) {
	n, ok := r.take(1)
	if !ok {
		return nil, false
	}
	b, ok := r.take(int(n[0]))
	return reader(b), ok
}

func (r *reader) vec16() (reader, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	b, ok := r.take(int(n))
	return reader(b), ok
}
