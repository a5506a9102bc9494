package events

import (
	"strconv"
	"strings"
)

// MaxQueryText bounds the length of a query's free text.
const MaxQueryText = 200

// Query is a parsed request for events: what GET /api/v1/logs and the web
// UI's Logs page take as query parameters.
type Query struct {
	// Filter selects the events.
	Filter Filter
	// Limit is at most how many (0: all kept).
	Limit int
}

// QueryError is a query parameter that does not parse.
type QueryError struct {
	// Param is the parameter's name.
	Param string
	// Message says what is wrong.
	Message string
}

func (e *QueryError) Error() string { return "query parameter " + e.Param + ": " + e.Message }

// ParseQuery reads the parameters severity (an RFC 5424 keyword: events
// at least this severe), kind (a group's prefix or one kind), q (text),
// before (a seq, for paging) and limit (default defLimit, 0 = all) through
// get, which returns "" for an absent parameter. An error is a
// *QueryError naming the parameter.
func ParseQuery(get func(string) string, defLimit int) (Query, error) {
	q := Query{Filter: Filter{MaxSeverity: -1}, Limit: defLimit}
	if v := get("severity"); v != "" {
		sev, ok := ParseSeverity(v)
		if !ok {
			return q, &QueryError{"severity", "must be one of " + strings.Join(severityNames[:], ", ") + ", got " + quote(v)}
		}
		q.Filter.MaxSeverity = sev
	}
	k := get("kind")
	if !ValidKindFilter(k) {
		return q, &QueryError{"kind", "must be a group or a kind (" + KindFilters() + "), got " + quote(k)}
	}
	q.Filter.Kind = k
	text := get("q")
	if len(text) > MaxQueryText {
		return q, &QueryError{"q", "at most " + strconv.Itoa(MaxQueryText) + " bytes, got " + strconv.Itoa(len(text))}
	}
	q.Filter.Text = strings.TrimSpace(text)
	if v := get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return q, &QueryError{"before", "must be an event's seq (a positive integer), got " + quote(v)}
		}
		q.Filter.Before = n
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || len(v) > 9 {
			return q, &QueryError{"limit", "must be a non-negative integer, got " + quote(v)}
		}
		q.Limit = n
	}
	return q, nil
}

// Run lists the events of q from b (nil: none), newest first, and the
// before value of the next, older page (0 when there is none).
func (q Query) Run(b *Bus) ([]Event, uint64) {
	if b == nil {
		return []Event{}, 0
	}
	limit := q.Limit
	if limit > 0 {
		limit++ // one more tells whether an older page exists
	}
	list := b.List(q.Filter, limit)
	if q.Limit > 0 && len(list) > q.Limit {
		list = list[:q.Limit]
		return list, list[len(list)-1].Seq
	}
	return list, 0
}

// quote quotes a parameter's value for an error message, shortened.
func quote(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return strconv.Quote(s)
}
