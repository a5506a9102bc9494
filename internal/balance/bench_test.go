package balance

import (
	"fmt"
	"testing"
)

func BenchmarkPick(b *testing.B) {
	for _, method := range []string{"rr", "wrr", "lc", "wlc"} {
		for _, n := range []int{4, 64} {
			b.Run(fmt.Sprintf("%s/%d", method, n), func(b *testing.B) {
				ws := make([]int, n)
				for i := range ws {
					ws[i] = 1 + i%5
				}
				p := mustNew(b, method, pool(ws...))
				req := &Request{}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_, done, err := p.Pick(req)
						if err != nil {
							b.Fatal(err)
						}
						done()
					}
				})
			})
		}
	}
}
