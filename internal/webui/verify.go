package webui

import (
	"crypto/x509"
	"net/http"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

// verifyFields are the fields of the Verify deployment form.
var verifyFields = []string{"vs", "caPem"}

// verifyTimeout bounds each smoke check of a run.
const verifyTimeout = 10 * time.Second

// verifyData is the Verify deployment page's data.
type verifyData struct {
	// Form is the run form (service and extra trusted CAs).
	Form *form
	// Services lists the services that have smoke checks, for the selector.
	Services []option
	// Checks counts the smoke checks of every service.
	Checks int
	// Ran says the page shows the results of a run.
	Ran bool
	// Results are the run's results; Passed and Failed count them.
	Results        []verify.Result
	Passed, Failed int
	// At is when the run ended.
	At time.Time
}

// verifyData returns the page's data for the current configuration.
func (s *Server) verifyData(cfg *config.Config, f *form) verifyData {
	d := verifyData{Form: f, Services: []option{{Value: "0", Label: "All services"}}}
	cfg.Walk(func(v, parent *config.VirtualService) {
		if parent != nil || len(v.Checks) == 0 {
			return
		}
		d.Checks += len(v.Checks)
		d.Services = append(d.Services, option{Value: strconv.Itoa(v.ID),
			Label: displayName(v) + " (" + plural(len(v.Checks), "check") + ")"})
	})
	return d
}

// verifyPage shows the Verify deployment form.
func (s *Server) verifyPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	f := newForm(verifyFields...)
	f.set("vs", r.URL.Query().Get("vs"))
	s.render(w, r, p, http.StatusOK, "verify", view{Title: "Verify deployment", Nav: "verify", Revision: snap.Revision,
		Data: s.verifyData(snap.Config, f)})
}

// verifyRun sends the smoke checks through the services, as clients
// would, and shows the results. It changes nothing.
func (s *Server) verifyRun(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	f := newForm(verifyFields...)
	f.keep(r.PostForm)
	d := s.verifyData(snap.Config, f)
	pr := &parser{v: r.PostForm}
	o := s.verifyOpt
	o.Timeout = verifyTimeout
	o.VS = pr.int("vs")
	if v := snap.Config.VirtualServiceByID(o.VS); o.VS < 0 || (o.VS != 0 && (v == nil || len(v.Checks) == 0)) {
		pr.errs = append(pr.errs, config.FieldError{Path: "vs", Message: "no service with ID " + strconv.Itoa(o.VS) + " has smoke checks"})
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if pem := pr.str("caPem"); pem != "" && !roots.AppendCertsFromPEM([]byte(pem)) {
		pr.errs = append(pr.errs, config.FieldError{Path: "caPem", Message: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"})
	}
	o.Roots = roots
	f.addErrors(pr.errs, "")
	if f.Invalid() {
		s.render(w, r, p, http.StatusUnprocessableEntity, "verify", view{Title: "Verify deployment", Nav: "verify",
			Revision: snap.Revision, Data: d})
		return
	}
	d.Results = verify.Run(r.Context(), snap.Config, o)
	d.Ran, d.At = true, s.now()
	for _, x := range d.Results {
		if x.Pass {
			d.Passed++
		} else {
			d.Failed++
		}
	}
	s.render(w, r, p, http.StatusOK, "verify", view{Title: "Verify deployment", Nav: "verify", Revision: snap.Revision, Data: d})
}

// plural returns "1 check", "2 checks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
