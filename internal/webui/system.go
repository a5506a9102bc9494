package webui

import (
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// systemFields are the fields of System Configuration, as paths relative
// to the options.
var systemFields = []string{"snat", "subnetOriginating", "dropOnFail", "dropAtDrainEnd", "drainTime", "connTimeout",
	"alwaysPersist", "slowStart", "health.interval", "health.timeout", "health.retryCount", "health.riseCount",
	"throughputLimit", "enableApi", "adminLockout.attempts", "adminLockout.coolDown", "adminLockout.sessionIdle",
	"adminLockout.sessionMax", "adminLockout.minPassword"}

func fillOptions(f *form, o config.Options) {
	f.set("snat", o.SNAT)
	f.set("subnetOriginating", o.SubnetOriginating)
	f.set("dropOnFail", o.DropOnFail)
	f.set("dropAtDrainEnd", o.DropAtDrainEnd)
	f.set("drainTime", o.DrainTime)
	f.set("connTimeout", o.ConnTimeout)
	f.set("alwaysPersist", o.AlwaysPersist)
	f.set("slowStart", o.SlowStart)
	f.set("health.interval", o.Health.Interval)
	f.set("health.timeout", o.Health.Timeout)
	f.set("health.retryCount", o.Health.RetryCount)
	f.set("health.riseCount", o.Health.RiseCount)
	f.set("throughputLimit", o.ThroughputLimit)
	f.set("enableApi", o.EnableAPI)
	f.set("adminLockout.attempts", o.AdminLockout.Attempts)
	f.set("adminLockout.coolDown", o.AdminLockout.CoolDown)
	f.set("adminLockout.sessionIdle", o.AdminLockout.SessionIdle)
	f.set("adminLockout.sessionMax", o.AdminLockout.SessionMax)
	f.set("adminLockout.minPassword", o.AdminLockout.MinPassword)
}

func applyOptions(p *parser, o *config.Options) {
	o.SNAT = p.bool("snat")
	o.SubnetOriginating = p.bool("subnetOriginating")
	o.DropOnFail = p.bool("dropOnFail")
	o.DropAtDrainEnd = p.bool("dropAtDrainEnd")
	o.DrainTime = p.int("drainTime")
	o.ConnTimeout = p.int("connTimeout")
	o.AlwaysPersist = p.str("alwaysPersist")
	o.SlowStart = p.int("slowStart")
	o.Health.Interval = p.int("health.interval")
	o.Health.Timeout = p.int("health.timeout")
	o.Health.RetryCount = p.int("health.retryCount")
	o.Health.RiseCount = p.int("health.riseCount")
	o.ThroughputLimit = p.int("throughputLimit")
	o.EnableAPI = p.bool("enableApi")
	o.AdminLockout.Attempts = p.int("adminLockout.attempts")
	o.AdminLockout.CoolDown = p.int("adminLockout.coolDown")
	o.AdminLockout.SessionIdle = p.int("adminLockout.sessionIdle")
	o.AdminLockout.SessionMax = p.int("adminLockout.sessionMax")
	o.AdminLockout.MinPassword = p.int("adminLockout.minPassword")
}

// systemData is the System Configuration page's data.
type systemData struct {
	Form *form
}

func (s *Server) systemPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	f := newForm(systemFields...)
	fillOptions(f, snap.Config.Options)
	s.render(w, r, p, http.StatusOK, "system", view{Title: "System configuration", Nav: "system", Revision: snap.Revision, Data: systemData{Form: f}})
}

func (s *Server) systemUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := newForm(systemFields...)
	f.keep(r.PostForm)
	ps := &parser{v: r.PostForm, prefix: "options"}
	applyOptions(ps, &config.Options{})
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The system configuration", parsed: ps.errs,
		object: func(c *config.Config) any { return c.Options },
		mutate: func(c *config.Config) error {
			applyOptions(&parser{v: r.PostForm, prefix: "options"}, &c.Options)
			return nil
		}})
	if err != nil {
		status := explain(f, err, "options")
		if status == 0 {
			s.fail(w, r, p, err)
			return
		}
		s.render(w, r, p, status, "system", view{Title: "System configuration", Nav: "system", Data: systemData{Form: f}})
		return
	}
	s.redirect(w, r, p, "/system", committedMsg(res, "System configuration"))
}
