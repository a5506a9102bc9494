package api

import (
	"errors"
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/config"

	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// logsBody is the response of GET /logs.
type logsBody struct {
	// Events are the events that pass the filter, newest first.
	Events []events.Event `json:"events"`
	// Older is the before= value of the next (older) page; absent when
	// this page holds the oldest matching event kept.
	Older uint64 `json:"older,omitempty"`
}

// getLogs serves GET /logs?severity=&kind=&q=&before=&limit=: the event
// log, filtered and paged, newest first.
func (s *Server) getLogs(w http.ResponseWriter, r *http.Request) {
	q, err := events.ParseQuery(r.URL.Query().Get, DefaultEventLimit)
	if err != nil {
		var fields []config.FieldError
		var qe *events.QueryError
		if errors.As(err, &qe) {
			fields = []config.FieldError{{Path: qe.Param, Message: qe.Message}}
		}
		writeError(w, http.StatusBadRequest, err.Error(), fields)
		return
	}
	list, older := q.Run(s.events)
	writeJSON(w, http.StatusOK, logsBody{Events: list, Older: older})
}
