package health

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Timers are the effective timing of a check, in configured seconds
// (multiplied by Options.Unit).
type Timers struct {
	// Interval is the time between the starts of two checks.
	Interval int `json:"interval"`
	// Timeout bounds one check.
	Timeout int `json:"timeout"`
	// RetryCount is the number of consecutive failures that take an Up
	// real server Down.
	RetryCount int `json:"retryCount"`
	// RiseCount is the number of consecutive successes that bring a Down
	// real server back Up.
	RiseCount int `json:"riseCount"`
}

// effectiveTimers returns the service's timers with the global ones (and
// LoadMaster's defaults) filling the zero values.
func effectiveTimers(o *config.Options, hc *config.HealthCheck) Timers {
	d := config.DefaultHealthTimers()
	pick := func(vals ...int) int {
		for _, v := range vals {
			if v > 0 {
				return v
			}
		}
		return 0
	}
	return Timers{
		Interval:   pick(hc.Interval, o.Health.Interval, d.Interval),
		Timeout:    pick(hc.Timeout, o.Health.Timeout, d.Timeout),
		RetryCount: pick(hc.RetryCount, o.Health.RetryCount, d.RetryCount),
		RiseCount:  pick(o.Health.RiseCount, d.RiseCount),
	}
}

// Spec is everything that defines the check of one real server: the
// parameters, the target and the timers. Two Specs with the same
// fingerprint are the same check, so a reload that keeps it keeps the
// check's state.
type Spec struct {
	Params Params
	Target Target
	Timers Timers
}

// specFor returns the effective Spec of rs in vs.
func specFor(o *config.Options, vs *config.VirtualService, rs *config.RealServer) Spec {
	hc := &vs.HealthCheck
	t := Target{Address: rs.Address, Port: rs.Port}
	if rs.CheckAddress != "" {
		t.Address = rs.CheckAddress
	}
	if hc.Port != 0 {
		t.Port = hc.Port
	}
	// Only the fields a type uses go into its Params, so that changing an
	// unused field does not restart the check.
	p := Params{Type: hc.Type}
	switch hc.Type {
	case TypeHTTP, TypeHTTPS:
		p.URL, p.Method, p.HTTP11, p.Host = hc.URL, hc.Method, hc.HTTP11, hc.Host
		p.Headers, p.PostData, p.Codes, p.Pattern = hc.Headers, hc.PostData, hc.Codes, hc.Pattern
		p.VerifyTLS = hc.Type == TypeHTTPS && hc.VerifyTLS
	case TypeDNS:
		p.Host = hc.Host
	case TypeBData:
		p.Send, p.Pattern = hc.Send, hc.Pattern
	case TypeSMTP, TypeNNTP, TypeFTP, TypePOP3, TypeIMAP:
		p.StartTLS = hc.StartTLS
		p.VerifyTLS = hc.StartTLS && hc.VerifyTLS
	}
	if p.Type == "" {
		p.Type = TypeTCP
	}
	return Spec{Params: p, Target: t, Timers: effectiveTimers(o, hc)}
}

// fingerprint returns a string that is equal for equal checks: the
// canonical JSON of the Spec without RootCAs (maps sorted, codes sorted).
func (s Spec) fingerprint() string {
	codes := slices.Clone(s.Params.Codes)
	slices.Sort(codes)
	v := struct {
		Type, URL, Method, Host, PostData, Pattern, Send string
		HTTP11, VerifyTLS, StartTLS                      bool
		Headers                                          map[string]string
		Codes                                            []int
		Target                                           Target
		Timers                                           Timers
	}{s.Params.Type, s.Params.URL, s.Params.Method, s.Params.Host, s.Params.PostData, s.Params.Pattern, s.Params.Send,
		s.Params.HTTP11, s.Params.VerifyTLS, s.Params.StartTLS, maps.Clone(s.Params.Headers), codes, s.Target, s.Timers}
	b, _ := json.Marshal(v) // cannot fail: strings, bools, ints and a map of strings
	return string(b)
}

// paramsKey is the fingerprint of the Params alone, to share one Checker
// between the real servers of a service.
func (s Spec) paramsKey() string {
	s.Target, s.Timers = Target{}, Timers{}
	return s.fingerprint()
}

// durations converts the timers with unit.
func (t Timers) durations(unit time.Duration) (interval, timeout time.Duration) {
	return time.Duration(t.Interval) * unit, time.Duration(t.Timeout) * unit
}
