package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// APIKeyPrefix starts every API-key secret. A secret is
// "fk_" + ID + "_" + 32 random bytes in unpadded base64url.
const APIKeyPrefix = "fk_"

// keyIDLen is the length of an API key's ID: 8 random bytes in hex.
const keyIDLen = 16

// MaxKeyDescription is the longest API-key description, in characters.
const MaxKeyDescription = 128

// lastUsedEvery is how stale an API key's LastUsed may get before a use
// writes it again; it spares the store a write per request.
const lastUsedEvery = time.Minute

// noKeyHash is compared against when no key matches, so that an unknown
// key takes as long to refuse as a wrong one.
var noKeyHash = strings.Repeat("0", 64)

func newKeyID() string {
	b := make([]byte, keyIDLen/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// keyIDOf returns the ID in an API-key secret, if the secret is well
// formed.
func keyIDOf(secret string) (string, bool) {
	if len(secret) > maxTokenLen || !strings.HasPrefix(secret, APIKeyPrefix) {
		return "", false
	}
	id, rest, ok := strings.Cut(secret[len(APIKeyPrefix):], "_")
	if !ok || len(id) != keyIDLen || rest == "" {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// validDescription checks an API key's description; problems are
// reported as config.Errors.
func validDescription(d string) error {
	msg := ""
	switch {
	case !utf8.ValidString(d):
		msg = "must be valid UTF-8"
	case utf8.RuneCountInString(d) > MaxKeyDescription:
		msg = fmt.Sprintf("must have at most %d characters, got %d", MaxKeyDescription, utf8.RuneCountInString(d))
	case strings.ContainsFunc(d, unicode.IsControl):
		msg = "must not contain control characters"
	default:
		return nil
	}
	return config.Errors{{Path: "description", Message: msg}}
}

// CreateAPIKey makes an API key for user ("" means by.User) and returns it
// (without hash) with its secret, which is shown once and never again.
// Users may make keys for themselves; keys for others need PermUsers. A
// user holds at most MaxAPIKeysPerUser keys: making one more deletes the
// oldest.
func (s *Service) CreateAPIKey(by Principal, remote, user, description string) (key config.APIKey, secret string, err error) {
	if user == "" {
		user = by.User
	}
	var expired []string
	defer func() {
		for _, id := range expired {
			s.Audit(by, remote, "apikey.expire", fmt.Sprintf("deleted oldest API key %s of %s: at most %d per user",
				id, q(user), MaxAPIKeysPerUser), true)
		}
		detail := "create API key for " + q(user)
		if key.ID != "" {
			detail = "create API key " + key.ID + " for " + q(user)
		}
		s.auditResult(by, remote, "apikey.create", detail, err)
	}()
	if !(by.User == user && by.Can(PermRead)) && !by.Can(PermUsers) {
		return config.APIKey{}, "", ErrForbidden
	}
	if err := validDescription(description); err != nil {
		return config.APIKey{}, "", fmt.Errorf("create API key: %w", err)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if _, err := s.getUser(user); err != nil {
		return config.APIKey{}, "", fmt.Errorf("create API key: %w", err)
	}
	all, err := s.b.APIKeys()
	if err != nil {
		return config.APIKey{}, "", fmt.Errorf("create API key: list keys: %w", err)
	}
	ids := map[string]bool{}
	var own []config.APIKey
	for _, k := range all {
		ids[k.ID] = true
		if k.User == user {
			own = append(own, k)
		}
	}
	sortKeys(own)
	for len(own) >= MaxAPIKeysPerUser {
		if err := s.b.DeleteAPIKey(own[0].ID); err != nil && !s.isNotFound(err) {
			return config.APIKey{}, "", fmt.Errorf("create API key: delete oldest key %s: %w", own[0].ID, err)
		}
		expired = append(expired, own[0].ID)
		own = own[1:]
	}
	id := newKeyID()
	for ids[id] {
		id = newKeyID()
	}
	secret = APIKeyPrefix + id + "_" + randomToken(32)
	key = config.APIKey{ID: id, User: user, Hash: hashSecret(secret), Description: description, Created: s.now()}
	if err := s.b.PutAPIKey(key); err != nil {
		return config.APIKey{}, "", fmt.Errorf("create API key: %w", err)
	}
	key.Hash = ""
	return key, secret, nil
}

// sortKeys orders keys oldest first.
func sortKeys(ks []config.APIKey) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].Created.Equal(ks[j].Created) {
			return ks[i].Created.Before(ks[j].Created)
		}
		return ks[i].ID < ks[j].ID
	})
}

// APIKeys lists the API keys of user, or of every user for "", by user and
// then age, with their hashes blanked.
func (s *Service) APIKeys(user string) ([]config.APIKey, error) {
	all, err := s.b.APIKeys()
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	out := make([]config.APIKey, 0, len(all))
	for _, k := range all {
		if user == "" || k.User == user {
			k.Hash = ""
			out = append(out, k)
		}
	}
	sortKeys(out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out, nil
}

// RevokeAPIKey deletes an API key. Users may revoke their own keys;
// others' keys need PermUsers.
func (s *Service) RevokeAPIKey(by Principal, remote, id string) (err error) {
	defer func() { s.auditResult(by, remote, "apikey.revoke", "revoke API key "+q(id), err) }()
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	all, err := s.b.APIKeys()
	if err != nil {
		return fmt.Errorf("revoke API key: list keys: %w", err)
	}
	var found *config.APIKey
	for i := range all {
		if all[i].ID == id {
			found = &all[i]
			break
		}
	}
	if found == nil {
		if !by.Can(PermRead) {
			return ErrForbidden
		}
		return fmt.Errorf("%w: %q", ErrNoSuchKey, id)
	}
	if !(found.User == by.User && by.Can(PermRead)) && !by.Can(PermUsers) {
		return ErrForbidden
	}
	if err := s.b.DeleteAPIKey(id); err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	return nil
}

// AuthenticateAPIKey authenticates an API-key secret presented by remote
// other than in an Authorization header (the LoadMaster-compatible API
// takes it as a form parameter). Failures count toward the lockout of the
// source address and are audited, as in Authenticate. Errors are
// ErrBadCredentials, *LockedError or a wrapped backend error.
func (s *Service) AuthenticateAPIKey(secret, remote string) (Principal, error) {
	return s.apiKeyAuth(secret, remote)
}

// apiKeyAuth authenticates an API-key secret from remote. Failures count
// toward a lockout of the source address and toward the budget of failed
// API-key attempts of all sources together (APIKeyFailureRate), from which
// the sources of recent successful logins are exempt.
func (s *Service) apiKeyAuth(secret, remote string) (Principal, error) {
	p := s.policy()
	now := s.now()
	src := sourceOf(remote)
	lk := apiKeyLockKey(src)
	anon := Principal{Method: MethodAPIKey}
	if r, locked := s.locks.begin(lk, now, p); locked {
		why := "login refused: locked (method apikey)"
		s.auditFailure(anon, remote, "login", anySubject, "", why, why, false)
		return Principal{}, &LockedError{Until: r.until}
	}
	charged, until, ok := s.keys.begin(src, now)
	if !ok {
		s.locks.cancel(lk)
		why := "login refused: too many invalid API keys from all sources (method apikey)"
		s.auditFailure(anon, remote, "login", anySubject, "", why, why, false)
		return Principal{}, &LockedError{Until: until}
	}
	var found *config.APIKey
	if id, ok := keyIDOf(secret); ok {
		all, err := s.b.APIKeys()
		if err != nil {
			s.locks.cancel(lk)
			s.keys.giveBack(charged)
			return Principal{}, fmt.Errorf("list API keys: %w", err)
		}
		for i := range all {
			if all[i].ID == id {
				found = &all[i]
				break
			}
		}
	}
	want := noKeyHash
	if found != nil && len(found.Hash) == len(noKeyHash) {
		want = found.Hash
	}
	match := subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(want)) == 1 && found != nil
	reason := "invalid API key"
	if match {
		u, err := s.b.User(found.User)
		switch {
		case err == nil:
			s.locks.succeed(lk)
			s.keys.giveBack(charged)
			s.keys.remember(src, s.now())
			s.noteKeyUse(*found)
			return Principal{User: u.Name, Role: u.Role, Method: MethodAPIKey, KeyID: found.ID}, nil
		case s.isNotFound(err):
			reason = "API key of a deleted user"
		default:
			s.locks.cancel(lk)
			s.keys.giveBack(charged)
			return Principal{}, fmt.Errorf("look up user %q: %w", found.User, err)
		}
	}
	who, subject := anon, anySubject
	if found != nil {
		who.User, subject = found.User, found.ID
		reason += " " + found.ID
	}
	s.auditFailure(who, remote, "login", subject, "", reason+" (method apikey)", reason+" (method apikey)", false)
	if until, lockedNow := s.locks.fail(lk, s.now(), p); lockedNow {
		s.auditFailure(anon, remote, "lockout", anySubject, "",
			fmt.Sprintf("%d invalid API keys from one source: locked for %d s", p.Attempts, p.CoolDown),
			fmt.Sprintf("%d invalid API keys from %s: locked until %s", p.Attempts, src, until.UTC().Format(time.RFC3339)), true)
	}
	return Principal{}, ErrBadCredentials
}

// noteKeyUse records when a key was last used, at most once per
// lastUsedEvery.
func (s *Service) noteKeyUse(k config.APIKey) {
	now := s.now()
	if now.Sub(k.LastUsed) < lastUsedEvery {
		return
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	all, err := s.b.APIKeys()
	if err != nil {
		s.log.Warn("admin: cannot record API key use", "key", k.ID, "err", err)
		return
	}
	for _, cur := range all {
		if cur.ID == k.ID { // still there: not revoked meanwhile
			if now.Sub(cur.LastUsed) < lastUsedEvery {
				return
			}
			cur.LastUsed = now
			if err := s.b.PutAPIKey(cur); err != nil {
				s.log.Warn("admin: cannot record API key use", "key", k.ID, "err", err)
			}
			return
		}
	}
}
