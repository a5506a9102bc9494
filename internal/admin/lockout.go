package admin

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Kinds of lockout counters.
const (
	lockUser   = "user"   // failed passwords for one account from one source
	lockAPIKey = "apikey" // failed API keys from one source
	lockSource = "source" // failed passwords for any account from one source
)

// sourceBudgetFactor multiplies the per-account attempt budget into the
// budget of one source address across all accounts: guessing many user
// names from one address (each guess costs a bcrypt comparison) is stopped
// too, while a few people mistyping behind one NAT address are not.
const sourceBudgetFactor = 10

// maxAccountKey bounds the account part of a lockout key so that huge
// user names sent by an attacker cost little memory.
const maxAccountKey = 64

// lockKey identifies one lockout counter.
type lockKey struct {
	kind, account, source string
}

type lockEntry struct {
	fails int       // consecutive failures, counting attempts in flight
	last  time.Time // last failure (or attempt start)
	until time.Time // end of the cool-down; zero when not locked
}

// refusal describes an attempt refused by begin. (Refusals are audited
// through Service.auditFailure, which keeps an attacker hammering a locked
// account from flooding the audit trail.)
type refusal struct {
	until time.Time // end of the cool-down
}

// limiter counts consecutive failures per key. An attempt is counted when
// it starts (begin) so that parallel guesses cannot exceed the budget while
// their password hashes are being compared; a success clears the counter
// and an attempt that could not be judged (backend error) is taken back.
type limiter struct {
	mu      sync.Mutex
	entries map[lockKey]*lockEntry
}

func userLockKey(account, source string) lockKey {
	if len(account) > maxAccountKey {
		account = account[:maxAccountKey]
	}
	return lockKey{kind: lockUser, account: account, source: source}
}

func sourceLockKey(source string) lockKey {
	return lockKey{kind: lockSource, source: source}
}

// sourcePolicy is the lockout policy of a whole source address.
func sourcePolicy(p config.Lockout) config.Lockout {
	p.Attempts *= sourceBudgetFactor
	return p
}

func apiKeyLockKey(source string) lockKey {
	return lockKey{kind: lockAPIKey, source: source}
}

// begin starts an attempt for k. It returns locked=true, with the end of
// the cool-down, if the attempt must be refused.
func (l *limiter) begin(k lockKey, now time.Time, p config.Lockout) (r refusal, locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e != nil {
		l.refresh(e, now, p)
		if e.until.IsZero() && e.fails >= p.Attempts {
			// The budget is used up by attempts still in flight.
			r.until = now.Add(time.Duration(p.CoolDown) * time.Second)
		} else {
			r.until = e.until
		}
		if !r.until.IsZero() {
			return r, true
		}
	} else {
		if len(l.entries) >= MaxLockoutEntries {
			l.evict(now, p)
		}
		e = &lockEntry{}
		l.entries[k] = e
	}
	e.fails++
	e.last = now
	return refusal{}, false
}

// refresh ends a finished cool-down and forgets failures older than one
// cool-down period.
func (l *limiter) refresh(e *lockEntry, now time.Time, p config.Lockout) {
	cool := time.Duration(p.CoolDown) * time.Second
	if !e.until.IsZero() {
		if now.Before(e.until) {
			return
		}
		e.until = time.Time{}
		e.fails = 0
		return
	}
	if now.Sub(e.last) >= cool {
		e.fails = 0
	}
}

// succeed clears k's counter.
func (l *limiter) succeed(k lockKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, k)
}

// cancel takes back an attempt begun for k that could not be judged.
func (l *limiter) cancel(k lockKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[k]; e != nil && e.until.IsZero() {
		e.fails--
		if e.fails <= 0 {
			delete(l.entries, k)
		}
	}
}

// fail records that the attempt begun for k failed. lockedNow is true when
// this failure started the cool-down.
func (l *limiter) fail(k lockKey, now time.Time, p config.Lockout) (until time.Time, lockedNow bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil { // cleared by a concurrent success
		return time.Time{}, false
	}
	e.last = now
	if e.until.IsZero() && e.fails >= p.Attempts {
		e.until = now.Add(time.Duration(p.CoolDown) * time.Second)
		return e.until, true
	}
	return time.Time{}, false
}

// clearAccount forgets every counter of one account (after a console
// password reset).
func (l *limiter) clearAccount(account string) {
	if len(account) > maxAccountKey {
		account = account[:maxAccountKey]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.entries {
		if k.kind == lockUser && k.account == account {
			delete(l.entries, k)
		}
	}
}

// evict makes room: it drops expired entries, then, if that is not enough,
// the oldest entries, unlocked ones first, down to 90% of the bound.
// Called with l.mu held.
func (l *limiter) evict(now time.Time, p config.Lockout) {
	for k, e := range l.entries {
		l.refresh(e, now, p)
		if e.until.IsZero() && e.fails <= 0 {
			delete(l.entries, k)
		}
	}
	if len(l.entries) < MaxLockoutEntries {
		return
	}
	type kv struct {
		k lockKey
		e *lockEntry
	}
	all := make([]kv, 0, len(l.entries))
	for k, e := range l.entries {
		all = append(all, kv{k, e})
	}
	sort.Slice(all, func(i, j int) bool {
		li, lj := !all[i].e.until.IsZero(), !all[j].e.until.IsZero()
		if li != lj {
			return !li // unlocked first
		}
		return all[i].e.last.Before(all[j].e.last)
	})
	target := MaxLockoutEntries * 9 / 10
	for _, x := range all {
		if len(l.entries) <= target {
			break
		}
		delete(l.entries, x.k)
	}
}

// len returns the number of counters kept (for tests).
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// sourceOf returns the lockout source of a remote address ("ip:port" or a
// bare IP): the IP address, or for IPv6 its /64 prefix, since one host
// usually owns a whole /64.
func sourceOf(remote string) string {
	host := RemoteHost(remote)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
