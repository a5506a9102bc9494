package backend

import (
	"io"
	"testing"
)

// BenchmarkCounters is the counting one proxied connection costs on its
// service's Counters and its real server: open, slot, track, bytes, close;
// "serial" on one goroutine, "parallel" on all of them (shared cache
// lines).
func BenchmarkCounters(b *testing.B) {
	r := NewRegistry()
	srv := r.Lookup(key(9000), Settings{})
	r.Commit([]*Server{srv})
	var c Counters
	conn := func(cl io.Closer) {
		if !c.TryOpen(0) || !srv.Acquire(0) {
			b.Fatal("refused")
		}
		untrack := srv.Track(cl)
		c.AddBytes(64, 64)
		srv.AddBytes(64, 64)
		untrack()
		srv.Release()
		c.Close()
	}
	b.Run("serial", func(b *testing.B) {
		var cl io.Closer = nopCloser{}
		b.ReportAllocs()
		for range b.N {
			conn(cl)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var cl io.Closer = nopCloser{}
			for pb.Next() {
				conn(cl)
			}
		})
	})
}

// BenchmarkAddBytes is the byte accounting of one connection's end.
func BenchmarkAddBytes(b *testing.B) {
	var c Counters
	b.ReportAllocs()
	for range b.N {
		c.AddBytes(64, 64)
	}
}
