package store

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// RestoreOptions say how RestoreWith treats a backup. The zero value is
// the safe default: only a backup signed by this installation (or a
// trusted key) is accepted, and only its configuration is restored.
type RestoreOptions struct {
	// AllowUnsigned accepts a backup that is unsigned, signed by an
	// unknown key or whose signature does not match. Its content is checked
	// as thoroughly as that of a signed one.
	AllowUnsigned bool
	// Accounts replaces the users and API keys with those of the backup
	// too. Without it they are kept as they are.
	Accounts bool
	// DryRun checks the backup and returns what the restore would change,
	// changing nothing.
	DryRun bool
	// MinBcryptCost is the lowest bcrypt cost accepted for a restored
	// user's password hash; 0 means MinBcryptCost.
	MinBcryptCost int
}

// MinBcryptCost is the lowest bcrypt cost of a password hash that a
// restore of users accepts (by default): bcrypt's own default cost. The
// admin service hashes passwords with cost 12; a lower cost only makes a
// hash cheaper to crack, which a forged backup could exploit.
const MinBcryptCost = 10

// BackupInfo describes a backup file.
type BackupInfo struct {
	// Version is the backup format's version.
	Version int `json:"version"`
	// Revision is the revision that was backed up.
	Revision uint64 `json:"revision"`
	// Created is when the backup was made.
	Created time.Time `json:"created"`
	// Signature says how the backup is signed: own, trusted, unsigned,
	// unknown-key or invalid (see the Signature constants).
	Signature string `json:"signature"`
	// SignedBy is the ID of the key the signature names, if any.
	SignedBy string `json:"signedBy,omitempty"`
}

// Kinds of AccountChange.
const (
	AccountAdded   = "added"
	AccountRemoved = "removed"
	AccountChanged = "changed"
)

// AccountChange is a user or an API key that a restore adds, removes or
// changes. It never holds a password or key hash.
type AccountChange struct {
	// Name is the user's name or the API key's ID.
	Name string `json:"name"`
	// User is, for an API key, the user it acts as.
	User string `json:"user,omitempty"`
	// Role is, for a user, its role after the restore (before it, for a
	// removed user).
	Role string `json:"role,omitempty"`
	// Change is added, removed or changed.
	Change string `json:"change"`
	// Fields lists, for a changed account, what differs: for a user role,
	// password (the hash or when it was set) and created; for an API key
	// user, secret, description and created.
	Fields []string `json:"fields,omitempty"`
}

// String renders the change for a log line: `added eve (admin)`,
// `changed bal (password)`, `added "ci" (user ops)`.
func (c AccountChange) String() string {
	var sb strings.Builder
	sb.WriteString(c.Change + " ")
	if c.User != "" {
		fmt.Fprintf(&sb, "%q (user %s", c.Name, c.User)
	} else {
		fmt.Fprintf(&sb, "%s (%s", c.Name, c.Role)
	}
	if len(c.Fields) > 0 {
		sb.WriteString("; " + strings.Join(c.Fields, ", "))
	}
	sb.WriteString(")")
	return sb.String()
}

// RestorePlan is what a restore changed or, for a dry run, would change.
type RestorePlan struct {
	// Backup describes the backup file.
	Backup BackupInfo `json:"backup"`
	// Diff lists the configuration's changes, from the current
	// configuration to the backup's.
	Diff []config.Difference `json:"diff"`
	// AccountsRestored is true when the users and API keys are replaced by
	// the backup's; when false they are kept, and Users and APIKeys say
	// what replacing them would change.
	AccountsRestored bool `json:"accountsRestored"`
	// Users lists the users the backup adds, removes or changes, by name.
	Users []AccountChange `json:"users"`
	// APIKeys lists the API keys the backup adds, removes or changes, by ID.
	APIKeys []AccountChange `json:"apiKeys"`
}

// diffUsers compares the current users with the backup's.
func diffUsers(cur, next []config.User) []AccountChange {
	out := []AccountChange{}
	old := map[string]config.User{}
	for _, u := range cur {
		old[u.Name] = u
	}
	for _, u := range next {
		o, ok := old[u.Name]
		delete(old, u.Name)
		if !ok {
			out = append(out, AccountChange{Name: u.Name, Role: u.Role, Change: AccountAdded})
			continue
		}
		var fields []string
		if o.Role != u.Role {
			fields = append(fields, "role")
		}
		if o.PasswordHash != u.PasswordHash || !o.PasswordChanged.Equal(u.PasswordChanged) {
			fields = append(fields, "password")
		}
		if !o.Created.Equal(u.Created) {
			fields = append(fields, "created")
		}
		if fields != nil {
			out = append(out, AccountChange{Name: u.Name, Role: u.Role, Change: AccountChanged, Fields: fields})
		}
	}
	for _, u := range cur {
		if _, ok := old[u.Name]; ok {
			out = append(out, AccountChange{Name: u.Name, Role: u.Role, Change: AccountRemoved})
		}
	}
	slices.SortStableFunc(out, func(a, b AccountChange) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// diffKeys compares the current API keys with the backup's. When a key
// was last used does not count as a change.
func diffKeys(cur, next []config.APIKey) []AccountChange {
	out := []AccountChange{}
	old := map[string]config.APIKey{}
	for _, k := range cur {
		old[k.ID] = k
	}
	for _, k := range next {
		o, ok := old[k.ID]
		delete(old, k.ID)
		if !ok {
			out = append(out, AccountChange{Name: k.ID, User: k.User, Change: AccountAdded})
			continue
		}
		var fields []string
		if o.User != k.User {
			fields = append(fields, "user")
		}
		if o.Hash != k.Hash {
			fields = append(fields, "secret")
		}
		if o.Description != k.Description {
			fields = append(fields, "description")
		}
		if !o.Created.Equal(k.Created) {
			fields = append(fields, "created")
		}
		if fields != nil {
			out = append(out, AccountChange{Name: k.ID, User: k.User, Change: AccountChanged, Fields: fields})
		}
	}
	for _, k := range cur {
		if _, ok := old[k.ID]; ok {
			out = append(out, AccountChange{Name: k.ID, User: k.User, Change: AccountRemoved})
		}
	}
	slices.SortStableFunc(out, func(a, b AccountChange) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// describeSource says where a backup comes from, for summaries.
func (b BackupInfo) describeSource() string {
	src := fmt.Sprintf("backup of revision %d made %s", b.Revision, b.Created.UTC().Format(time.RFC3339))
	switch b.Signature {
	case SignatureOwn:
		return src
	case SignatureTrusted:
		return src + " signed by trusted key " + b.SignedBy
	case SignatureUnknownKey:
		return src + " signed by unknown key " + b.SignedBy + ", accepted unverified"
	case SignatureInvalid:
		return src + " with a signature that does not match, accepted unverified"
	}
	return "unsigned " + src + ", accepted unverified"
}

// Summary says in one line (a few hundred characters at most) what the
// restore changes: the backup's origin, the configuration's changes by
// object, and the users and API keys replaced (by name) or kept.
func (p *RestorePlan) Summary() string {
	return p.describe(5, 8)
}

// Detail is Summary naming more objects and accounts, for the audit log.
func (p *RestorePlan) Detail() string {
	return p.describe(10, 20)
}

// diffObjects groups changed paths by the top-level object they belong to
// ("virtualServices[id=3]", "options"): "object" when several of its
// fields change, the path itself when only one does.
func diffObjects(diff []config.Difference) []string {
	var order []string
	count := map[string]int{}
	single := map[string]string{}
	for _, d := range diff {
		obj := d.Path
		if i := strings.IndexAny(obj, ".["); i >= 0 {
			obj = obj[:i]
			if d.Path[i] == '[' {
				if j := strings.IndexByte(d.Path, ']'); j > i {
					obj = d.Path[:j+1]
				}
			}
		}
		if count[obj] == 0 {
			order = append(order, obj)
			single[obj] = d.Path
		}
		count[obj]++
	}
	out := make([]string, len(order))
	for i, obj := range order {
		out[i] = single[obj]
		if count[obj] > 1 {
			out[i] = fmt.Sprintf("%s: %d fields", obj, count[obj])
		}
	}
	return out
}

func (p *RestorePlan) describe(maxObjects, maxNames int) string {
	var sb strings.Builder
	sb.WriteString("restore from " + p.Backup.describeSource() + ": ")
	switch len(p.Diff) {
	case 0:
		sb.WriteString("configuration unchanged")
	case 1:
		sb.WriteString("1 configuration change (")
	default:
		fmt.Fprintf(&sb, "%d configuration changes (", len(p.Diff))
	}
	if len(p.Diff) > 0 {
		objs := diffObjects(p.Diff)
		sb.WriteString(strings.Join(objs[:min(len(objs), maxObjects)], ", "))
		if len(objs) > maxObjects {
			fmt.Fprintf(&sb, ", and %d more objects", len(objs)-maxObjects)
		}
		sb.WriteString(")")
	}
	if !p.AccountsRestored {
		sb.WriteString("; users and API keys kept")
		return sb.String()
	}
	for _, part := range []struct {
		what string
		list []AccountChange
	}{{"users", p.Users}, {"API keys", p.APIKeys}} {
		if len(part.list) == 0 {
			fmt.Fprintf(&sb, "; %s unchanged", part.what)
			continue
		}
		names := make([]string, 0, min(len(part.list), maxNames))
		for _, c := range part.list[:min(len(part.list), maxNames)] {
			names = append(names, c.String())
		}
		fmt.Fprintf(&sb, "; %s replaced: %s", part.what, strings.Join(names, ", "))
		if len(part.list) > maxNames {
			fmt.Fprintf(&sb, ", and %d more", len(part.list)-maxNames)
		}
	}
	return sb.String()
}
