package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// rotating returns the i-th of a series of source addresses that changes
// every `every` attempts, as an attacker with many addresses sends them.
func rotating(i, every int) string {
	n := i / every
	return fmt.Sprintf("127.%d.%d.%d:40000", 1+n/65536%250, n/256%256, n%256)
}

// TestGuessingFromRotatingSources reproduces issue 15, item 5: a new source
// address every 3 guesses gave about 3,800 password guesses per 10 minutes
// against bal, since the lockout counted per account and source. Now the
// account's budget across all sources slows and then locks the guessing,
// while the real administrator, from the source of their last successful
// login, still logs in.
func TestGuessingFromRotatingSources(t *testing.T) {
	e := newEnv(t)
	const owner = "198.51.100.7:5000"
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, owner); err != nil {
		t.Fatal(err)
	}
	attack := func(from, guesses int, every time.Duration) (checked, refused int) {
		for i := from; i < from+guesses; i++ {
			_, _, err := e.s.Login(config.FirstAdmin, "guess-"+strconv.Itoa(i), rotating(i, 3))
			switch {
			case errors.Is(err, ErrBadCredentials):
				checked++
			case errors.Is(err, ErrLocked):
				refused++
			default:
				t.Fatalf("guess %d: %v", i, err)
			}
			e.clk.Advance(every)
		}
		return checked, refused
	}
	// The rate of the report: 3,800 guesses in 10 minutes.
	checked, refused := attack(0, 3800, 10*time.Minute/3800)
	t.Logf("10 minutes, 3,800 guesses from %d addresses: %d passwords checked, %d refused", 3800/3, checked, refused)
	if checked > 100 {
		t.Fatalf("%d of 3,800 guesses from rotating addresses were checked in 10 minutes, want at most 100", checked)
	}
	// The owner, from their known source, is not locked out.
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, owner); err != nil {
		t.Fatalf("the owner's known source: %v", err)
	}
	// A new source is refused even with the right password.
	if _, _, err := e.s.Login(config.FirstAdmin, adminPW, "203.0.113.50:1"); !errors.Is(err, ErrLocked) {
		t.Fatalf("right password from a new source while locked: %v, want locked", err)
	}
	// An hour more of guessing gets no further.
	more, _ := attack(3800, 3000, time.Second)
	if checked+more > 100 {
		t.Fatalf("%d guesses checked after another hour, want at most 100 in all", checked+more)
	}
	// The console lifts the lock (fulcrum passwd).
	if _, err := e.s.ResetPassword(config.FirstAdmin, "a-new-password-7"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.Login(config.FirstAdmin, "a-new-password-7", "203.0.113.50:1"); err != nil {
		t.Fatalf("after the console reset: %v", err)
	}
}

// TestAccountBudget checks the stages of the account budget: a growing
// delay after AccountSlowAfter failures, answered with a Retry-After
// before the password is checked; the lock after AccountLockAfter, which
// only the console lifts; and that parallel guesses do not overrun it.
func TestAccountBudget(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", config.RoleOperator)
	n := 0
	guess := func() error {
		n++
		_, _, err := e.s.Login("alice", "wrong-password", rotating(n, 1))
		return err
	}
	for i := range AccountSlowAfter {
		if err := guess(); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	wantAudit(t, e.b.auditLog(), "lockout", true, fmt.Sprintf("%d failed logins in 10m0s from sources not known", AccountSlowAfter))
	// Slowed: one attempt goes through (and sets the delay), the next must
	// wait a second, and the wait grows with every failure.
	if err := guess(); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("first slowed attempt: %v", err)
	}
	var le *LockedError
	if err := guess(); !errors.As(err, &le) || le.Console || le.RetryAfter(e.clk.Now()) != 1 {
		t.Fatalf("attempt within the delay: %v, want a refusal for 1 s", err)
	}
	// The right password from a new source is refused the same way: the
	// password is not even looked at.
	if _, _, err := e.s.Login("alice", pw("alice"), "203.0.113.77:1"); !errors.Is(err, ErrLocked) {
		t.Fatalf("right password within the delay: %v", err)
	}
	e.clk.Advance(time.Second)
	if err := guess(); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the delay: %v", err)
	}
	if err := guess(); !errors.As(err, &le) || le.RetryAfter(e.clk.Now()) != 2 {
		t.Fatalf("the delay did not grow: %v", err)
	}
	// Keep guessing as fast as the delays allow, until the lock.
	start, failures := e.clk.Now(), AccountSlowAfter+2
	for {
		err := guess()
		if errors.Is(err, ErrBadCredentials) {
			failures++
			continue
		}
		if !errors.As(err, &le) {
			t.Fatalf("after %d failures: %v", failures, err)
		}
		if le.Console {
			break
		}
		if wait := le.Until.Sub(e.clk.Now()); wait > AccountMaxDelay {
			t.Fatalf("after %d failures: a delay of %v", failures, wait)
		}
		e.clk.Advance(le.Until.Sub(e.clk.Now()))
	}
	t.Logf("guessing as fast as the delays allow: locked after %d failures in %v", failures, e.clk.Now().Sub(start).Round(time.Second))
	if failures > AccountLockAfter || !strings.Contains(le.Error(), "fulcrum passwd") {
		t.Fatalf("locked after %d failures (%v), want %d", failures, le, AccountLockAfter)
	}
	wantAudit(t, e.b.auditLog(), "lockout", true, "locked for logins from new sources until lifted at the console")
	// It does not end by itself.
	e.clk.Advance(24 * time.Hour)
	if err := guess(); !errors.As(err, &le) || !le.Console {
		t.Fatalf("a day later: %v, want still locked", err)
	}
	// UnlockAccount needs the users permission, and lifts it.
	if _, err := e.s.UnlockAccount(Principal{User: "alice", Role: config.RoleOperator}, "", "alice"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("UnlockAccount by an operator: %v", err)
	}
	if was, err := e.s.UnlockAccount(e.admin, "192.0.2.1:1", "alice"); err != nil || !was {
		t.Fatalf("UnlockAccount = %v, %v", was, err)
	}
	wantAudit(t, e.b.auditLog(), "user.unlock", true, "it was locked")
	if _, _, err := e.s.Login("alice", pw("alice"), "203.0.113.78:1"); err != nil {
		t.Fatalf("after UnlockAccount: %v", err)
	}
	if _, err := e.s.UnlockAccount(e.admin, "", "ghost"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("UnlockAccount(ghost) = %v", err)
	}
}

func TestAccountBudgetParallelGuesses(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	checked := 0
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			_, _, err := e.s.Login(config.FirstAdmin, "wrong-password", rotating(i, 1))
			if errors.Is(err, ErrBadCredentials) {
				mu.Lock()
				checked++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if checked > AccountSlowAfter+1 {
		t.Fatalf("%d of 300 parallel guesses from distinct sources were checked, want at most %d", checked, AccountSlowAfter+1)
	}
}

func TestAccountBudgetUnknownUsersBounded(t *testing.T) {
	var a accountBudgets
	a.m = map[string]*accountBudget{}
	d := a.begin(config.FirstAdmin, "10.0.0.1", t0)
	a.markExists(config.FirstAdmin)
	a.fail(config.FirstAdmin, d, t0)
	for i := range MaxAccountBudgets + 100 {
		name := "nobody" + strconv.Itoa(i)
		a.fail(name, a.begin(name, "10.0.0.2", t0), t0)
	}
	if len(a.m) > MaxAccountBudgets {
		t.Fatalf("%d budgets, want at most %d", len(a.m), MaxAccountBudgets)
	}
	if a.m[config.FirstAdmin] == nil || a.m[config.FirstAdmin].failures(60) != 1 {
		t.Fatal("a flood of unknown names evicted a real account's failures")
	}
}

// moreRE finds the count of an aggregated audit entry.
var moreRE = regexp.MustCompile(`: (\d+) more between`)

// TestBadAPIKeyFloodAudit reproduces issue 15, item 5: bad API keys from
// rotating addresses wrote 50 audit entries a second, and the audit log
// (pruned oldest first) lost its logins. Now repeated failures make one
// entry a minute per kind, with their count and sources, in a share of the
// log of their own.
func TestBadAPIKeyFloodAudit(t *testing.T) {
	const maxAudit = 1000
	st, err := store.Open(t.TempDir(), store.Options{MaxAudit: maxAudit})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := &fakeClock{t: t0}
	s := New(st, Options{Now: clk.Now, BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	if _, err := s.Bootstrap(adminPW); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Login(config.FirstAdmin, adminPW, "198.51.100.7:5000"); err != nil {
		t.Fatal(err)
	}
	before, err := st.Audit(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const attempts = 10_000
	for i := range attempts {
		r := newRequest("GET", rotating(i, 3))
		r.Header.Set("Authorization", fmt.Sprintf("Bearer fk_%016x_%s", i, strings.Repeat("A", 43)))
		if _, err := s.Authenticate(r); !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrLocked) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		clk.Advance(20 * time.Millisecond) // 50 a second
	}
	s.FlushAudit()
	after, err := st.Audit(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	added := len(after) - len(before)
	t.Logf("%d bad API keys from %d addresses in %v: %d audit entries", attempts, attempts/3, 20*time.Millisecond*attempts, added)
	if testing.Verbose() {
		t.Log(dumpAudit(after[:added]))
	}
	if added > 100 {
		t.Fatalf("%d bad API keys made %d audit entries, want at most 100", attempts, added)
	}
	wantAudit(t, after, "login", true, "session opened")

	// Every attempt is accounted for: as its own entry or in a count.
	total := 0
	for _, a := range after[:added] {
		if a.Action != "login" {
			continue
		}
		if m := moreRE.FindStringSubmatch(a.Detail); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
			if !strings.Contains(a.Detail, "sources: ") {
				t.Errorf("aggregated entry without sources: %s", a.Detail)
			}
		} else {
			total++
		}
	}
	if total != attempts {
		t.Fatalf("the entries account for %d attempts, want %d:\n%s", total, attempts, dumpAudit(after[:added]))
	}
}

// TestAPIKeyFloodSparesKnownSources checks the global budget of failed
// API-key attempts: once spent, keys from new sources are refused before
// they are looked at, while a source that logged in before still gets in.
func TestAPIKeyFloodSparesKnownSources(t *testing.T) {
	e := newEnv(t)
	_, secret, err := e.s.CreateAPIKey(e.admin, "", "", "automation")
	if err != nil {
		t.Fatal(err)
	}
	use := func(remote, key string) error {
		r := newRequest("GET", remote)
		r.Header.Set("Authorization", "Bearer "+key)
		_, err := e.s.Authenticate(r)
		return err
	}
	if err := use("10.50.0.1:1", secret); err != nil { // the automation's usual host
		t.Fatal(err)
	}
	bad := 0
	for i := range APIKeyFailureBurst * 3 {
		if errors.Is(use(rotating(i, 3), "fk_0123456789abcdef_"+strings.Repeat("B", 43)), ErrBadCredentials) {
			bad++
		}
	}
	if bad > APIKeyFailureBurst {
		t.Fatalf("%d bad keys were looked at, want at most %d", bad, APIKeyFailureBurst)
	}
	if err := use("10.50.0.1:2", secret); err != nil {
		t.Fatalf("the known source during the flood: %v", err)
	}
	var le *LockedError
	if err := use("10.60.0.1:1", secret); !errors.As(err, &le) || le.RetryAfter(e.clk.Now()) != 1 {
		t.Fatalf("a new source during the flood: %v, want refused for 1 s", err)
	}
	e.clk.Advance(time.Second)
	if err := use("10.60.0.1:1", secret); err != nil {
		t.Fatalf("a new source once the budget refilled: %v", err)
	}
}
