package admin

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// The budget of one account across all source addresses. The per-source
// lockout (Lockout.Attempts from one address) does not stop an attacker
// who takes a new address every few guesses; this does. Failures count
// only from sources that are not the account's known sources (where its
// recent successful password logins came from), so that the real user
// can still log in while an attacker is locking the account.
const (
	// AccountSlowAfter is the number of failed password logins for one
	// account in AccountSlowWindow after which each further attempt from a
	// source that is not known for the account must wait, one second more
	// for each failure beyond it, up to AccountMaxDelay; an attempt made
	// sooner is refused (429 with Retry-After) without checking the
	// password.
	AccountSlowAfter = 20
	// AccountSlowWindow is the window of AccountSlowAfter.
	AccountSlowWindow = 10 * time.Minute
	// AccountMaxDelay is the longest wait between attempts of a slowed
	// account.
	AccountMaxDelay = time.Minute
	// AccountLockAfter is the number of failed password logins for one
	// account in AccountLockWindow that locks it against password logins
	// from every source that is not known for it, until the lock is lifted
	// from the console (fulcrum passwd, UnlockAccount) or the server
	// restarts. So an attacker gets at most about this many guesses.
	AccountLockAfter = 100
	// AccountLockWindow is the window of AccountLockAfter.
	AccountLockWindow = time.Hour
	// KnownSourcesPerAccount is how many sources of recent successful
	// password logins are remembered per account (in memory: a restart
	// forgets them).
	KnownSourcesPerAccount = 3
	// MaxAccountBudgets bounds the number of accounts whose budget is kept;
	// budgets of user names that do not exist are dropped first.
	MaxAccountBudgets = 10_000
)

// lockedRetryHint is the Retry-After given while an account is locked
// until the console lifts it: the lock has no end of its own.
const lockedRetryHint = time.Hour

// accountBudget counts the failures of one account from sources that are
// not known for it, per minute over the last hour.
type accountBudget struct {
	perMinute [60]uint16 // failures, indexed by Unix minute mod 60
	minute    int64      // Unix minute of the newest slot written
	inflight  int        // attempts begun and not yet judged
	next      time.Time  // while slowed: the earliest next attempt
	locked    bool       // locked for sources that are not known
	known     []string   // sources of recent successful logins, newest first
	exists    bool       // the account is a real user
	slowNoted bool       // the slowing of the account was reported
	last      time.Time  // last activity
}

// advance clears the slots of the minutes that passed since the newest.
func (b *accountBudget) advance(now time.Time) {
	m := now.Unix() / 60
	if m <= b.minute {
		return
	}
	for i := b.minute + 1; i <= m && i <= b.minute+60; i++ {
		b.perMinute[i%60] = 0
	}
	b.minute = m
}

// failures returns the failures of the last n minutes (the current one
// included) plus the attempts in flight.
func (b *accountBudget) failures(n int) int {
	sum := b.inflight
	for i := 0; i < n; i++ {
		sum += int(b.perMinute[(b.minute-int64(i)+60)%60])
	}
	return sum
}

// isKnown reports whether source is one of the account's known sources.
func (b *accountBudget) isKnown(source string) bool { return slices.Contains(b.known, source) }

// accountBudgets holds the budgets of every account.
type accountBudgets struct {
	mu sync.Mutex
	m  map[string]*accountBudget
}

// budgetDecision is the outcome of accountBudgets.begin.
type budgetDecision struct {
	tracked bool      // the attempt counts toward the budget (the source is not known)
	refused bool      // refuse the attempt without checking the password
	locked  bool      // refused because the account is locked until the console lifts it
	until   time.Time // when to try again
}

func budgetKey(account string) string {
	if len(account) > maxAccountKey {
		return account[:maxAccountKey]
	}
	return account
}

// get returns the budget of an account, making it if needed. Called with
// a.mu held.
func (a *accountBudgets) get(account string, now time.Time) *accountBudget {
	k := budgetKey(account)
	b := a.m[k]
	if b == nil {
		if len(a.m) >= MaxAccountBudgets {
			a.evict(now)
		}
		b = &accountBudget{minute: now.Unix() / 60}
		a.m[k] = b
	}
	b.advance(now)
	b.last = now
	return b
}

// begin starts a password attempt for account from source.
func (a *accountBudgets) begin(account, source string, now time.Time) budgetDecision {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.get(account, now)
	if b.isKnown(source) {
		return budgetDecision{}
	}
	if b.locked || b.failures(int(AccountLockWindow/time.Minute)) >= AccountLockAfter {
		b.locked = true
		return budgetDecision{refused: true, locked: true, until: now.Add(lockedRetryHint)}
	}
	if n := b.failures(int(AccountSlowWindow / time.Minute)); n < AccountSlowAfter {
		b.slowNoted = false
	} else {
		if now.Before(b.next) {
			return budgetDecision{refused: true, until: b.next}
		}
		delay := time.Duration(n-AccountSlowAfter+1) * time.Second
		b.next = now.Add(min(delay, AccountMaxDelay))
	}
	b.inflight++
	return budgetDecision{tracked: true}
}

// fail records the failure of an attempt begun with d. It reports whether
// this failure locked the account, or made it slowed.
func (a *accountBudgets) fail(account string, d budgetDecision, now time.Time) (lockedNow, slowedNow bool) {
	if !d.tracked {
		return false, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.get(account, now)
	b.inflight = max(b.inflight-1, 0)
	slot := &b.perMinute[b.minute%60]
	if *slot < math.MaxUint16 {
		*slot++
	}
	if !b.locked && b.failures(int(AccountLockWindow/time.Minute)) >= AccountLockAfter {
		b.locked = true
		return true, false
	}
	if !b.slowNoted && b.failures(int(AccountSlowWindow/time.Minute)) >= AccountSlowAfter {
		b.slowNoted = true
		return false, true
	}
	return false, false
}

// succeed records a successful password login from source: it becomes a
// known source of the account. The failures counted so far stay: they
// were an attacker's, or the user's own typos, and count as such.
func (a *accountBudgets) succeed(account, source string, d budgetDecision, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.get(account, now)
	if d.tracked {
		b.inflight = max(b.inflight-1, 0)
	}
	b.exists = true
	b.known = slices.DeleteFunc(b.known, func(s string) bool { return s == source })
	b.known = slices.Insert(b.known, 0, source)
	if len(b.known) > KnownSourcesPerAccount {
		b.known = b.known[:KnownSourcesPerAccount]
	}
}

// cancel takes back an attempt begun with d that could not be judged.
func (a *accountBudgets) cancel(account string, d budgetDecision) {
	if !d.tracked {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.m[budgetKey(account)]; b != nil {
		b.inflight = max(b.inflight-1, 0)
	}
}

// markExists records that account is a real user, whose budget is kept
// before those of names that do not exist.
func (a *accountBudgets) markExists(account string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.m[budgetKey(account)]; b != nil {
		b.exists = true
	}
}

// lift clears the failures and the lock of an account, keeping its known
// sources. It reports whether the account was locked or slowed.
func (a *accountBudgets) lift(account string, now time.Time) (was bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.m[budgetKey(account)]
	if b == nil {
		return false
	}
	b.advance(now)
	was = b.locked || b.failures(int(AccountSlowWindow/time.Minute))-b.inflight >= AccountSlowAfter
	b.perMinute = [60]uint16{}
	b.locked, b.next, b.slowNoted = false, time.Time{}, false
	return was
}

// evict makes room, keeping real users' budgets and locks: first names
// that do not exist (oldest first), then real users' budgets that hold
// nothing (no failures in the last hour, no lock, no known source).
// Called with a.mu held.
func (a *accountBudgets) evict(now time.Time) {
	type kv struct {
		k string
		b *accountBudget
	}
	var cands []kv
	for k, b := range a.m {
		if b.inflight > 0 {
			continue
		}
		b.advance(now)
		if !b.exists || (!b.locked && len(b.known) == 0 && b.failures(60) == 0) {
			cands = append(cands, kv{k, b})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].b.exists != cands[j].b.exists {
			return !cands[i].b.exists
		}
		return cands[i].b.last.Before(cands[j].b.last)
	})
	target := MaxAccountBudgets * 9 / 10
	for _, c := range cands {
		if len(a.m) <= target {
			break
		}
		delete(a.m, c.k)
	}
}

// The global budget of failed API-key attempts. Keys are 256-bit secrets,
// so guessing one is hopeless, but each attempt costs a store read and an
// audit record; a per-source lockout does not bound attackers who rotate
// addresses, this does.
const (
	// APIKeyFailureRate is the sustained number of failed API-key
	// attempts per second, from all sources together, after which API-key
	// attempts from sources without a recent successful login are refused
	// (429 with Retry-After) before the key is looked at.
	APIKeyFailureRate = 1
	// APIKeyFailureBurst is how many failed API-key attempts may come at
	// once before APIKeyFailureRate applies.
	APIKeyFailureBurst = 100
	// KnownKeySourceTTL is how long a source stays exempt from the global
	// budget after a successful login (API key or password) from it.
	KnownKeySourceTTL = 24 * time.Hour
	// MaxKnownKeySources bounds the sources remembered as exempt; the
	// longest unused is forgotten first.
	MaxKnownKeySources = 4096
)

// keyBudget is a token bucket of failed API-key attempts shared by all
// sources, with the sources of recent successful logins exempt.
type keyBudget struct {
	mu     sync.Mutex
	tokens float64
	at     time.Time
	known  map[string]time.Time // source → last successful login
}

// refill adds the tokens earned since the last call. Called with k.mu held.
func (k *keyBudget) refill(now time.Time) {
	if k.at.IsZero() {
		k.tokens, k.at = APIKeyFailureBurst, now
		return
	}
	if d := now.Sub(k.at); d > 0 {
		k.tokens = min(float64(APIKeyFailureBurst), k.tokens+d.Seconds()*APIKeyFailureRate)
		k.at = now
	}
}

// begin starts an API-key attempt from source. Unless the source is
// known, it takes a token (given back if the key is good); without one the
// attempt is refused until the returned time.
func (k *keyBudget) begin(source string, now time.Time) (charged bool, until time.Time, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, known := k.known[source]; known && now.Sub(t) < KnownKeySourceTTL {
		return false, time.Time{}, true
	}
	k.refill(now)
	if k.tokens < 1 {
		wait := time.Duration((1 - k.tokens) / APIKeyFailureRate * float64(time.Second))
		return false, now.Add(wait), false
	}
	k.tokens--
	return true, time.Time{}, true
}

// giveBack returns the token of an attempt that did not fail.
func (k *keyBudget) giveBack(charged bool) {
	if !charged {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens = min(float64(APIKeyFailureBurst), k.tokens+1)
}

// remember exempts source after a successful login from it.
func (k *keyBudget) remember(source string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.known == nil {
		k.known = map[string]time.Time{}
	}
	if _, ok := k.known[source]; !ok && len(k.known) >= MaxKnownKeySources {
		var oldest string
		var at time.Time
		for s, t := range k.known {
			if oldest == "" || t.Before(at) {
				oldest, at = s, t
			}
		}
		delete(k.known, oldest)
	}
	k.known[source] = now
}
