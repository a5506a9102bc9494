package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// consolePrincipal is who acts for changes made on the local console.
var consolePrincipal = Principal{User: "console", Role: config.RoleAdmin, Method: MethodConsole}

// systemPrincipal is who acts for changes Fulcrum makes on its own.
var systemPrincipal = Principal{User: "system", Role: config.RoleAdmin, Method: methodSystem}

// passwordAlphabet has no characters that are easily confused (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratedPasswordLen is the length of generated passwords (about 139
// bits of entropy).
const GeneratedPasswordLen = 24

// GeneratePassword returns a random password of GeneratedPasswordLen
// characters from an alphabet without look-alike characters.
func GeneratePassword() string {
	// Rejection sampling: only bytes below the largest multiple of the
	// alphabet's size are used, so every character is equally likely.
	n := len(passwordAlphabet)
	limit := 256 - 256%n
	out := make([]byte, 0, GeneratedPasswordLen)
	buf := make([]byte, 2*GeneratedPasswordLen)
	for len(out) < GeneratedPasswordLen {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails
		for _, c := range buf {
			if int(c) < limit && len(out) < GeneratedPasswordLen {
				out = append(out, passwordAlphabet[int(c)%n])
			}
		}
	}
	return string(out)
}

// UserInfo is what may be shown of a user: never the password hash.
type UserInfo struct {
	// Name is the login name.
	Name string `json:"name"`
	// Role is admin, operator or read-only.
	Role string `json:"role"`
	// Created is when the user was added.
	Created time.Time `json:"created"`
	// PasswordChanged is when the password was last set.
	PasswordChanged time.Time `json:"passwordChanged"`
}

// q quotes a user-supplied name for an audit detail, bounded in length.
func q(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// Bootstrap creates the first administrator, config.FirstAdmin, if there
// is no user at all. Its password is password, which must satisfy the
// policy's minimum length, or, if password is "", a generated one that is
// returned so that the caller can show it once. When users exist it does
// nothing and returns "".
func (s *Service) Bootstrap(password string) (generated string, err error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	users, err := s.b.Users()
	if err != nil {
		return "", fmt.Errorf("bootstrap: list users: %w", err)
	}
	if len(users) > 0 {
		return "", nil
	}
	pw := password
	if pw == "" {
		pw = GeneratePassword()
		generated = pw
	} else if err := config.ValidatePassword(pw, s.policy().MinPassword); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	hash, err := s.hashPassword(pw)
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	now := s.now()
	u := config.User{Name: config.FirstAdmin, Role: config.RoleAdmin, PasswordHash: hash, Created: now, PasswordChanged: now}
	err = s.b.PutUser(u)
	if err != nil {
		err = fmt.Errorf("bootstrap: create user %q: %w", u.Name, err)
	}
	detail := "created first admin " + q(u.Name)
	if generated != "" {
		detail += " with a generated password"
	}
	s.auditResult(systemPrincipal, "", "bootstrap", detail, err)
	if err != nil {
		return "", err
	}
	return generated, nil
}

// ResetPassword sets a user's password from the local console (fulcrum
// passwd): to password, or, if it is "", to a generated one that is
// returned. It ends the user's sessions and lifts the account's lockouts,
// the lock of the account against new sources (see AccountLockAfter)
// included. The user's API keys are not touched.
func (s *Service) ResetPassword(user, password string) (generated string, err error) {
	defer func() { s.auditResult(consolePrincipal, "", "user.password", "console reset of "+q(user), err) }()
	pw := password
	if pw == "" {
		pw = GeneratePassword()
		generated = pw
	} else if err := config.ValidatePassword(pw, s.policy().MinPassword); err != nil {
		return "", fmt.Errorf("reset password: %w", err)
	}
	if err := s.storePassword(user, pw); err != nil {
		return "", fmt.Errorf("reset password: %w", err)
	}
	s.liftLocks(user)
	return generated, nil
}

// UnlockAccount lifts every lockout of an account — from single sources,
// and the slowing or lock against new sources after failures from many
// (AccountSlowAfter, AccountLockAfter) — without changing its password.
// by needs PermUsers. It reports whether the account was slowed or locked
// against new sources.
func (s *Service) UnlockAccount(by Principal, remote, user string) (wasLocked bool, err error) {
	defer func() {
		detail := "lift the lockouts of " + q(user)
		if wasLocked {
			detail += " (it was locked or slowed for new sources)"
		}
		s.auditResult(by, remote, "user.unlock", detail, err)
	}()
	if !by.Can(PermUsers) {
		return false, ErrForbidden
	}
	if _, err := s.getUser(user); err != nil {
		return false, err
	}
	return s.liftLocks(user), nil
}

// liftLocks clears every lockout counter and the budget of an account; it
// reports whether the account was slowed or locked for new sources.
func (s *Service) liftLocks(user string) bool {
	s.locks.clearAccount(user)
	return s.budgets.lift(user, s.now())
}

// storePassword hashes pw, stores it as name's password and ends name's
// sessions.
func (s *Service) storePassword(name, pw string) error {
	hash, err := s.hashPassword(pw)
	if err != nil {
		return err
	}
	s.usersMu.Lock()
	u, err := s.getUser(name)
	if err == nil {
		u.PasswordHash = hash
		u.PasswordChanged = s.now()
		if err = s.b.PutUser(u); err != nil {
			err = fmt.Errorf("save user %q: %w", name, err)
		}
	}
	s.usersMu.Unlock()
	if err != nil {
		return err
	}
	s.revokeSessions(name)
	return nil
}

// getUser returns a user, with ErrNoSuchUser when it does not exist.
func (s *Service) getUser(name string) (config.User, error) {
	u, err := s.b.User(name)
	if err != nil {
		if s.isNotFound(err) {
			return config.User{}, fmt.Errorf("%w: %q", ErrNoSuchUser, name)
		}
		return config.User{}, fmt.Errorf("look up user %q: %w", name, err)
	}
	return u, nil
}

// Users lists the users by name, without password hashes.
func (s *Service) Users() ([]UserInfo, error) {
	users, err := s.b.Users()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]UserInfo, len(users))
	for i, u := range users {
		out[i] = UserInfo{Name: u.Name, Role: u.Role, Created: u.Created, PasswordChanged: u.PasswordChanged}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AddUser creates a user with a role ("" means read-only) and a password.
// by needs PermUsers.
func (s *Service) AddUser(by Principal, remote, name, role, password string) (err error) {
	if role == "" {
		role = config.RoleReadOnly
	}
	defer func() { s.auditResult(by, remote, "user.add", "add user "+q(name)+" with role "+q(role), err) }()
	if !by.Can(PermUsers) {
		return ErrForbidden
	}
	u := config.User{Name: name, Role: role}
	if err := config.ValidateUser(u); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if err := config.ValidatePassword(password, s.policy().MinPassword); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if _, err := s.getUser(name); err == nil {
		return fmt.Errorf("%w: %q", ErrUserExists, name)
	} else if !errors.Is(err, ErrNoSuchUser) {
		return fmt.Errorf("add user: %w", err)
	}
	now := s.now()
	u.PasswordHash, u.Created, u.PasswordChanged = hash, now, now
	if err := s.b.PutUser(u); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	return nil
}

// countAdmins returns the number of users with the admin role.
func (s *Service) countAdmins() (int, error) {
	users, err := s.b.Users()
	if err != nil {
		return 0, fmt.Errorf("list users: %w", err)
	}
	n := 0
	for _, u := range users {
		if u.Role == config.RoleAdmin {
			n++
		}
	}
	return n, nil
}

// SetRole changes a user's role. by needs PermUsers. The last admin cannot
// be given another role.
func (s *Service) SetRole(by Principal, remote, name, role string) (err error) {
	defer func() { s.auditResult(by, remote, "user.role", "set role of "+q(name)+" to "+q(role), err) }()
	if !by.Can(PermUsers) {
		return ErrForbidden
	}
	if err := config.ValidateUser(config.User{Name: name, Role: role}); err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	u, err := s.getUser(name)
	if err != nil {
		return err
	}
	if u.Role == role {
		return nil
	}
	if u.Role == config.RoleAdmin {
		n, err := s.countAdmins()
		if err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		if n <= 1 {
			return ErrLastAdmin
		}
	}
	u.Role = role
	if err := s.b.PutUser(u); err != nil {
		return fmt.Errorf("set role of %q: %w", name, err)
	}
	return nil
}

// SetPassword changes a user's password. Users may change their own; a
// non-admin must give the old password (an admin's is checked only if
// given). Changing another user's password needs PermUsers. Every session
// of the user ends, the caller's included.
func (s *Service) SetPassword(by Principal, remote, name, oldPassword, newPassword string) (err error) {
	defer func() { s.auditResult(by, remote, "user.password", "set password of "+q(name), err) }()
	self := by.User != "" && by.User == name && by.Can(PermRead)
	if !self && !by.Can(PermUsers) {
		return ErrForbidden
	}
	if err := config.ValidatePassword(newPassword, s.policy().MinPassword); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if self && (by.Role != config.RoleAdmin || oldPassword != "") {
		if err := s.checkOldPassword(name, oldPassword, remote); err != nil {
			return err
		}
	}
	if err := s.storePassword(name, newPassword); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// checkOldPassword verifies a user's current password; failures count
// toward the lockout like failed logins.
func (s *Service) checkOldPassword(name, pw, remote string) error {
	p := s.policy()
	k := userLockKey(name, sourceOf(remote))
	if r, locked := s.locks.begin(k, s.now(), p); locked {
		return &LockedError{Until: r.until}
	}
	u, err := s.getUser(name)
	if err != nil {
		s.locks.cancel(k)
		return err
	}
	if !s.checkPassword(&u, pw) {
		if until, lockedNow := s.locks.fail(k, s.now(), p); lockedNow {
			s.Audit(Principal{User: name}, remote, "lockout", fmt.Sprintf("%d wrong old passwords from %s: locked until %s",
				p.Attempts, sourceOf(remote), until.UTC().Format(time.RFC3339)), true)
		}
		return ErrWrongPassword
	}
	s.locks.succeed(k)
	return nil
}

// DeleteUser removes a user with their API keys and sessions. by needs
// PermUsers. The last admin cannot be deleted.
func (s *Service) DeleteUser(by Principal, remote, name string) (err error) {
	defer func() { s.auditResult(by, remote, "user.delete", "delete user "+q(name), err) }()
	if !by.Can(PermUsers) {
		return ErrForbidden
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	u, err := s.getUser(name)
	if err != nil {
		return err
	}
	if u.Role == config.RoleAdmin {
		n, err := s.countAdmins()
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if n <= 1 {
			return ErrLastAdmin
		}
	}
	// Keys first: should deleting the user fail, it is left without keys
	// rather than keys left without a user.
	keys, err := s.b.APIKeys()
	if err != nil {
		return fmt.Errorf("delete user: list API keys: %w", err)
	}
	for _, k := range keys {
		if k.User == name {
			if err := s.b.DeleteAPIKey(k.ID); err != nil && !s.isNotFound(err) {
				return fmt.Errorf("delete user: delete API key %s: %w", k.ID, err)
			}
		}
	}
	if err := s.b.DeleteUser(name); err != nil && !s.isNotFound(err) {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	s.revokeSessions(name)
	return nil
}
