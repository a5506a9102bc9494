package webui

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/history"
)

// dashFields are the fields of each service's mini graph on the dashboard.
var dashFields = []history.Field{history.Active, history.BytesInPerSec, history.BytesOutPerSec}

// dashHistory is the dashboard's read of the statistics history: the
// appliance's total and every top-level service's mini-graph fields over
// one time column.
type dashHistory struct {
	history.Doc
	// Total are the appliance's columns.
	Total map[string]history.Column `json:"total"`
	// VS are each service's columns by ID; a service without history is
	// absent.
	VS map[string]map[string]history.Column `json:"vs"`
	// Untracked names the services over the history's cap, by ID.
	Untracked map[string]string `json:"untracked,omitempty"`
}

// historyJSON answers the graphs' reads of the statistics history (the
// same query as GET /api/v1/history): with vs, one object's history (the
// service page); without, the dashboard's (dashHistory). 404 when the
// server keeps no history: the page then graphs only what it sees live.
func (s *Server) historyJSON(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	q, err := history.ParseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.stats == nil {
		http.Error(w, "no statistics history", http.StatusNotFound)
		return
	}
	var v any
	if q.Key != (history.Key{}) {
		d, err := s.stats.Get(q)
		if errors.Is(err, history.ErrNotFound) {
			if s.ctl.Current().Config.VirtualServiceByID(q.Key.VS) == nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			// A service just made: no sample has seen it yet.
			d, err = &history.Doc{Range: q.Range, Step: s.stats.Interval().Seconds(), T: []float64{}}, nil
			if q.Range == history.Day {
				d.Step = 60
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v = d
	} else {
		cfg := s.ctl.Current().Config
		keys := []history.Key{{}}
		for i := range cfg.VirtualServices {
			keys = append(keys, history.Key{VS: cfg.VirtualServices[i].ID})
		}
		m, err := s.stats.GetMany(q.Range, q.Since, keys, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d := dashHistory{Doc: m.Doc, Total: m.Objects[history.Key{}], VS: map[string]map[string]history.Column{}}
		for k, cols := range m.Objects {
			if k == (history.Key{}) {
				continue
			}
			mini := make(map[string]history.Column, len(dashFields))
			for _, f := range dashFields {
				mini[f.String()] = cols[f.String()]
			}
			d.VS[strconv.Itoa(k.VS)] = mini
		}
		for k, why := range m.Untracked {
			if d.Untracked == nil {
				d.Untracked = map[string]string{}
			}
			d.Untracked[strconv.Itoa(k.VS)] = why
		}
		v = d
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("webui: encode history", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
