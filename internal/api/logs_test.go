package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// goldenBus is an event log with a fixed set of events.
func goldenBus() *events.Bus {
	b := events.NewBus(0)
	at := time.Date(2026, 12, 7, 20, 15, 30, 0, time.UTC)
	for i, e := range []events.Event{
		{Severity: events.Info, Kind: events.KindSystem, Message: "Fulcrum started", Fields: map[string]string{"version": "1.0.0"}},
		{Severity: events.Notice, Kind: events.KindConfigChange, Message: "revision 2 committed by bal: add virtual service web",
			Fields: map[string]string{"user": "bal", "revision": "2", "source": "wui"}},
		{Severity: events.Err, Kind: events.KindRSDown, Message: "real server 10.0.0.5:80 of web is Down",
			Fields: map[string]string{"vs": "web", "rs": "10.0.0.5:80", "reason": "http 10.0.0.5:80: connection refused"}},
		{Severity: events.Warning, Kind: events.KindLoginFailed, Message: "login failed for mallory",
			Fields: map[string]string{"user": "mallory", "remote": "198.51.100.7"}},
		{Severity: events.Notice, Kind: events.KindRSUp, Message: "real server 10.0.0.5:80 of web is Up",
			Fields: map[string]string{"vs": "web", "rs": "10.0.0.5:80"}},
		{Severity: events.Warning, Kind: events.KindCertExpiring, Message: "certificate lync-public expires in 12 days",
			Fields: map[string]string{"certificate": "lync-public"}},
	} {
		e.Time = at.Add(time.Duration(i) * time.Second)
		b.Publish(e)
	}
	return b
}

// TestLogsGolden keeps GET /api/v1/logs byte for byte for a fixed event
// log and a set of filters. Run `go test ./internal/api -run LogsGolden
// -update` after a deliberate change of the answer.
func TestLogsGolden(t *testing.T) {
	e := newStatusEnv(t, nil, Options{Events: goldenBus()})
	var out bytes.Buffer
	for _, q := range []string{
		"",
		"?severity=warning",
		"?kind=rs.",
		"?kind=admin.login-failed",
		"?q=WEB&severity=notice",
		"?limit=2",
		"?limit=2&before=5",
		"?before=2",
		"?severity=debug&kind=cert.&q=lync&limit=0",
	} {
		out.WriteString("GET /api/v1/logs" + q + "\n")
		out.Write(e.must(req{method: "GET", path: "/api/v1/logs" + q}, http.StatusOK).body)
		out.WriteString("\n")
	}
	checkGolden(t, "logs.golden", out.Bytes())
}

// TestLogsErrors: a parameter that does not parse is refused with 400
// naming it; without an event log the answer is an empty list; a read-only
// user may read the log and an anonymous caller may not.
func TestLogsErrors(t *testing.T) {
	e := newStatusEnv(t, nil, Options{Events: goldenBus()})
	for _, tc := range []struct{ query, param string }{
		{"severity=loud", "severity"},
		{"severity=3", "severity"},
		{"kind=foo", "kind"},
		{"kind=rs", "kind"},
		{"before=-1", "before"},
		{"before=0", "before"},
		{"before=x", "before"},
		{"limit=-5", "limit"},
		{"limit=ten", "limit"},
		{"q=" + strings.Repeat("a", events.MaxQueryText+1), "q"},
	} {
		r := e.must(req{method: "GET", path: "/api/v1/logs?" + tc.query}, http.StatusBadRequest)
		var body errorBody
		r.json(t, &body)
		if !strings.HasPrefix(body.Error, "query parameter "+tc.param+": ") || len(body.Fields) != 1 || body.Fields[0].Path != tc.param {
			t.Errorf("%s: %+v", tc.query, body)
		}
	}
	e.must(req{method: "GET", path: "/api/v1/logs", noAuth: true}, http.StatusUnauthorized)

	none := newStatusEnv(t, nil, Options{})
	var body logsBody
	none.must(req{method: "GET", path: "/api/v1/logs"}, http.StatusOK).json(t, &body)
	if body.Events == nil || len(body.Events) != 0 || body.Older != 0 {
		t.Errorf("without an event log: %+v", body)
	}

	// Paging walks the whole log once, newest first.
	var seqs []uint64
	path := "/api/v1/logs?limit=4"
	for range 10 {
		var page logsBody
		raw := e.must(req{method: "GET", path: path}, http.StatusOK).body
		if err := json.Unmarshal(raw, &page); err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			seqs = append(seqs, ev.Seq)
		}
		if page.Older == 0 {
			break
		}
		path = "/api/v1/logs?limit=4&before=" + itoa(int(page.Older))
	}
	if len(seqs) != 6 || seqs[0] != 6 || seqs[5] != 1 {
		t.Errorf("paged seqs %v", seqs)
	}
}
