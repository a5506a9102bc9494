package history

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query asks for the history of one object.
type Query struct {
	// Key is the object; the zero Key is the appliance's total.
	Key Key
	// Range is Hour or Day; "" is Hour.
	Range Range
	// Since, when not zero, keeps only the points after it (a page that
	// has the history extends it with what is new).
	Since time.Time
	// Fields are the fields wanted; nil means all.
	Fields []Field
}

// Doc is the history of one object (or several, sharing T) shaped for
// uPlot: one column of times and one column per field.
type Doc struct {
	// Range is the range answered.
	Range Range `json:"range"`
	// Step is the seconds between points: the sampling interval for 1h,
	// 60 for 24h.
	Step float64 `json:"step"`
	// T are the points' times in Unix seconds, oldest first.
	T []float64 `json:"t"`
	// Series are the columns by field name, aligned with T; null where
	// the object did not exist.
	Series map[string]Column `json:"series,omitempty"`
	// Untracked says why the object has no history although it exists
	// (the cap on the number of series); its columns are then empty.
	Untracked string `json:"untracked,omitempty"`
}

// Get returns the history of one object. An object without a series and
// not in the last status is ErrNotFound; one over the cap gets a Doc with
// only times and Untracked set.
func (h *History) Get(q Query) (*Doc, error) {
	docs, err := h.GetMany(q.Range, q.Since, []Key{q.Key}, q.Fields)
	if err != nil {
		return nil, err
	}
	d := &docs.Doc
	d.Series = docs.Objects[q.Key]
	if d.Series == nil {
		d.Untracked = docs.Untracked[q.Key]
		if d.Untracked == "" {
			return nil, fmt.Errorf("%s: %w (no such object, or it has been gone longer than %s)", q.Key, ErrNotFound, h.goneAfter)
		}
	}
	return d, nil
}

// Many is the history of several objects sharing one time column.
type Many struct {
	Doc
	// Objects are the columns of each object with a series; an object
	// without one is absent.
	Objects map[Key]map[string]Column
	// Untracked are the objects over the cap, with why.
	Untracked map[Key]string
}

// GetMany returns the history of keys over one time column; objects
// without a series are left out (those over the cap are named in
// Untracked).
func (h *History) GetMany(rng Range, since time.Time, keys []Key, fields []Field) (*Many, error) {
	if rng == "" {
		rng = Hour
	}
	if rng != Hour && rng != Day {
		return nil, fmt.Errorf("range: must be 1h or 24h, got %q", rng)
	}
	if fields == nil {
		fields = Fields()
	}
	for _, f := range fields {
		if f < 0 || f >= numFields {
			return nil, fmt.Errorf("field %d: no such field", int(f))
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	times, n, size := h.hourT, h.hourN, HourPoints
	step := h.interval.Seconds()
	if rng == Day {
		times, n, size, step = h.dayT, h.dayN, DayPoints, 60
	}
	count := min(n, uint64(size))
	first := n - count
	sinceMs := int64(0)
	if !since.IsZero() {
		sinceMs = since.UnixMilli()
	}
	// Times grow with the sample number: skip to the first after since.
	for first < n && times[first%uint64(size)] <= sinceMs {
		first++
	}
	m := &Many{Doc: Doc{Range: rng, Step: step, T: make([]float64, 0, n-first)},
		Objects: map[Key]map[string]Column{}, Untracked: map[Key]string{}}
	for i := first; i < n; i++ {
		m.T = append(m.T, float64(times[i%uint64(size)])/1000)
	}
	for _, k := range keys {
		s := h.total
		if k != (Key{}) {
			s = h.series[k]
		}
		if s == nil {
			if _, over := h.untracked[k]; over {
				m.Untracked[k] = fmt.Sprintf("no history: the cap of %d series is reached", h.maxSeries)
			}
			continue
		}
		r := s.ring(rng)
		cols := make(map[string]Column, len(fields))
		for _, f := range fields {
			col := make(Column, 0, n-first)
			for i := first; i < n; i++ {
				j := i % uint64(size)
				switch {
				case r[Active][j] == code16Absent:
					col = append(col, decode(code16Absent))
				case r[f] == nil:
					col = append(col, 0)
				default:
					col = append(col, decode(r[f][j]))
				}
			}
			cols[f.String()] = col
		}
		m.Objects[k] = cols
	}
	return m, nil
}

// ParseFields reads field names (as Field.String gives them).
func ParseFields(names []string) ([]Field, error) {
	out := make([]Field, 0, len(names))
	for _, n := range names {
		found := false
		for f, name := range fieldNames {
			if name == n {
				out = append(out, Field(f))
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no field %q (fields: %v)", n, fieldNames)
		}
	}
	return out, nil
}

// ParseQuery reads the query parameters of GET /api/v1/history (and of
// the web UI's reads): vs, subvs and rs (IDs; subvs and rs need vs; none
// is the appliance's total), range (1h or 24h), since (Unix seconds,
// exclusive) and fields (comma-separated names). Errors name the
// parameter.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	var err error
	for _, p := range []struct {
		name string
		dst  *int
	}{{"vs", &q.Key.VS}, {"subvs", &q.Key.SubVS}, {"rs", &q.Key.RS}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return Query{}, fmt.Errorf("query parameter %s: must be a positive integer ID, got %q", p.name, s)
		}
		*p.dst = n
	}
	if q.Key.VS == 0 && (q.Key.SubVS != 0 || q.Key.RS != 0) {
		name := "subvs"
		if q.Key.RS != 0 {
			name = "rs"
		}
		return Query{}, fmt.Errorf("query parameter %s: needs vs (the top-level virtual service's ID)", name)
	}
	if q.Range, err = ParseRange(v.Get("range")); err != nil {
		return Query{}, fmt.Errorf("query parameter range: %w", err)
	}
	if s := v.Get("since"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= 0 && f <= 1e12) {
			return Query{}, fmt.Errorf("query parameter since: must be Unix seconds, got %q", s)
		}
		q.Since = time.UnixMilli(int64(math.Round(f * 1000)))
	}
	if s := v.Get("fields"); s != "" {
		if q.Fields, err = ParseFields(strings.Split(s, ",")); err != nil {
			return Query{}, fmt.Errorf("query parameter fields: %w", err)
		}
	}
	return q, nil
}
