package webui

import (
	"fmt"
	"net/http"
	"testing"
)

// benchPage measures serving one page to a signed-in admin, with ten
// services of one real server each in the configuration.
func benchPage(b *testing.B, path func(id int) string) {
	ts := newTestServer(b)
	var id int
	for i := 0; i < 10; i++ {
		id = ts.addVS(b, fmt.Sprintf("192.0.2.%d", 100+i))
	}
	p := path(id)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w := ts.get("bal", p); w.Code != http.StatusOK {
			b.Fatalf("%s: %d", p, w.Code)
		}
	}
}

func BenchmarkDashboard(b *testing.B) { benchPage(b, func(int) string { return "/" }) }

func BenchmarkServicePage(b *testing.B) {
	benchPage(b, func(id int) string { return fmt.Sprintf("/vs/%d", id) })
}

func BenchmarkMetrics(b *testing.B) { benchPage(b, func(int) string { return "/ui/metrics" }) }
