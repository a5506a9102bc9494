package kempapi

import (
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// The settings of the agent that real servers of services scheduled by
// adaptive run (options.adaptive), under LoadMaster's names: showadaptive
// answers them, modadaptive changes any of them and answers the result.
// LoadMaster's element names are those of the parameters of its
// modadaptive command (REST22; Kemp's PowerShell module names them the
// same); no recorded answer of showadaptive exists, so the order is
// LoadMaster's parameter order.

// adaptiveNodes are the agent settings as showadaptive answers them.
func adaptiveNodes(a *config.Adaptive) []node {
	return []node{
		str("AdaptiveURL", a.URL),
		inum("AdaptivePort", a.Port),
		inum("AdaptiveInterval", a.Interval),
		inum("MinPercent", a.MinPercent),
	}
}

func (c *call) showadaptive() result {
	o := c.s.ctl.Current().Config.Options
	return withData(adaptiveNodes(&o.Adaptive)...)
}

// modadaptive sets the parameters given; values are validated by the
// configuration model (options.adaptive), errors name the parameter.
func (c *call) modadaptive() result {
	snap, f := c.apply("", func(cfg *config.Config) error {
		a := &cfg.Options.Adaptive
		if u, ok := c.p.get("adaptiveurl"); ok {
			a.URL = u
		}
		return c.setInts(intField{"AdaptivePort", &a.Port}, intField{"AdaptiveInterval", &a.Interval}, intField{"MinPercent", &a.MinPercent})
	})
	if f != nil {
		return f.result()
	}
	return withData(adaptiveNodes(&snap.Config.Options.Adaptive)...)
}
