package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
)

// loginCookie carries the login form's token (double submit): a sign-in
// posted from another site cannot know it, so nobody can sign a browser
// in to an account of their choosing (login CSRF).
const loginCookie = "fulcrum_login"

// loginData is the login page's data.
type loginData struct {
	// Form holds the user name typed and the errors.
	Form *form
	// Token is the login form's anti-forgery token.
	Token string
	// Next is where to go after signing in.
	Next string
	// Notice is an informational message (expired session, signed out).
	Notice string
	// Locked is set when the account is locked out: the message to show.
	Locked string
}

func newLoginToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := s.auth.SessionPrincipal(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d := loginData{Form: newForm("user", "password"), Next: safeNext(r.URL.Query().Get("next"))}
	switch {
	case r.URL.Query().Get("expired") != "":
		d.Notice = "Your session has expired. Please sign in again."
	case r.URL.Query().Get("out") != "":
		d.Notice = "You have signed out."
	}
	s.renderLogin(w, r, http.StatusOK, d)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.Token = newLoginToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.Token, Path: "/login", MaxAge: 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.render(w, r, admin.Principal{}, status, "login", view{Title: "Sign in", Data: d})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !sameOriginForm(r) {
		s.auth.Audit(admin.Principal{Method: admin.MethodSession}, r.RemoteAddr, "login", "web UI sign-in refused: cross-site post", false)
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	d := loginData{Form: newForm("user", "password"), Next: safeNext(r.PostFormValue("next"))}
	d.Form.set("user", r.PostFormValue("user"))
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("token"))) != 1 {
		d.Form.addGeneral("The sign-in form had expired. Please sign in again.")
		s.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	user, pw := r.PostFormValue("user"), r.PostFormValue("password")
	if user == "" {
		d.Form.errs["user"] = []string{"Enter your user name."}
	}
	if pw == "" {
		d.Form.errs["password"] = []string{"Enter your password."}
	}
	if d.Form.Invalid() {
		s.renderLogin(w, r, http.StatusBadRequest, d)
		return
	}
	p, cookie, err := s.auth.Login(user, pw, r.RemoteAddr)
	var locked *admin.LockedError
	switch {
	case err == nil:
	case errors.As(err, &locked):
		d.Locked = lockedMessage(locked, s.now())
		w.Header().Set("Retry-After", fmt.Sprint(locked.RetryAfter(s.now())))
		s.renderLogin(w, r, http.StatusTooManyRequests, d)
		return
	case errors.Is(err, admin.ErrBadCredentials):
		d.Form.addGeneral("Wrong user name or password.")
		s.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	default:
		s.log.Error("webui: login failed", "err", err)
		d.Form.addGeneral("Signing in failed because of an internal error; see the server log.")
		s.renderLogin(w, r, http.StatusInternalServerError, d)
		return
	}
	http.SetCookie(w, cookie)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	_ = p
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// lockedMessage tells a locked-out user how long to wait.
func lockedMessage(e *admin.LockedError, now time.Time) string {
	if e.Console {
		return "Too many failed sign-in attempts from many addresses: this account is locked for sign-ins from new addresses " +
			"until an administrator lifts the lock at the appliance's console (fulcrum passwd --unlock)."
	}
	secs := e.RetryAfter(now)
	wait := fmt.Sprintf("%d seconds", secs)
	if secs >= 90 {
		wait = fmt.Sprintf("%d minutes", (secs+59)/60)
	}
	return fmt.Sprintf("Too many failed sign-in attempts: this account is locked for sign-ins from your address for another %s (until %s). "+
		"An administrator can lift the lock at the appliance's console (fulcrum passwd --unlock).", wait, e.Until.UTC().Format("15:04 UTC"))
}

// logout ends the session (a form post with the CSRF token).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.action(admin.PermRead, func(w http.ResponseWriter, r *http.Request, p admin.Principal) {
		s.auth.Logout(p.SessionID)
		http.SetCookie(w, admin.ClearCookie())
		http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
	})(w, r)
}
