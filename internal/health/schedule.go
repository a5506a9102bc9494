package health

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"
)

// stopTask stops t: out of the queue, its check in flight cancelled and
// its result ignored. m.mu is held.
func (m *Monitor) stopTask(t *task) {
	t.stopped = true // a queued task is skipped when it comes out
	if t.cancel != nil {
		t.cancel()
	}
}

// signal wakes the scheduler.
func (m *Monitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// schedule is the scheduler goroutine: it starts due checks.
func (m *Monitor) schedule() {
	defer m.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Waking up for every check costs more than the check itself at
	// thousands of real servers: the scheduler sleeps at least slack, and
	// starts together the checks due meanwhile.
	slack := min(m.unit/100, 10*time.Millisecond)
	for {
		m.mu.Lock()
		now := m.clock()
		wait := time.Duration(-1)
		for len(m.queue) > 0 && m.inFlight < m.opts.MaxConcurrent {
			if d := m.queue[0].due - now; d > 0 {
				wait = max(d, slack)
				break
			}
			if t := m.queue.pop().t; !t.stopped {
				m.start(t)
			}
		}
		if wait >= 0 {
			m.nextWake = now + wait
		} else {
			m.nextWake = -1 // until signalled
		}
		m.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// start runs t's check on a worker. m.mu is held.
func (m *Monitor) start(t *task) {
	ctx, cancel := context.WithTimeout(m.ctx, t.timeout)
	t.cancel = cancel
	m.inFlight++
	checker, target := t.checker, t.spec.Target
	m.run(func() {
		start := time.Now()
		res := checker.Check(ctx, target)
		if res.Latency == 0 {
			res.Latency = time.Since(start)
		}
		cancel()
		m.mu.Lock()
		defer m.mu.Unlock()
		full := m.inFlight == m.opts.MaxConcurrent
		m.inFlight--
		t.cancel = nil
		if full {
			m.signal() // the scheduler may be waiting for this slot
		}
		if t.stopped {
			return
		}
		m.record(t, res, start)
		if t.checks == 1 {
			// Spread the checks over the interval: the second comes after
			// a random part of it, then one per interval.
			t.due = start.Sub(m.epoch) + t.interval/2 + rand.N(t.interval/2+1)
		} else {
			t.due += t.interval
		}
		t.due = max(t.due, m.clock())
		m.queue.push(t)
		if m.nextWake < 0 || t.due < m.nextWake {
			m.signal()
		}
	})
}

// workerIdle is how long a worker waits for a check before it ends.
const workerIdle = 10 * time.Second

// worker runs checks one after the other. Workers outlive their check, so
// that their stacks, grown by the first one, serve the next; the idle ones
// form a stack, so that the busiest stay and the others end.
type worker struct {
	jobs chan func() // holds at most the one job handed over by run
}

// run runs f on the most recently idle worker, or on a new one. m.mu is
// held.
func (m *Monitor) run(f func()) {
	if n := len(m.idle); n > 0 {
		w := m.idle[n-1]
		m.idle = m.idle[:n-1]
		w.jobs <- f // never blocks: an idle worker's buffer is empty
		return
	}
	w := &worker{jobs: make(chan func(), 1)}
	m.wg.Add(1)
	go m.work(w, f)
}

func (m *Monitor) work(w *worker, f func()) {
	defer m.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		m.mu.Lock()
		m.idle = append(m.idle, w)
		m.mu.Unlock()
		idle.Reset(workerIdle)
		select {
		case f = <-w.jobs:
			continue
		case <-idle.C:
		case <-m.ctx.Done():
		}
		m.mu.Lock()
		i := slices.Index(m.idle, w)
		if i >= 0 {
			m.idle = slices.Delete(m.idle, i, i+1)
		}
		m.mu.Unlock()
		if i >= 0 {
			return
		}
		f = <-w.jobs // run took this worker just now: its job is on the way
	}
}

// clock returns the time since the Monitor's epoch (monotonic).
func (m *Monitor) clock() time.Duration { return time.Since(m.epoch) }
