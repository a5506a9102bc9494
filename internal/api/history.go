package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/history"
)

// getHistory serves GET /history?vs=&subvs=&rs=&range=&since=&fields=: the
// statistics history of the appliance's total, a virtual service, a SubVS
// or a real server, as compact JSON (no indentation: a day is thousands of
// numbers).
func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	q, err := history.ParseQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	if s.stats == nil {
		writeError(w, http.StatusNotFound, "no statistics history: this server has no data plane", nil)
		return
	}
	d, err := s.stats.Get(q)
	switch {
	case errors.Is(err, history.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error(), nil)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		s.log.Error("encode history", "err", err)
		writeError(w, http.StatusInternalServerError, "encode history: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}
