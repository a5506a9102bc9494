package config

import "github.com/fulcrum-lb/fulcrum/internal/persist"

// Default values that zero fields take in SetDefaults.
const (
	DefaultConnTimeout    = 660
	DefaultWeight         = 1000
	DefaultPersistTimeout = 1800
	DefaultActiveCookie   = "FULCRUM"
)

// DefaultHealthTimers returns LoadMaster's global health-check timers.
func DefaultHealthTimers() HealthTimers {
	return HealthTimers{Interval: 9, Timeout: 4, RetryCount: 2, RiseCount: 1}
}

// DefaultLockout returns the default admin-plane login policy.
func DefaultLockout() Lockout {
	return Lockout{Attempts: 3, CoolDown: 600, SessionIdle: 900, SessionMax: 43200, MinPassword: 12}
}

// DefaultAdaptive returns the default adaptive agent settings.
func DefaultAdaptive() Adaptive { return Adaptive{URL: "/load", Port: 80, Interval: 7, MinPercent: 5} }

// DefaultOptions returns the global options of a new installation.
func DefaultOptions() Options {
	return Options{
		ConnTimeout:   DefaultConnTimeout,
		AlwaysPersist: "no",
		Health:        DefaultHealthTimers(),
		AdminLockout:  DefaultLockout(),
		Adaptive:      DefaultAdaptive(),
		Logging:       Logging{AccessLog: AccessLog{Format: "json"}},
		Alerts:        Alerts{CertExpiryDays: DefaultCertExpiryDays, Email: Email{Security: "starttls", Severity: "warning"}},
	}
}

// Default returns the configuration of a new installation: default options
// and no services.
func Default() *Config {
	c := &Config{SchemaVersion: SchemaVersion, Options: DefaultOptions(), VirtualServices: []VirtualService{}}
	return c
}

// SetDefaults fills every zero-valued field that has a default. It is
// idempotent, so a document exported after SetDefaults decodes to an equal
// Config. It does not assign IDs (see AssignIDs).
func (c *Config) SetDefaults() {
	if c.SchemaVersion == 0 {
		c.SchemaVersion = SchemaVersion
	}
	c.Options.setDefaults()
	if c.VirtualServices == nil {
		c.VirtualServices = []VirtualService{}
	}
	for i := range c.VirtualServices {
		c.VirtualServices[i].setDefaults(false)
	}
	for i := range c.ContentRules {
		c.ContentRules[i].setDefaults()
	}
}

func (o *Options) setDefaults() {
	if o.ConnTimeout == 0 {
		o.ConnTimeout = DefaultConnTimeout
	}
	if o.AlwaysPersist == "" {
		o.AlwaysPersist = "no"
	}
	d := DefaultHealthTimers()
	setInt(&o.Health.Interval, d.Interval)
	setInt(&o.Health.Timeout, d.Timeout)
	setInt(&o.Health.RetryCount, d.RetryCount)
	setInt(&o.Health.RiseCount, d.RiseCount)
	l := DefaultLockout()
	setInt(&o.AdminLockout.Attempts, l.Attempts)
	setInt(&o.AdminLockout.CoolDown, l.CoolDown)
	setInt(&o.AdminLockout.SessionIdle, l.SessionIdle)
	setInt(&o.AdminLockout.SessionMax, l.SessionMax)
	setInt(&o.AdminLockout.MinPassword, l.MinPassword)
	a := DefaultAdaptive()
	if o.Adaptive.URL == "" {
		o.Adaptive.URL = a.URL
	}
	setInt(&o.Adaptive.Port, a.Port)
	setInt(&o.Adaptive.Interval, a.Interval)
	setInt(&o.Adaptive.MinPercent, a.MinPercent)
	o.Logging.setDefaults()
	o.Alerts.setDefaults()
}

func (v *VirtualService) setDefaults(sub bool) {
	if v.Protocol == "" {
		v.Protocol = "tcp"
	}
	if v.Type == "" {
		v.Type = "gen"
	}
	if v.Enabled == nil {
		v.Enabled = Bool(true)
	}
	if v.Schedule == "" {
		v.Schedule = "rr"
	}
	if v.Persistence.Mode == "" {
		v.Persistence.Mode = persist.ModeNone
	}
	if v.Persistence.Mode != persist.ModeNone && v.Persistence.Timeout == 0 {
		v.Persistence.Timeout = DefaultPersistTimeout
	}
	if (v.Persistence.Mode == persist.ModeActiveCookie || v.Persistence.Mode == persist.ModeActiveCookieSrc) && v.Persistence.Cookie == "" {
		v.Persistence.Cookie = DefaultActiveCookie
	}
	udp := v.Protocol == "udp"
	if v.Transparent == nil {
		v.Transparent = Bool(udp)
	}
	if v.SubnetOriginating == nil {
		v.SubnetOriginating = Bool(!udp)
	}
	if v.AddVia == "" {
		v.AddVia = "xff"
	}
	if v.TLS.Profile == "" {
		v.TLS.Profile = "intermediate"
	}
	if v.HealthCheck.Type == "" {
		// As on a LoadMaster: a TCP connect for TCP services, ICMP for UDP
		// ones (a TCP connect to a UDP server always fails).
		v.HealthCheck.Type = "tcp"
		if v.Protocol == "udp" {
			v.HealthCheck.Type = "icmp"
		}
	}
	switch v.HealthCheck.Type {
	case "http", "https":
		if v.HealthCheck.URL == "" {
			v.HealthCheck.URL = "/"
		}
		if v.HealthCheck.Method == "" {
			v.HealthCheck.Method = "HEAD"
		}
	}
	for i := range v.RealServers {
		rs := &v.RealServers[i]
		if rs.Weight == 0 {
			rs.Weight = DefaultWeight
		}
		if rs.Enabled == nil {
			rs.Enabled = Bool(true)
		}
	}
	for i := range v.SubVSs {
		v.SubVSs[i].setDefaults(true)
	}
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}
