package health

import "time"

// queue is a min-heap of tasks by due time, measured from the Monitor's
// epoch. Entries carry the due time so that sifting does not touch the
// tasks themselves (thousands of them, scattered in memory). A stopped
// task is not removed: it is skipped when it comes out.
type queue []qitem

type qitem struct {
	due time.Duration
	t   *task
}

// push adds t at t.due.
func (q *queue) push(t *task) {
	*q = append(*q, qitem{t.due, t})
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

// pop removes and returns the first entry; the queue must not be empty.
func (q *queue) pop() qitem {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = qitem{}
	h = h[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h[r].due < h[l].due {
			c = r
		}
		if h[i].due <= h[c].due {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	*q = h
	return top
}
