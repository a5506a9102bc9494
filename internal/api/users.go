package api

import (
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// loginRequest is the body of POST /login.
type loginRequest struct {
	// User is the login name.
	User string `json:"user"`
	// Password is the user's password.
	Password string `json:"password"`
}

// sessionInfo describes the caller's session.
type sessionInfo struct {
	// User is the login name.
	User string `json:"user"`
	// Role is the user's role.
	Role string `json:"role"`
	// Method is how the caller authenticated.
	Method string `json:"method"`
	// CSRFToken must be sent as X-CSRF-Token with every state-changing
	// request made with the session cookie.
	CSRFToken string `json:"csrfToken,omitempty"`
}

// login starts a browser session. It takes JSON only, so a cross-site form
// cannot log a browser in.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	p, cookie, err := s.auth.Login(req.User, req.Password, r.RemoteAddr)
	if err != nil {
		s.fail(w, err)
		return
	}
	http.SetCookie(w, cookie)
	writeJSON(w, http.StatusOK, sessionInfo{User: p.User, Role: p.Role, Method: p.Method, CSRFToken: p.CSRFToken})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.SessionID != "" {
		s.auth.Logout(p.SessionID)
		s.auth.Audit(p, r.RemoteAddr, "logout", "session ended", true)
	}
	http.SetCookie(w, admin.ClearCookie())
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	writeJSON(w, http.StatusOK, sessionInfo{User: p.User, Role: p.Role, Method: p.Method, CSRFToken: p.CSRFToken})
}

// userList is the response of GET /users.
type userList struct {
	// Users are the accounts (without password hashes).
	Users []admin.UserInfo `json:"users"`
}

// listUsers lists every user for admins, and only the caller otherwise.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	all, err := s.auth.Users()
	if err != nil {
		s.fail(w, err)
		return
	}
	p := principal(r)
	out := []admin.UserInfo{}
	for _, u := range all {
		if p.Can(admin.PermUsers) || u.Name == p.User {
			out = append(out, u)
		}
	}
	writeJSON(w, http.StatusOK, userList{Users: out})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := principal(r)
	if name != p.User && !p.Can(admin.PermUsers) {
		s.fail(w, admin.ErrForbidden)
		return
	}
	s.writeUser(w, http.StatusOK, name)
}

// writeUser answers with the named user's description.
func (s *Server) writeUser(w http.ResponseWriter, status int, name string) {
	all, err := s.auth.Users()
	if err != nil {
		s.fail(w, err)
		return
	}
	for _, u := range all {
		if u.Name == name {
			writeJSON(w, status, u)
			return
		}
	}
	s.fail(w, admin.ErrNoSuchUser)
}

// newUser is the body of POST /users.
type newUser struct {
	// Name is the login name. Required.
	Name string `json:"name"`
	// Role is admin, operator or read-only. Default: read-only.
	Role string `json:"role,omitempty"`
	// Password is the initial password. Required.
	Password string `json:"password"`
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	var req newUser
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if err := s.auth.AddUser(principal(r), admin.RemoteHost(r.RemoteAddr), req.Name, req.Role, req.Password); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+req.Name)
	s.writeUser(w, http.StatusCreated, req.Name)
}

// userPatch is the body of PATCH /users/{name}.
type userPatch struct {
	// Role is the new role.
	Role string `json:"role"`
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	var req userPatch
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	name := r.PathValue("name")
	if err := s.auth.SetRole(principal(r), admin.RemoteHost(r.RemoteAddr), name, req.Role); err != nil {
		s.fail(w, err)
		return
	}
	s.getUser(w, r)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.DeleteUser(principal(r), admin.RemoteHost(r.RemoteAddr), r.PathValue("name")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// unlockResult is the answer of POST /users/{name}/unlock.
type unlockResult struct {
	// User is the account.
	User string `json:"user"`
	// WasLocked is true when the account was slowed or locked for new
	// source addresses (its per-address lockouts are lifted either way).
	WasLocked bool `json:"wasLocked"`
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	was, err := s.auth.UnlockAccount(principal(r), admin.RemoteHost(r.RemoteAddr), name)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, unlockResult{User: name, WasLocked: was})
}

// passwordChange is the body of PUT /users/{name}/password.
type passwordChange struct {
	// OldPassword is the current password; required when users change
	// their own password without the users permission.
	OldPassword string `json:"oldPassword,omitempty"`
	// NewPassword is the new password. Required.
	NewPassword string `json:"newPassword"`
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var req passwordChange
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	p := principal(r)
	if p.Method == admin.MethodConsole {
		// The console is the recovery path: it also lifts the user's
		// lockouts, as a LoadMaster console password reset does.
		if req.NewPassword == "" {
			s.fail(w, config.Errors{{Path: "newPassword", Message: "required"}})
			return
		}
		if _, err := s.auth.ResetPassword(r.PathValue("name"), req.NewPassword); err != nil {
			s.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.auth.SetPassword(p, admin.RemoteHost(r.RemoteAddr), r.PathValue("name"), req.OldPassword, req.NewPassword); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// keyList is the response of GET /api-keys.
type keyList struct {
	// Keys are the API keys, without their secrets or hashes.
	Keys []config.APIKey `json:"keys"`
}

// listKeys lists the caller's keys; admins see all keys, or one user's
// with ?user=.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	user := r.URL.Query().Get("user")
	if !p.Can(admin.PermUsers) {
		if user != "" && user != p.User {
			s.fail(w, admin.ErrForbidden)
			return
		}
		user = p.User
	}
	keys, err := s.auth.APIKeys(user)
	if err != nil {
		s.fail(w, err)
		return
	}
	if keys == nil {
		keys = []config.APIKey{}
	}
	writeJSON(w, http.StatusOK, keyList{Keys: keys})
}

// newKey is the body of POST /api-keys.
type newKey struct {
	// User the key acts as; default the caller. Admins may name others.
	User string `json:"user,omitempty"`
	// Description says what the key is for.
	Description string `json:"description,omitempty"`
}

// createdKey is the response of POST /api-keys.
type createdKey struct {
	// Key describes the new key.
	Key config.APIKey `json:"key"`
	// Secret is the key itself, shown only this once; send it as
	// "Authorization: Bearer <secret>".
	Secret string `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req newKey
	if err := decodeBody(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	key, secret, err := s.auth.CreateAPIKey(principal(r), admin.RemoteHost(r.RemoteAddr), req.User, req.Description)
	if err != nil {
		s.fail(w, err)
		return
	}
	key.Hash = ""
	w.Header().Set("Location", "/api/v1/api-keys/"+key.ID)
	writeJSON(w, http.StatusCreated, createdKey{Key: key, Secret: secret})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.RevokeAPIKey(principal(r), admin.RemoteHost(r.RemoteAddr), r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// auditList is the response of GET /audit.
type auditList struct {
	// Entries are the newest entries first.
	Entries []store.AuditEntry `json:"entries"`
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	before, limit, err := page(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	list, err := s.hist.Audit(before, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, auditList{Entries: list})
}
