package webui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// usersData is the Users and API keys page's data.
type usersData struct {
	Users    []admin.UserInfo
	Keys     []config.APIKey
	Roles    []string
	AddForm  *form
	PassForm *form
	KeyForm  *form
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.renderUsers(w, r, p, http.StatusOK, nil)
}

// renderUsers renders the page; failed replaces one of its forms ("add",
// "password" or "key").
func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, failed map[string]*form) {
	d := usersData{Roles: config.Roles,
		AddForm:  newForm("name", "role", "password").withID("add"),
		PassForm: newForm("oldPassword", "newPassword", "confirm").withID("pw"),
		KeyForm:  newForm("description", "user").withID("key"),
	}
	d.AddForm.set("role", config.RoleReadOnly)
	if f, ok := failed["add"]; ok {
		d.AddForm = f.withID("add")
	}
	if f, ok := failed["password"]; ok {
		d.PassForm = f.withID("pw")
	}
	if f, ok := failed["key"]; ok {
		d.KeyForm = f.withID("key")
	}
	all, err := s.auth.Users()
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	for _, u := range all {
		if p.Can(admin.PermUsers) || u.Name == p.User {
			d.Users = append(d.Users, u)
		}
	}
	keyUser := p.User
	if p.Can(admin.PermUsers) {
		keyUser = ""
	}
	if d.Keys, err = s.auth.APIKeys(keyUser); err != nil {
		s.fail(w, r, p, err)
		return
	}
	v := view{Title: "Users and API keys", Nav: "users", Data: &d}
	// A new key's secret travels as a flash of its own kind.
	s.render(w, r, p, status, "users", v)
}

// adminErr places an admin-plane error on f: field errors next to their
// fields (renamed by rename), other known errors as general messages. It
// returns the status, or 0 for an unexpected error.
func adminErr(f *form, err error, rename map[string]string) int {
	var locked *admin.LockedError
	if es, ok := config.IsErrors(err); ok {
		out := make(config.Errors, len(es))
		for i, e := range es {
			out[i] = e
			if n, ok := rename[e.Path]; ok {
				out[i].Path = n
			}
		}
		f.addErrors(out, "")
		return http.StatusUnprocessableEntity
	}
	switch {
	case errors.As(err, &locked):
		f.addGeneral(err.Error())
		return http.StatusTooManyRequests
	case errors.Is(err, admin.ErrWrongPassword):
		f.errs["oldPassword"] = append(f.errs["oldPassword"], "The current password is wrong.")
		return http.StatusForbidden
	case errors.Is(err, admin.ErrUserExists), errors.Is(err, admin.ErrLastAdmin), errors.Is(err, admin.ErrNoSuchUser),
		errors.Is(err, admin.ErrNoSuchKey), errors.Is(err, admin.ErrForbidden):
		f.addGeneral(upperFirst(err.Error()) + ".")
		return http.StatusConflict
	}
	return 0
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (s *Server) userCreate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("name", "role", "password")
	f.keep(r.PostForm)
	f.set("password", "")
	name := strings.TrimSpace(r.PostFormValue("name"))
	err := s.auth.AddUser(p, admin.RemoteHost(r.RemoteAddr), name, r.PostFormValue("role"), r.PostFormValue("password"))
	if err != nil {
		if st := adminErr(f, err, nil); st != 0 {
			s.renderUsers(w, r, p, st, map[string]*form{"add": f})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/users", "User "+name+" added.")
}

func (s *Server) userRole(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	if err := s.auth.SetRole(p, admin.RemoteHost(r.RemoteAddr), name, r.PostFormValue("role")); err != nil {
		f := newForm()
		if st := adminErr(f, err, nil); st != 0 {
			s.setFlash(p, "error", "The role of "+name+" was not changed: "+strings.Join(append(f.General(), flatErrs(f)...), " "))
			http.Redirect(w, r, "/users", http.StatusSeeOther)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/users", "Role of "+name+" set to "+r.PostFormValue("role")+".")
}

// flatErrs lists a form's field errors as "field: message".
func flatErrs(f *form) []string {
	var out []string
	for k, ms := range f.errs {
		for _, m := range ms {
			out = append(out, k+": "+m)
		}
	}
	return out
}

// userPassword sets a password: one's own (with the old one), or another
// user's (users permission).
func (s *Server) userPassword(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	f := newForm("oldPassword", "newPassword", "confirm")
	newPw := r.PostFormValue("newPassword")
	if newPw != r.PostFormValue("confirm") {
		f.errs["confirm"] = []string{"The two new passwords differ."}
		s.renderUsers(w, r, p, http.StatusUnprocessableEntity, map[string]*form{"password": f})
		return
	}
	err := s.auth.SetPassword(p, admin.RemoteHost(r.RemoteAddr), name, r.PostFormValue("oldPassword"), newPw)
	if err != nil {
		if st := adminErr(f, err, map[string]string{"password": "newPassword"}); st != 0 {
			if name != p.User {
				s.setFlash(p, "error", "The password of "+name+" was not changed: "+strings.Join(append(f.General(), flatErrs(f)...), " "))
				http.Redirect(w, r, "/users", http.StatusSeeOther)
				return
			}
			s.renderUsers(w, r, p, st, map[string]*form{"password": f})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	if name == p.User {
		// Changing one's password ends every session, this one included.
		http.SetCookie(w, admin.ClearCookie())
		http.Redirect(w, r, "/login?expired=1", http.StatusSeeOther)
		return
	}
	s.redirect(w, r, p, "/users", "Password of "+name+" changed; their sessions have ended.")
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	name := r.PathValue("name")
	if !s.confirmed(w, r, p, "Delete user "+name+"? Their sessions end and their API keys are revoked.", "Delete", "/users") {
		return
	}
	if err := s.auth.DeleteUser(p, admin.RemoteHost(r.RemoteAddr), name); err != nil {
		f := newForm()
		if st := adminErr(f, err, nil); st != 0 {
			s.setFlash(p, "error", "User "+name+" was not deleted: "+strings.Join(f.General(), " "))
			http.Redirect(w, r, "/users", http.StatusSeeOther)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/users", "User "+name+" deleted.")
}

func (s *Server) keyCreate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm("description", "user")
	f.keep(r.PostForm)
	key, secret, err := s.auth.CreateAPIKey(p, admin.RemoteHost(r.RemoteAddr), strings.TrimSpace(r.PostFormValue("user")), strings.TrimSpace(r.PostFormValue("description")))
	if err != nil {
		if st := adminErr(f, err, nil); st != 0 {
			s.renderUsers(w, r, p, st, map[string]*form{"key": f})
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.flashMu.Lock()
	s.flashes[p.SessionID] = flash{Kind: "secret", Text: "API key " + key.ID + " created for " + key.User + ". Copy its secret now; it is not shown again.", Secret: secret}
	s.flashMu.Unlock()
	http.Redirect(w, r, "/users#keys", http.StatusSeeOther)
}

func (s *Server) keyRevoke(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	id := r.PathValue("id")
	if !s.confirmed(w, r, p, "Revoke API key "+id+"? Programs using it lose access at once.", "Revoke", "/users#keys") {
		return
	}
	if err := s.auth.RevokeAPIKey(p, admin.RemoteHost(r.RemoteAddr), id); err != nil {
		f := newForm()
		if st := adminErr(f, err, nil); st != 0 {
			s.setFlash(p, "error", "API key "+id+" was not revoked: "+strings.Join(f.General(), " "))
			http.Redirect(w, r, "/users#keys", http.StatusSeeOther)
			return
		}
		s.fail(w, r, p, err)
		return
	}
	s.redirect(w, r, p, "/users#keys", "API key "+id+" revoked.")
}
