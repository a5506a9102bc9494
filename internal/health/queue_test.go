package health

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestQueueOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var q queue
	var want []time.Duration
	for range 2000 {
		if r.IntN(3) > 0 || len(q) == 0 {
			d := time.Duration(r.IntN(1000))
			q.push(&task{due: d})
			want = append(want, d)
			continue
		}
		slices.Sort(want)
		got := q.pop()
		if got.due != want[0] || got.t.due != got.due {
			t.Fatalf("pop %v, want %v", got.due, want[0])
		}
		want = want[1:]
	}
	for len(q) > 0 {
		slices.Sort(want)
		if got := q.pop(); got.due != want[0] {
			t.Fatalf("drain: pop %v, want %v", got.due, want[0])
		}
		want = want[1:]
	}
}
