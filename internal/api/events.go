package api

import (
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/health"
)

// DefaultEventLimit is the number of events GET /events returns when the
// request does not say.
const DefaultEventLimit = 100

// eventsBody is the response of GET /events.
type eventsBody struct {
	// Events are the health-check transitions of virtual services and real
	// servers, newest first.
	Events any `json:"events"`
}

// getEvents serves GET /events?vs=&limit=: the newest health-check events,
// of one service when vs is given.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	vs, ok := queryInt(w, q.Get("vs"), "vs", 0)
	if !ok {
		return
	}
	limit, ok := queryInt(w, q.Get("limit"), "limit", DefaultEventLimit)
	if !ok {
		return
	}
	var events any = []health.Event{}
	if s.status != nil {
		events = s.status.Events(limit, vs)
	}
	writeJSON(w, http.StatusOK, eventsBody{Events: events})
}

// queryInt reads a non-negative integer query parameter; "" gives def. On
// bad input it writes a 400 naming the parameter and returns false.
func queryInt(w http.ResponseWriter, v, name string, def int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, "query parameter "+name+": must be a non-negative integer, got "+strconv.Quote(v), nil)
		return 0, false
	}
	return n, true
}
