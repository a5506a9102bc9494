package config

import (
	"fmt"
	"regexp"
	"time"
)

// Roles of admin-plane users.
const (
	// RoleAdmin may do everything.
	RoleAdmin = "admin"
	// RoleOperator may read everything and enable, disable and drain real
	// servers.
	RoleOperator = "operator"
	// RoleReadOnly may read everything except secrets.
	RoleReadOnly = "read-only"
)

// Roles lists the valid user roles.
var Roles = []string{RoleAdmin, RoleOperator, RoleReadOnly}

// FirstAdmin is the name of the administrator created at first start, as on
// a LoadMaster.
const FirstAdmin = "bal"

var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

// User is an admin-plane account. Users are kept beside the revisioned
// configuration, not in it: rolling the configuration back must never bring
// back an old password, and exported configuration files carry no password
// hashes.
type User struct {
	// Name is the login name: lower-case letters, digits, '_', '.', '-', at
	// most 32 characters, starting with a letter or '_'. Required.
	Name string `json:"name"`
	// Role is admin, operator or read-only. Default: read-only.
	Role string `json:"role"`
	// PasswordHash is the bcrypt hash of the password; never shown by the API.
	PasswordHash string `json:"passwordHash,omitempty"`
	// Created is when the user was added.
	Created time.Time `json:"created"`
	// PasswordChanged is when the password was last set; sessions older than
	// this are no longer valid.
	PasswordChanged time.Time `json:"passwordChanged"`
}

// APIKey is a credential for programs. Only a hash of the secret is stored;
// the secret is shown once, when the key is created.
type APIKey struct {
	// ID is the public identifier of the key, shown in listings. Required.
	ID string `json:"id"`
	// User is the user the key acts as; the key has that user's role.
	User string `json:"user"`
	// Hash is the SHA-256 of the secret, hex-encoded; never shown by the API.
	Hash string `json:"hash,omitempty"`
	// Description is free text saying what the key is for; at most 128
	// characters. Default: "".
	Description string `json:"description,omitempty"`
	// Created is when the key was made.
	Created time.Time `json:"created"`
	// LastUsed is when the key last authenticated a request.
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// ValidateUser checks a user's name and role.
func ValidateUser(u User) error {
	var e errs
	if !userRE.MatchString(u.Name) {
		e.add("name", "must be 1-32 lower-case letters, digits, '_', '.' or '-' starting with a letter or '_', got %q", u.Name)
	}
	e.oneOf("role", u.Role, Roles)
	return e.err()
}

// ValidatePassword checks a new password against the minimum length.
func ValidatePassword(pw string, minLen int) error {
	switch {
	case len(pw) < minLen:
		return Errors{{Path: "password", Message: fmt.Sprintf("must have at least %d characters, got %d", minLen, len(pw))}}
	case len(pw) > 72:
		return Errors{{Path: "password", Message: "must have at most 72 bytes"}}
	}
	return nil
}
