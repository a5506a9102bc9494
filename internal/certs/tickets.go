package certs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultTicketRotation is how often session-ticket keys change.
const DefaultTicketRotation = 12 * time.Hour

// TicketLifetime is how long a session ticket is accepted: the lifetime
// that Go's TLS stack announces in every ticket it sends (the TLS 1.3
// ticket_lifetime hint, fixed at 7 days) and enforces on resumption, so
// that clients never hold tickets the keys no longer open, nor the keys
// open tickets clients were told had expired.
const TicketLifetime = 7 * 24 * time.Hour

// TicketKeys encrypts TLS session tickets with keys that rotate by time:
// the key of each period is derived from a random secret, so rotation needs
// no goroutine and every tls.Config sharing one TicketKeys (the listeners
// of a service, and its generations across reloads) accepts the others'
// tickets. A ticket is accepted for TicketLifetime after the period it was
// issued in began; the secret lives in memory only, so a restart ends
// every ticket.
type TicketKeys struct {
	secret   [32]byte
	rotation time.Duration
	now      func() time.Time

	mu    sync.Mutex
	aeads map[int64]cipher.AEAD
}

// NewTicketKeys returns ticket keys with a fresh random secret, rotating
// every rotation (DefaultTicketRotation when 0).
func NewTicketKeys(rotation time.Duration) *TicketKeys {
	if rotation <= 0 {
		rotation = DefaultTicketRotation
	}
	k := &TicketKeys{rotation: rotation, now: time.Now, aeads: map[int64]cipher.AEAD{}}
	_, _ = rand.Read(k.secret[:])
	return k
}

func (k *TicketKeys) epoch() int64 { return k.now().UnixNano() / int64(k.rotation) }

// periods is how many periods before the current one a ticket may have
// been issued in and still be accepted.
func (k *TicketKeys) periods() int64 { return int64((TicketLifetime + k.rotation - 1) / k.rotation) }

// aead returns the cipher of period e, deriving it on first use and
// forgetting periods too old to be accepted.
func (k *TicketKeys) aead(e int64) cipher.AEAD {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.aeads[e]; ok {
		return a
	}
	for old := range k.aeads {
		if old < e-k.periods() {
			delete(k.aeads, old)
		}
	}
	m := hmac.New(sha256.New, k.secret[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(e))
	m.Write(b[:])
	block, _ := aes.NewCipher(m.Sum(nil)) // 32 bytes: AES-256
	a, _ := cipher.NewGCM(block)
	k.aeads[e] = a
	return a
}

// wrap is tls.Config.WrapSession: epoch | nonce | sealed session state.
func (k *TicketKeys) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	e := k.epoch()
	a := k.aead(e)
	out := make([]byte, 8+a.NonceSize(), 8+a.NonceSize()+len(state)+a.Overhead())
	binary.BigEndian.PutUint64(out, uint64(e))
	if _, err := rand.Read(out[8:]); err != nil {
		return nil, err
	}
	return a.Seal(out, out[8:], state, out[:8]), nil
}

// unwrap is tls.Config.UnwrapSession. A ticket it cannot read (from an
// older period, another service, or forged) gives a full handshake.
func (k *TicketKeys) unwrap(ticket []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	if len(ticket) < 8+12 {
		return nil, nil
	}
	e := int64(binary.BigEndian.Uint64(ticket))
	if cur := k.epoch(); e > cur || e < cur-k.periods() {
		return nil, nil
	}
	a := k.aead(e)
	ns := a.NonceSize()
	state, err := a.Open(nil, ticket[8:8+ns], ticket[8+ns:], ticket[:8])
	if err != nil {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, nil
	}
	return ss, nil
}
