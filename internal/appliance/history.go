package appliance

import (
	"log/slog"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// startHistory starts the statistics history's sampler on the data
// plane's status; interval 0 means history.DefaultInterval. Close stops
// it.
func startHistory(src status.Source, interval time.Duration, log *slog.Logger) *history.History {
	h := history.New(history.Options{Source: src, Interval: interval, Logger: log})
	h.Start()
	return h
}

// stopHistory stops the sampler, if it was started.
func (a *Appliance) stopHistory() {
	if a.History != nil {
		a.History.Close()
	}
}
