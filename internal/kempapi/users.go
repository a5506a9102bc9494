package kempapi

import (
	"sort"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// LoadMaster's user permissions. Fulcrum has three roles; usersetperms
// maps a permission set onto the role that grants exactly it:
//
//	(none)            read-only
//	real              operator (enable and disable real servers)
//	root,users[,...]  admin (everything, including users)
//
// Any other set cannot be granted without granting more or less than was
// asked, and is refused.
var lmPerms = []string{"real", "vs", "rules", "backup", "certs", "cert3", "certbackup", "users", "root", "geo", "addvs"}

// permsOf is the LoadMaster permission list of a role.
func permsOf(role string) string {
	switch role {
	case config.RoleAdmin:
		return "root,users"
	case config.RoleOperator:
		return "real"
	}
	return ""
}

// roleFor maps a permission list onto a role.
func roleFor(perms string) (string, *failure) {
	set := map[string]bool{}
	for _, p := range strings.Split(perms, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		known := false
		for _, k := range lmPerms {
			known = known || k == p
		}
		if !known {
			return "", invalid("perms: Invalid permission %q", short(p))
		}
		set[p] = true
	}
	switch {
	case len(set) == 0:
		return config.RoleReadOnly, nil
	case len(set) == 1 && set["real"]:
		return config.RoleOperator, nil
	case set["root"] && set["users"]:
		return config.RoleAdmin, nil
	}
	return "", invalid("perms: Fulcrum has three roles: administrator (root,users), operator (real) and read-only (no permissions); %q is none of them",
		short(perms))
}

func userNode(u admin.UserInfo) node {
	return node{name: "User", kind: kGroup, item: true, children: []node{
		str("Name", u.Name),
		str("Perms", permsOf(u.Role)),
		str("Role", u.Role),
	}}
}

func (c *call) userlist() result {
	users, err := c.s.auth.Users()
	if err != nil {
		return c.s.failure(err).result()
	}
	out := []node{}
	for _, u := range users {
		out = append(out, userNode(u))
	}
	return withData(out...)
}

func (c *call) usershow() result {
	name := strings.TrimSpace(c.p.str("user"))
	if name == "" {
		return missing("user").result()
	}
	if name != c.who.User && !c.who.Can(admin.PermUsers) {
		return errPermission.result()
	}
	users, err := c.s.auth.Users()
	if err != nil {
		return c.s.failure(err).result()
	}
	for _, u := range users {
		if u.Name == name {
			return withData(userNode(u))
		}
	}
	return invalid("User does not exist").result()
}

// refuseRemoteAuth refuses the RADIUS and no-password options, which
// Fulcrum does not have.
func refuseRemoteAuth(p params) *failure {
	if b, _, f := boolParam(p, "radius", "radius"); f != nil || b {
		if f != nil {
			return f
		}
		return invalid("radius: RADIUS authentication is not available in Fulcrum")
	}
	if b, _, f := boolParam(p, "nopass", "nopass"); f != nil || b {
		if f != nil {
			return f
		}
		return invalid("nopass: users without a password are not available in Fulcrum")
	}
	return nil
}

func (c *call) useraddlocal() result {
	name := strings.TrimSpace(c.p.str("user"))
	if name == "" {
		return missing("user").result()
	}
	if f := refuseRemoteAuth(c.p); f != nil {
		return f.result()
	}
	pw, ok := c.p.get("password")
	if !ok {
		return missing("password").result()
	}
	if err := c.s.auth.AddUser(c.who, admin.RemoteHost(c.r.RemoteAddr), name, config.RoleReadOnly, pw); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}

func (c *call) userdellocal() result {
	name := strings.TrimSpace(c.p.str("user"))
	if name == "" {
		return missing("user").result()
	}
	if err := c.s.auth.DeleteUser(c.who, admin.RemoteHost(c.r.RemoteAddr), name); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}

// userchangelocpass sets a user's password. Changing one's own password
// as a non-administrator needs the current one (currpassword), which a
// LoadMaster does not ask for.
func (c *call) userchangelocpass() result {
	name := strings.TrimSpace(c.p.str("user"))
	if name == "" {
		return missing("user").result()
	}
	if f := refuseRemoteAuth(c.p); f != nil {
		return f.result()
	}
	pw, ok := c.p.get("password")
	if !ok {
		return missing("password").result()
	}
	if err := c.s.auth.SetPassword(c.who, admin.RemoteHost(c.r.RemoteAddr), name, c.p.str("currpassword"), pw); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}

// usersetsyspassword sets the password of the first administrator, bal.
func (c *call) usersetsyspassword() result {
	pw, ok := c.p.get("password")
	if !ok {
		return missing("password").result()
	}
	if err := c.s.auth.SetPassword(c.who, admin.RemoteHost(c.r.RemoteAddr), config.FirstAdmin, c.p.str("currpassword"), pw); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}

func (c *call) usersetperms() result {
	name := strings.TrimSpace(c.p.str("user"))
	if name == "" {
		return missing("user").result()
	}
	role, f := roleFor(c.p.str("perms"))
	if f != nil {
		return f.result()
	}
	if err := c.s.auth.SetRole(c.who, admin.RemoteHost(c.r.RemoteAddr), name, role); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}

// addapikey makes an API key for the caller (or, with user=, for another
// user) and shows its secret, once: Fulcrum keeps only a hash, so unlike a
// LoadMaster it cannot list the secrets of older keys.
func (c *call) addapikey() result {
	user := strings.TrimSpace(c.p.str("user"))
	_, secret, err := c.s.auth.CreateAPIKey(c.who, admin.RemoteHost(c.r.RemoteAddr), user, "made with the LoadMaster-compatible API")
	if err != nil {
		return c.s.failure(err).result()
	}
	return withData(str("ApiKey", secret))
}

// listapikeys lists API keys by ID (their secrets are not kept).
func (c *call) listapikeys() result {
	user := strings.TrimSpace(c.p.str("user"))
	if user == "" {
		user = c.who.User
	}
	if user != c.who.User && !c.who.Can(admin.PermUsers) {
		return errPermission.result()
	}
	keys, err := c.s.auth.APIKeys(user)
	if err != nil {
		return c.s.failure(err).result()
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Created.Before(keys[j].Created) })
	out := []node{}
	for _, k := range keys {
		last := ""
		if !k.LastUsed.IsZero() {
			last = k.LastUsed.UTC().Format(time.RFC3339)
		}
		out = append(out, node{name: "ApiKey", kind: kGroup, item: true, children: []node{
			str("Id", k.ID),
			str("User", k.User),
			str("Created", k.Created.UTC().Format(time.RFC3339)),
			str("LastUsed", last),
		}})
	}
	return withData(out...)
}

// delapikey revokes a key named by its ID or by its whole secret.
func (c *call) delapikey() result {
	key := strings.TrimSpace(c.p.str("key"))
	if key == "" {
		return missing("key").result()
	}
	id := key
	if strings.HasPrefix(key, admin.APIKeyPrefix) {
		rest := key[len(admin.APIKeyPrefix):]
		id, _, _ = strings.Cut(rest, "_")
	}
	if err := c.s.auth.RevokeAPIKey(c.who, admin.RemoteHost(c.r.RemoteAddr), id); err != nil {
		return c.s.failure(err).result()
	}
	return completed()
}
