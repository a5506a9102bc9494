package webui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// The Logs page: the appliance's event log (events.Bus) newest first,
// filtered by severity, kind and text, paged by seq.

// logsPageSize is the number of events a page of the Logs page shows.
const logsPageSize = 100

// logsData is the Logs page's data.
type logsData struct {
	// Form holds the filter: severity, kind, q.
	Form *form
	// Events are the page's events, newest first.
	Events []events.Event
	// Older is the link to the next, older page; "" when there is none.
	Older string
	// Paged is true when the page does not start at the newest event.
	Paged bool
	// Newest is the link to the first page with the same filter.
	Newest string
	// NoBus is true when the appliance has no event log.
	NoBus bool
}

// severityOptions are the choices of a severity filter: everything, or at
// least this severe.
func severityOptions() []option {
	return append([]option{{Value: "", Label: "All severities"}}, choices("severity")...)
}

// kindOptions are the choices of a kind filter.
func kindOptions() []option {
	out := []option{{Value: "", Label: "All kinds"}}
	for _, g := range events.Groups {
		out = append(out, option{Value: g.Prefix, Label: g.Label})
	}
	return out
}

// severityClass maps a severity to the CSS class of its badge.
func severityClass(s events.Severity) string {
	switch {
	case s <= events.Err:
		return "st-down"
	case s == events.Warning:
		return "st-warn"
	case s == events.Notice:
		return "st-info"
	}
	return "st-off"
}

func (s *Server) logsPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q := r.URL.Query()
	f := newForm("severity", "kind", "q")
	for _, n := range []string{"severity", "kind", "q"} {
		f.set(n, q.Get(n))
	}
	d := logsData{Form: f, NoBus: s.events == nil, Events: []events.Event{}}
	status := http.StatusOK
	query, err := events.ParseQuery(q.Get, logsPageSize)
	var qe *events.QueryError
	switch {
	case errors.As(err, &qe) && f.fields[qe.Param]:
		f.errs[qe.Param] = []string{qe.Message}
		status = http.StatusBadRequest
	case err != nil:
		f.addGeneral(err.Error())
		status = http.StatusBadRequest
	default:
		query.Limit = logsPageSize // the page's own size, whatever limit= says
		var older uint64
		d.Events, older = query.Run(s.events)
		keep := url.Values{}
		for _, n := range []string{"severity", "kind", "q"} {
			if v := q.Get(n); v != "" {
				keep.Set(n, v)
			}
		}
		d.Newest = "/logs"
		if len(keep) > 0 {
			d.Newest += "?" + keep.Encode()
		}
		if older != 0 {
			keep.Set("before", strconv.FormatUint(older, 10))
			d.Older = "/logs?" + keep.Encode()
		}
		d.Paged = query.Filter.Before != 0
	}
	s.render(w, r, p, status, "logs", view{Title: "Logs", Nav: "logs", Data: d})
}
