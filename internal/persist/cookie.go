package persist

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"time"
)

// MinSecretLen is the shortest per-install secret accepted for active
// cookies.
const MinSecretLen = 16

// An active cookie's value is a token: base64url (no padding) of
//
//	version (1 byte, 1) | server ID (12 bytes) | expiry (4 bytes, Unix seconds, big endian) | MAC (16 bytes)
//
// MAC is HMAC-SHA256, truncated to 128 bits, keyed with a key derived from
// the per-install secret, over a domain label, the ID of the persistence
// table (the virtual service, or the one it follows) and the first 17
// bytes. The server ID is HMAC-derived too: 6 bytes from the real server's
// address, then 6 from its address and port. It names the real server
// without revealing it: without the secret, an ID cannot be turned back
// into an address, nor a token made for another server, table or time.
// Port following uses the address part: a cookie issued on :80 finds the
// same host on :443.
const (
	tokenVersion = 1
	serverIDLen  = 12
	macLen       = 16
	payloadLen   = 1 + serverIDLen + 4
	tokenLen     = payloadLen + macLen
)

// tokenEncoding is the cookie-safe encoding of tokens.
var tokenEncoding = base64.RawURLEncoding

// serverID is the opaque name of a real server in active cookies.
type serverID [serverIDLen]byte

// hostPart is the part of a serverID derived from the address alone.
func (id serverID) hostPart() [serverIDLen / 2]byte {
	var h [serverIDLen / 2]byte
	copy(h[:], id[:serverIDLen/2])
	return h
}

// signer makes and checks the tokens of one persistence table.
type signer struct {
	key   []byte // MAC key, derived from the secret
	idKey []byte // server ID key, derived from the secret
	table int
}

func newSigner(secret []byte, table int) (*signer, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("active cookie modes need a per-install secret of at least 16 bytes")
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return &signer{key: derive("fulcrum persist cookie mac v1"), idKey: derive("fulcrum persist server id v1"), table: table}, nil
}

// serverID returns the opaque ID of the real server at address:port.
func (s *signer) serverID(address string, port int) serverID {
	var id serverID
	m := hmac.New(sha256.New, s.idKey)
	m.Write([]byte("host\x00" + address))
	copy(id[:serverIDLen/2], m.Sum(nil))
	m.Reset()
	m.Write([]byte("hostport\x00" + address + "\x00" + strconv.Itoa(port)))
	copy(id[serverIDLen/2:], m.Sum(nil))
	return id
}

// mac computes the MAC of a payload.
func (s *signer) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	var tbl [8]byte
	binary.BigEndian.PutUint64(tbl[:], uint64(s.table))
	m.Write([]byte("fulcrum active cookie\x00"))
	m.Write(tbl[:])
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}

// issue returns a token naming id that expires at exp.
func (s *signer) issue(id serverID, exp time.Time) string {
	var b [tokenLen]byte
	b[0] = tokenVersion
	copy(b[1:], id[:])
	binary.BigEndian.PutUint32(b[1+serverIDLen:], uint32(max(min(exp.Unix(), 1<<32-1), 0)))
	copy(b[payloadLen:], s.mac(b[:payloadLen]))
	return tokenEncoding.EncodeToString(b[:])
}

// Errors of token verification.
var (
	errTokenMalformed = errors.New("active cookie is malformed")
	errTokenForged    = errors.New("active cookie signature does not verify")
	errTokenExpired   = errors.New("active cookie has expired")
)

// verify checks a token at time now and returns the server it names and
// its expiry. The MAC is compared in constant time; nothing of a token
// that does not verify is used.
func (s *signer) verify(token string, now time.Time) (serverID, time.Time, error) {
	var id serverID
	if tokenEncoding.EncodedLen(tokenLen) != len(token) {
		return id, time.Time{}, errTokenMalformed
	}
	var b [tokenLen]byte
	n, err := tokenEncoding.Decode(b[:], []byte(token))
	if err != nil || n != tokenLen {
		return id, time.Time{}, errTokenMalformed
	}
	if !hmac.Equal(s.mac(b[:payloadLen]), b[payloadLen:]) {
		return id, time.Time{}, errTokenForged
	}
	if b[0] != tokenVersion {
		return id, time.Time{}, errTokenMalformed
	}
	exp := time.Unix(int64(binary.BigEndian.Uint32(b[1+serverIDLen:])), 0)
	if !now.Before(exp) {
		return id, time.Time{}, errTokenExpired
	}
	copy(id[:], b[1:1+serverIDLen])
	return id, exp, nil
}
