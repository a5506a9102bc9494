package syslog

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 2, 3, 4000, time.FixedZone("", 3600))
	for _, tc := range []struct {
		name string
		m    Message
		max  int
		want string
	}{
		{"full", Message{Facility: FacilityLocal0, Severity: 3, Time: at, Hostname: "lb1", ProcID: "42", MsgID: "rs.down",
			Fields: map[string]string{"vs": "web", "reason": `a"b\c]d`}, Text: "down"}, 0,
			`<131>1 2026-12-08T01:02:03.000004+01:00 lb1 fulcrum 42 rs.down [fulcrum@32473 reason="a\"b\\c\]d" vs="web"] down`},
		{"nil values", Message{Facility: FacilityLocal1, Severity: 6}, 0, `<142>1 - - fulcrum - - -`},
		{"header cleaned", Message{Facility: 16, Severity: 5, Hostname: "a b\x00", MsgID: strings.Repeat("k", 40), Text: "x\r\ny"}, 0,
			`<133>1 - a_b_ fulcrum - ` + strings.Repeat("k", 32) + ` - x y`},
		{"sd names cleaned", Message{Facility: 16, Severity: 5, Fields: map[string]string{`a=b"c]`: "v", "": "e"}}, 0,
			`<133>1 - - fulcrum - - [fulcrum@32473 _="e" a_b_c_="v"]`},
		{"bad facility", Message{Facility: 99, Severity: 1}, 0, `<133>1 - - fulcrum - - -`},
		{"text cut at a character", Message{Facility: 16, Severity: 5, Text: "ééé"}, len(`<133>1 - - fulcrum - - - `) + 3,
			`<133>1 - - fulcrum - - - é`},
		{"values cut", Message{Facility: 16, Severity: 5, Fields: map[string]string{"a": strings.Repeat("]", 100)}, Text: "t"}, 200,
			`<133>1 - - fulcrum - - [fulcrum@32473 a="` + strings.Repeat(`\]`, 64) + `"] t`},
		{"sd dropped", Message{Facility: 16, Severity: 5, Fields: map[string]string{"a": "v", "b": "w", "c": "x", "d": "y"}, Text: "t"}, 40,
			`<133>1 - - fulcrum - - - t`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Format(&tc.m, tc.max))
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if tc.max > 0 && len(got) > tc.max {
				t.Errorf("%d bytes, max %d", len(got), tc.max)
			}
		})
	}
}

// parseSD reads the structured data of a formatted message back, as a
// receiver would, and fails on anything RFC 5424 forbids.
func parseSD(t *testing.T, s string) map[string]string {
	t.Helper()
	// Skip PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID.
	for range 6 {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			t.Fatalf("header too short: %q", s)
		}
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "-") {
		return nil
	}
	if !strings.HasPrefix(s, "["+SDID) {
		t.Fatalf("no SD element: %q", s)
	}
	s = s[len(SDID)+1:]
	out := map[string]string{}
	for {
		if strings.HasPrefix(s, "]") {
			return out
		}
		if !strings.HasPrefix(s, " ") {
			t.Fatalf("want SP or ]: %q", s)
		}
		s = s[1:]
		eq := strings.Index(s, `="`)
		if eq < 1 || eq > 32 {
			t.Fatalf("bad SD-NAME: %q", s)
		}
		name := s[:eq]
		if strings.ContainsAny(name, ` ="]`) {
			t.Fatalf("bad SD-NAME %q", name)
		}
		s = s[eq+2:]
		var v strings.Builder
		for {
			if s == "" {
				t.Fatal("unterminated PARAM-VALUE")
			}
			c := s[0]
			if c == '\\' && len(s) > 1 && (s[1] == '"' || s[1] == '\\' || s[1] == ']') {
				v.WriteByte(s[1])
				s = s[2:]
				continue
			}
			if c == '"' {
				s = s[1:]
				break
			}
			if c == ']' {
				t.Fatalf("unescaped ] in value")
			}
			v.WriteByte(c)
			s = s[1:]
		}
		if !utf8.ValidString(v.String()) {
			t.Fatalf("value not UTF-8: %q", v.String())
		}
		out[name] = v.String()
	}
}

func FuzzFormat(f *testing.F) {
	f.Add("vs", `web "1" \ ]`, "reason", "x]y", "msg\n", 0)
	f.Add("", "\xff\xfe", "a=b", "", "", 40)
	f.Add("k", strings.Repeat(`"`, 300), "l", "ü", "ä", 200)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, text string, max int) {
		if max < 0 || max > 1<<16 {
			max = 0
		}
		m := Message{Facility: 16, Severity: 3, Time: time.Unix(0, 0), Hostname: "h", ProcID: "1", MsgID: k1,
			Fields: map[string]string{k1: v1, k2: v2}, Text: text}
		b := Format(&m, max)
		if max > 0 && len(b) > max && len(b) > len(Format(&Message{Facility: 16, Severity: 3, Time: time.Unix(0, 0), Hostname: "h", ProcID: "1", MsgID: k1}, 0)) {
			t.Fatalf("%d bytes over max %d", len(b), max)
		}
		if !utf8.Valid(b) {
			t.Fatalf("not UTF-8: %q", b)
		}
		if strings.ContainsAny(string(b), "\n\r") {
			t.Fatalf("line break in %q", b)
		}
		sd := parseSD(t, string(b))
		if sd != nil && max == 0 {
			// Unlimited: every value comes back as it went in (made UTF-8).
			if got := sd[sdName(k1)]; sdName(k1) != sdName(k2) && got != cleanText(v1) {
				t.Fatalf("value %q came back as %q", v1, got)
			}
		}
	})
}
