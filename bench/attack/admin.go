package attack

// Attacks on Fulcrum's admin plane (issue 15): password guessing from a
// new source address every few guesses, a flood of bad API keys against
// the audit log, unauthenticated large bodies on the LoadMaster-compatible
// API, and a restore of a forged backup. Each Run function does a whole
// case — setting up what it needs, attacking, measuring and putting back
// what it changed — so that the driver (bench/cmd/reliability) and the fast
// subset (test/reliability) measure the same thing; each report's
// Acceptable says whether the acceptance holds.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// AdminUser is the administrator Fulcrum creates at its first start.
const AdminUser = "bal"

// Sources hands out distinct IPv4 source addresses 127.B.x.y of one /16
// of 127.0.0.0/8 (B fixed, x 0-255, y 1-254) in order, starting again from
// the first after 65,024. It is safe for concurrent use. Linux routes all
// of 127.0.0.0/8 to the loopback interface, so a client can bind any of
// them without configuration.
type Sources struct {
	b byte
	n atomic.Uint32
}

// sourcesPerBlock is the number of addresses a Sources hands out before
// it starts again.
const sourcesPerBlock = 256 * 254

// NewSources returns the addresses 127.b.x.y. b must be 1-254: 127.0.x.y
// holds 127.0.0.1, which the tools' own calls come from.
func NewSources(b byte) *Sources {
	if b == 0 || b == 255 {
		panic("attack: NewSources needs 1-254")
	}
	return &Sources{b: b}
}

// Next returns the next address.
func (s *Sources) Next() net.IP {
	i := (s.n.Add(1) - 1) % sourcesPerBlock
	return net.IPv4(127, s.b, byte(i/254), byte(i%254+1)).To4()
}

// Used returns how many distinct addresses were handed out.
func (s *Sources) Used() int { return int(min(s.n.Load(), sourcesPerBlock)) }

// SourceClient returns an HTTP/1.1 client whose connections come from
// src (nil: the kernel chooses), for an admin plane with a self-signed
// certificate (not verified: a test tool talking to a throw-away one).
// Close its connections with CloseIdle.
func SourceClient(src net.IP, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test tool
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Answer is one answer of the admin plane.
type Answer struct {
	Status int
	Header http.Header
	// Body is the answer's body, at most 64 MiB.
	Body []byte
	// Took is how long the request took, to the end of the body.
	Took time.Duration
}

// Message returns the "error" member of a JSON error body, or the start
// of the body.
func (a *Answer) Message() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(a.Body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(a.Body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// RetryAfter returns the answer's Retry-After in seconds, or -1.
func (a *Answer) RetryAfter() int {
	v, err := strconv.Atoi(strings.TrimSpace(a.Header.Get("Retry-After")))
	if err != nil {
		return -1
	}
	return v
}

// auth sets a request's credentials.
type auth func(*http.Request)

func basicAuth(user, password string) auth {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func bearer(secret string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }
}

// do makes one request to the admin plane at addr.
func do(ctx context.Context, c *http.Client, addr, method, path string, body []byte, contentType string, a auth) (*Answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a != nil {
		a(req)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return &Answer{Status: resp.StatusCode, Header: resp.Header, Body: out, Took: time.Since(start)}, nil
}

// AdminAPI calls Fulcrum's native API (/api/v1) as one user: with HTTP
// Basic until UseNewKey gives it an API key (each Basic call costs the
// server a bcrypt comparison).
type AdminAPI struct {
	addr           string
	c              *http.Client
	user, password string
	key            string
}

// NewAdminAPI returns a client of the admin plane at addr (host:port)
// authenticating as user with password, its connections coming from src
// (nil: the kernel chooses). It makes no call.
func NewAdminAPI(addr, user, password string, src net.IP) *AdminAPI {
	return &AdminAPI{addr: addr, c: SourceClient(src, 60*time.Second), user: user, password: password}
}

// Addr returns the admin plane's host:port.
func (a *AdminAPI) Addr() string { return a.addr }

// Close closes the client's idle connections.
func (a *AdminAPI) Close() { CloseIdle(a.c) }

// UseNewKey creates an API key for the client's user (one Basic call)
// and authenticates every later call with it.
func (a *AdminAPI) UseNewKey(ctx context.Context, description string) error {
	req, err := json.Marshal(map[string]string{"description": description})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	ans, err := a.Call(ctx, http.MethodPost, "/api/v1/api-keys", req)
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	if ans.Status/100 != 2 {
		return fmt.Errorf("create API key: status %d: %s", ans.Status, ans.Message())
	}
	var k struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(ans.Body, &k); err != nil || k.Secret == "" {
		return fmt.Errorf("create API key: no secret in %.200s", ans.Body)
	}
	a.key = k.Secret
	return nil
}

func (a *AdminAPI) auth() auth {
	if a.key != "" {
		return bearer(a.key)
	}
	return basicAuth(a.user, a.password)
}

// Call makes one call with body (nil: none) sent as JSON, and returns the
// answer whatever its status.
func (a *AdminAPI) Call(ctx context.Context, method, path string, body []byte) (*Answer, error) {
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return do(ctx, a.c, a.addr, method, path, body, ct, a.auth())
}

// CallBinary is Call with a body of another content type.
func (a *AdminAPI) CallBinary(ctx context.Context, method, path string, body []byte, contentType string) (*Answer, error) {
	return do(ctx, a.c, a.addr, method, path, body, contentType, a.auth())
}

// call is Call wanting a 2xx answer.
func (a *AdminAPI) call(ctx context.Context, method, path string, body []byte) (*Answer, error) {
	ans, err := a.Call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if ans.Status/100 != 2 {
		return ans, fmt.Errorf("%s %s: status %d: %s", method, path, ans.Status, ans.Message())
	}
	return ans, nil
}

// AuditEntry is one entry of Fulcrum's audit log (GET /api/v1/audit).
type AuditEntry struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	User       string    `json:"user"`
	Source     string    `json:"source"`
	RemoteAddr string    `json:"remoteAddr"`
	Action     string    `json:"action"`
	Detail     string    `json:"detail"`
	Success    bool      `json:"success"`
}

// Audit returns at most limit audit entries (1-1000) with a sequence
// number below before (0: the newest), newest first.
func (a *AdminAPI) Audit(ctx context.Context, before uint64, limit int) ([]AuditEntry, error) {
	path := "/api/v1/audit?limit=" + strconv.Itoa(limit)
	if before > 0 {
		path += "&before=" + strconv.FormatUint(before, 10)
	}
	ans, err := a.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	var list struct {
		Entries []AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(ans.Body, &list); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return list.Entries, nil
}

// NewestAuditSeq returns the sequence number of the newest audit entry
// (0 for an empty log).
func (a *AdminAPI) NewestAuditSeq(ctx context.Context) (uint64, error) {
	es, err := a.Audit(ctx, 0, 1)
	if err != nil || len(es) == 0 {
		return 0, err
	}
	return es[0].Seq, nil
}

// AuditAfter returns the audit entries with a sequence number above seq,
// newest first, paging back 1,000 at a time; it stops after maxEntries,
// and then complete is false.
func (a *AdminAPI) AuditAfter(ctx context.Context, seq uint64, maxEntries int) (out []AuditEntry, complete bool, err error) {
	var before uint64
	for len(out) < maxEntries {
		page, err := a.Audit(ctx, before, 1000)
		if err != nil {
			return out, false, err
		}
		for _, e := range page {
			if e.Seq <= seq {
				return out, true, nil
			}
			out = append(out, e)
		}
		if len(page) < 1000 {
			return out, true, nil
		}
		before = page[len(page)-1].Seq
	}
	return out, false, nil
}

// AuditHas reports whether the entry numbered seq is still in the log.
func (a *AdminAPI) AuditHas(ctx context.Context, seq uint64) (bool, error) {
	es, err := a.Audit(ctx, seq+1, 1)
	if err != nil {
		return false, err
	}
	return len(es) == 1 && es[0].Seq == seq, nil
}

// findAudit returns the newest of the last 20 entries that match.
func (a *AdminAPI) findAudit(ctx context.Context, match func(AuditEntry) bool) (AuditEntry, error) {
	es, err := a.Audit(ctx, 0, 20)
	if err != nil {
		return AuditEntry{}, err
	}
	for _, e := range es {
		if match(e) {
			return e, nil
		}
	}
	return AuditEntry{}, errors.New("no such entry among the 20 newest of the audit log")
}

// CPUSeconds returns the user and system CPU time process pid has used,
// in seconds (/proc/PID/stat, 100 ticks a second), or -1.
func CPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (state is field 3, utime 14, stime 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (u + s) / 100
}

// ---------------------------------------------------------------------
// Password guessing across addresses

// Acceptance bounds of the control-plane cases (issue 15).
const (
	// MaxGuessesPerTenMinutes bounds the password guesses the server may
	// evaluate for one account in 10 minutes, whatever the number of
	// source addresses (the issue measured about 3,800).
	MaxGuessesPerTenMinutes = 200
	// MaxAuditPerSecond bounds the audit entries a flood of bad
	// credentials may add per second, whatever its rate (the issue
	// measured 50).
	MaxAuditPerSecond = 5
	// MaxBodyGrowthKiB bounds the growth of the server's resident set
	// under unauthenticated large bodies (the issue measured +1.6 GB).
	MaxBodyGrowthKiB = 64 << 10
)

// GuessConfig describes a guessing attack.
type GuessConfig struct {
	// Addr is the admin plane's host:port.
	Addr string
	// User is the account guessed; Password its real password, which only
	// the real administrator uses.
	User, Password string
	// Workers guess at once, each from its own address (default 4: the
	// server compares passwords on its CPUs, so more only make each guess
	// wait longer).
	Workers int
	// PerSource is the number of guesses from one address before moving
	// to the next (default 3).
	PerSource int
	// Window is how long the attack lasts at least. When the server
	// refuses a guess early within MaxWindow (default: Window), the attack
	// goes on until Observe after that first refusal, so that the pace the
	// server sets once a budget is used up is seen however long it took to
	// use it up; otherwise it ends at MaxWindow. So it lasts at most
	// MaxWindow + Observe.
	Window, Observe, MaxWindow time.Duration
	// Sources are the attackers' addresses.
	Sources *Sources
	// AdminSource is the real administrator's fixed address; AdminEvery
	// how often it logs in during the attack (default 1 s).
	AdminSource net.IP
	AdminEvery  time.Duration
	// Login guesses with POST /api/v1/login (a browser session) instead
	// of HTTP Basic on GET /api/v1/status; the real administrator logs
	// in the same way.
	Login bool
	// PID is the server's process, for its CPU time (0: not measured).
	PID int
}

// GuessResult is what a guessing attack measured. Times are seconds
// since the attack began.
type GuessResult struct {
	WindowS float64 `json:"window_s"`
	Sources int     `json:"sources"`
	// Sent counts the guesses sent; Answered those answered.
	Sent     int `json:"sent"`
	Answered int `json:"answered"`
	// Evaluated counts the 401 answers: the password was compared.
	// EvaluatedSecondHalf counts those of the second half of the window;
	// LastEvaluatedS is when the last one came.
	Evaluated           int     `json:"evaluated"`
	EvaluatedSecondHalf int     `json:"evaluated_second_half"`
	LastEvaluatedS      float64 `json:"last_evaluated_s"`
	// Refused counts the guesses refused before any comparison (429, 423,
	// 403), with the range of their Retry-After (-1: none), when the
	// first and the last came, and the last one's Retry-After.
	Refused        int         `json:"refused"`
	RetryAfterMin  int         `json:"retry_after_min_s"`
	RetryAfterMax  int         `json:"retry_after_max_s"`
	FirstRefusedS  float64     `json:"first_refused_s"`
	LastRefusedS   float64     `json:"last_refused_s"`
	LastRetryAfter int         `json:"last_retry_after_s"`
	Statuses       map[int]int `json:"statuses"`
	// Unanswered counts guesses cut at the end of the window; Errors
	// other failures.
	Unanswered int            `json:"unanswered"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// EvalP50ms and EvalP99ms are the times to a 401.
	EvalP50ms float64 `json:"eval_p50_ms"`
	EvalP99ms float64 `json:"eval_p99_ms"`
	// CPUSeconds is the server's CPU time during the window (-1: not
	// measured).
	CPUSeconds float64 `json:"cpu_s"`
	// PerTenMinutes extrapolates Evaluated to 10 minutes
	// (GuessesPerTenMinutes).
	PerTenMinutes float64 `json:"per_ten_minutes"`
	// AdminBefore, AdminAfter and AdminDuring are the statuses of the real
	// administrator's logins before, after and during the attack (0: no
	// answer, whose reason is in AdminErrors).
	AdminBefore int            `json:"admin_before"`
	AdminDuring map[int]int    `json:"admin_during"`
	AdminAfter  int            `json:"admin_after"`
	AdminErrors map[string]int `json:"admin_errors,omitempty"`
	AdminP50ms  float64        `json:"admin_p50_ms"`
	AdminMaxMs  float64        `json:"admin_max_ms"`
}

// refusedEarly reports whether a status refuses a login before comparing
// the password.
func refusedEarly(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusLocked || status == http.StatusForbidden
}

// AdminLockedOut reports whether the real administrator was refused
// (or not answered) at any time.
func (r GuessResult) AdminLockedOut() bool {
	if r.AdminBefore != http.StatusOK || r.AdminAfter != http.StatusOK {
		return true
	}
	for s, n := range r.AdminDuring {
		if s != http.StatusOK && n > 0 {
			return true
		}
	}
	return false
}

// Acceptable reports whether issue 15's acceptance holds: at most
// MaxGuessesPerTenMinutes guesses evaluated per 10 minutes, and the real
// administrator never refused.
func (r GuessResult) Acceptable() (bool, string) {
	var why []string
	if r.PerTenMinutes > MaxGuessesPerTenMinutes {
		why = append(why, fmt.Sprintf("%.0f guesses evaluated per 10 minutes (%d in %.1f s, %d refused early), above %d",
			r.PerTenMinutes, r.Evaluated, r.WindowS, r.Refused, MaxGuessesPerTenMinutes))
	}
	if r.AdminLockedOut() {
		why = append(why, fmt.Sprintf("the real administrator was refused: before %d, during %v, after %d %v",
			r.AdminBefore, r.AdminDuring, r.AdminAfter, r.AdminErrors))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// GuessesPerTenMinutes extrapolates the guesses a server evaluated in an
// attack of r.WindowS seconds to 10 minutes, at the pace it set at the
// end, held constant:
//
//   - when the server refused guesses early after the last one it
//     evaluated and the last refusal said when to come back (Retry-After),
//     the next guess is evaluated then, and the following ones each after
//     the gap from the last evaluated guess to then;
//   - when it refused without saying when, it evaluates no more;
//   - otherwise (it still evaluated everything), at the rate of the
//     second half of the window.
//
// A server that slows guessing more and more (or locks the account) is
// thus overestimated, never underestimated.
func GuessesPerTenMinutes(r GuessResult) float64 {
	const tenMin = 600.0
	e := float64(r.Evaluated)
	switch {
	case r.WindowS >= tenMin:
		return e * tenMin / r.WindowS
	case r.Refused > 0 && r.LastRefusedS >= r.LastEvaluatedS:
		if r.LastRetryAfter < 0 {
			return e
		}
		next := r.LastRefusedS + float64(r.LastRetryAfter)
		if next >= tenMin {
			return e
		}
		gap := max(next-r.LastEvaluatedS, 0.001)
		return e + 1 + math.Floor((tenMin-next)/gap)
	}
	return e + float64(r.EvaluatedSecondHalf)/(r.WindowS/2)*(tenMin-r.WindowS)
}

// loginAttempt makes one login from c as user with pw and returns the
// answer.
func loginAttempt(ctx context.Context, c *http.Client, addr, user, pw string, session bool) (*Answer, error) {
	if session {
		body, err := json.Marshal(map[string]string{"user": user, "password": pw})
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		return do(ctx, c, addr, http.MethodPost, "/api/v1/login", body, "application/json", nil)
	}
	return do(ctx, c, addr, http.MethodGet, "/api/v1/status", nil, "", basicAuth(user, pw))
}

// randomText returns n random bytes in unpadded base64url.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxGuessSources bounds the addresses one attack uses.
const maxGuessSources = 60000

// RunGuessing guesses c.User's password from a new source address every
// c.PerSource guesses, with c.Workers at once, for the window (see
// GuessConfig.Window), while the real administrator logs in from c.AdminSource
// every c.AdminEvery (once before the attack, which must succeed, and once
// after). Guesses in flight when the window ends are cut. It fails only
// when the real administrator cannot log in before the attack.
func RunGuessing(ctx context.Context, c GuessConfig) (GuessResult, error) {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.PerSource <= 0 {
		c.PerSource = 3
	}
	if c.AdminEvery <= 0 {
		c.AdminEvery = time.Second
	}
	c.MaxWindow = max(c.MaxWindow, c.Window)
	res := GuessResult{Statuses: map[int]int{}, ErrorKinds: map[string]int{}, AdminDuring: map[int]int{},
		AdminErrors: map[string]int{}, RetryAfterMin: -1, RetryAfterMax: -1, LastRetryAfter: -1, FirstRefusedS: -1,
		LastRefusedS: -1, CPUSeconds: -1}
	admin := SourceClient(c.AdminSource, 15*time.Second)
	defer CloseIdle(admin)
	var adminLat []time.Duration
	adminLogin := func() int {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		ans, err := loginAttempt(actx, admin, c.Addr, c.User, c.Password, c.Login)
		if err != nil {
			res.AdminErrors[ErrKind(err)]++
			return 0
		}
		adminLat = append(adminLat, ans.Took)
		return ans.Status
	}
	if res.AdminBefore = adminLogin(); res.AdminBefore != http.StatusOK {
		return res, fmt.Errorf("the real administrator cannot log in before the attack: status %d %v", res.AdminBefore, res.AdminErrors)
	}
	adminLat = adminLat[:0]

	cpu0 := -1.0
	if c.PID > 0 {
		cpu0 = CPUSeconds(c.PID)
	}
	start := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var evalAt []float64 // when each 401 came
	var evalLat []time.Duration
	var sent atomic.Int64
	var admins sync.WaitGroup
	admins.Add(1)
	go func() { // the real administrator, during the attack
		defer admins.Done()
		t := time.NewTicker(c.AdminEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			s := adminLogin()
			mu.Lock()
			res.AdminDuring[s]++
			mu.Unlock()
		}
	}()
	go func() { // the end of the window
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			end := c.MaxWindow
			if first := res.FirstRefusedS; first >= 0 && first <= c.MaxWindow.Seconds() {
				end = max(c.Window, time.Duration(first*float64(time.Second))+c.Observe)
			}
			mu.Unlock()
			if time.Since(start) >= end {
				cancel()
				return
			}
		}
	}()
	var workers sync.WaitGroup
	for range c.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for wctx.Err() == nil && c.Sources.Used() < maxGuessSources {
				hc := SourceClient(c.Sources.Next(), 0)
				for i := 0; i < c.PerSource && wctx.Err() == nil; i++ {
					sent.Add(1)
					ans, err := loginAttempt(wctx, hc, c.Addr, c.User, "guess-"+randomText(9), c.Login)
					at := time.Since(start).Seconds()
					mu.Lock()
					switch {
					case err != nil && wctx.Err() != nil:
						res.Unanswered++
					case err != nil:
						res.Errors++
						res.ErrorKinds[ErrKind(err)]++
					default:
						res.Answered++
						res.Statuses[ans.Status]++
						switch {
						case ans.Status == http.StatusUnauthorized:
							res.Evaluated++
							evalAt = append(evalAt, at)
							evalLat = append(evalLat, ans.Took)
							res.LastEvaluatedS = max(res.LastEvaluatedS, at)
						case refusedEarly(ans.Status):
							res.Refused++
							ra := ans.RetryAfter()
							if ra >= 0 {
								if res.RetryAfterMin < 0 || ra < res.RetryAfterMin {
									res.RetryAfterMin = ra
								}
								res.RetryAfterMax = max(res.RetryAfterMax, ra)
							}
							if res.FirstRefusedS < 0 {
								res.FirstRefusedS = at
							}
							if at >= res.LastRefusedS {
								res.LastRefusedS, res.LastRetryAfter = at, ra
							}
						}
					}
					mu.Unlock()
				}
				CloseIdle(hc)
			}
		}()
	}
	workers.Wait()
	res.WindowS = time.Since(start).Seconds()
	if cpu0 >= 0 {
		if cpu1 := CPUSeconds(c.PID); cpu1 >= 0 {
			res.CPUSeconds = math.Round((cpu1-cpu0)*100) / 100
		}
	}
	cancel()
	admins.Wait()
	for _, at := range evalAt {
		if at >= res.WindowS/2 {
			res.EvaluatedSecondHalf++
		}
	}
	res.Sent = int(sent.Load())
	res.Sources = c.Sources.Used()
	res.AdminAfter = adminLogin()
	l := Summarise(evalLat, nil)
	res.EvalP50ms, res.EvalP99ms = l.P50ms, l.P99ms
	a := Summarise(adminLat, nil)
	res.AdminP50ms, res.AdminMaxMs = a.P50ms, a.MaxMs
	res.PerTenMinutes = math.Round(GuessesPerTenMinutes(res))
	return res, nil
}

// ---------------------------------------------------------------------
// Audit flood

// AuditFloodConfig describes a flood of bad API keys.
type AuditFloodConfig struct {
	// API is an administrator's client (an API key is best), which reads
	// the audit log and makes the configuration change; Password is its
	// user's password, for the session login before the flood.
	API      *AdminAPI
	Password string
	// Workers send at once (default 32), each PerSource bad keys
	// (default 3) from one address before moving to the next.
	Workers, PerSource int
	// Window is how long the flood lasts.
	Window time.Duration
	// Sources are the attackers' addresses; AdminSource the address of
	// the administrator's login before the flood.
	Sources     *Sources
	AdminSource net.IP
	// MarkerPort is the port of the disabled service created as the
	// configuration change (and deleted afterwards).
	MarkerPort int
	// Settle, if not nil, is called after the flood, before the log is
	// read back: restarting the server there makes it write the entries
	// it defers (aggregated failures are written when their minute ends,
	// or when the server stops). Without it the log is read a second
	// after the flood.
	Settle func(ctx context.Context) error
}

// AuditFloodResult is what an audit flood measured.
type AuditFloodResult struct {
	WindowS float64 `json:"window_s"`
	Sources int     `json:"sources"`
	// Sent counts the bad keys sent, Answered those answered, by status.
	Sent       int            `json:"sent"`
	Answered   int            `json:"answered"`
	Statuses   map[int]int    `json:"statuses"`
	Unanswered int            `json:"unanswered"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// SeqAdded is how far the audit log's sequence numbers moved from the
	// flood's start to the reading (entries appended, whatever they are);
	// InLog how many entries newer than the flood's start the log holds
	// then (InLogComplete: all were counted), of which FloodEntries are
	// the flood's: failures and lockouts.
	SeqAdded      uint64         `json:"seq_added"`
	InLog         int            `json:"in_log"`
	InLogComplete bool           `json:"in_log_complete"`
	FloodEntries  int            `json:"flood_entries"`
	ByAction      map[string]int `json:"by_action"`
	// Settled is true when Settle ran (the server was restarted).
	Settled bool `json:"settled"`
	// Sample is the newest entry the flood added, if any.
	Sample *AuditEntry `json:"sample,omitempty"`
	// LoginSeq and ChangeSeq are the administrator's login and the
	// configuration change made just before the flood; LoginKept and
	// ChangeKept whether they are still in the log after it.
	LoginSeq   uint64 `json:"login_seq"`
	ChangeSeq  uint64 `json:"change_seq"`
	LoginKept  bool   `json:"login_kept"`
	ChangeKept bool   `json:"change_kept"`
}

// EntriesPerSecond is the flood's audit entries per second of flood.
func (r AuditFloodResult) EntriesPerSecond() float64 {
	return float64(r.FloodEntries) / max(r.WindowS, 0.001)
}

// AttemptsPerSecond is the bad keys answered per second.
func (r AuditFloodResult) AttemptsPerSecond() float64 {
	return float64(r.Answered) / max(r.WindowS, 0.001)
}

// Acceptable reports whether issue 15's acceptance holds: at most
// MaxAuditPerSecond entries appended per second of flood, and the login
// and change made before it still in the log.
func (r AuditFloodResult) Acceptable() (bool, string) {
	var why []string
	if r.EntriesPerSecond() > MaxAuditPerSecond {
		why = append(why, fmt.Sprintf("%.1f audit entries per second (%d for %d bad keys in %.1f s), above %d",
			r.EntriesPerSecond(), r.FloodEntries, r.Answered, r.WindowS, MaxAuditPerSecond))
	}
	if !r.LoginKept || !r.ChangeKept {
		why = append(why, fmt.Sprintf("pushed out of the log: login entry %d kept %v, change entry %d kept %v",
			r.LoginSeq, r.LoginKept, r.ChangeSeq, r.ChangeKept))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// badKey returns a well-formed API-key secret that matches no key.
func badKey() string {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return "fk_" + hex.EncodeToString(id) + "_" + randomText(32)
}

// maxAuditRead bounds the audit entries read back after a flood.
const maxAuditRead = 200000

// RunAuditFlood logs the administrator in (a session, from AdminSource)
// and makes a configuration change (a disabled service), then sends bad
// API keys (Authorization: Bearer) from a new address every PerSource
// keys for the window, calls Settle, and reads the audit log back: how
// many entries the flood added and whether the login and change entries
// are still there. The service is deleted afterwards.
func RunAuditFlood(ctx context.Context, c AuditFloodConfig) (AuditFloodResult, error) {
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.PerSource <= 0 {
		c.PerSource = 3
	}
	res := AuditFloodResult{Statuses: map[int]int{}, ErrorKinds: map[string]int{}, ByAction: map[string]int{}}
	addr := c.API.Addr()
	admin := SourceClient(c.AdminSource, 30*time.Second)
	defer CloseIdle(admin)
	ans, err := loginAttempt(ctx, admin, addr, c.API.user, c.Password, true)
	if err != nil {
		return res, fmt.Errorf("administrator's login: %w", err)
	}
	if ans.Status != http.StatusOK {
		return res, fmt.Errorf("administrator's login: status %d: %s", ans.Status, ans.Message())
	}
	src := c.AdminSource.String()
	login, err := c.API.findAudit(ctx, func(e AuditEntry) bool {
		return e.Action == "login" && e.Success && e.User == c.API.user && e.RemoteAddr == src
	})
	if err != nil {
		return res, fmt.Errorf("the administrator's login in the audit log: %w", err)
	}
	res.LoginSeq = login.Seq
	marker := fmt.Sprintf(`{"nickname":"audit-flood-marker","address":"127.0.0.1","port":%d,"protocol":"tcp","type":"gen","enabled":false,"realServers":[{"address":"127.0.0.1","port":%d}]}`,
		c.MarkerPort, c.MarkerPort)
	ans, err = c.API.call(ctx, http.MethodPost, "/api/v1/virtual-services", []byte(marker))
	if err != nil {
		return res, fmt.Errorf("configuration change: %w", err)
	}
	var vs struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal(ans.Body, &vs); err != nil || vs.ID == 0 {
		return res, fmt.Errorf("configuration change: no service ID in %.200s", ans.Body)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = c.API.Call(dctx, http.MethodDelete, "/api/v1/virtual-services/"+strconv.Itoa(vs.ID), nil)
	}()
	change, err := c.API.findAudit(ctx, func(e AuditEntry) bool { return e.Action == "config" && e.Success })
	if err != nil {
		return res, fmt.Errorf("the configuration change in the audit log: %w", err)
	}
	res.ChangeSeq = change.Seq
	seq0, err := c.API.NewestAuditSeq(ctx)
	if err != nil {
		return res, err
	}

	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, c.Window)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil && c.Sources.Used() < maxGuessSources {
				hc := SourceClient(c.Sources.Next(), 0)
				for i := 0; i < c.PerSource && wctx.Err() == nil; i++ {
					sent.Add(1)
					ans, err := do(wctx, hc, addr, http.MethodGet, "/api/v1/status", nil, "", bearer(badKey()))
					mu.Lock()
					switch {
					case err != nil && wctx.Err() != nil:
						res.Unanswered++
					case err != nil:
						res.Errors++
						res.ErrorKinds[ErrKind(err)]++
					default:
						res.Answered++
						res.Statuses[ans.Status]++
					}
					mu.Unlock()
				}
				CloseIdle(hc)
			}
		}()
	}
	wg.Wait()
	res.WindowS = time.Since(start).Seconds()
	res.Sent = int(sent.Load())
	res.Sources = c.Sources.Used()
	if c.Settle != nil {
		if err := c.Settle(ctx); err != nil {
			return res, fmt.Errorf("after the flood: %w", err)
		}
		c.API.Close() // its connections were to the server stopped
		res.Settled = true
	} else {
		time.Sleep(time.Second)
	}
	seq1, err := c.API.NewestAuditSeq(ctx)
	if err != nil {
		return res, fmt.Errorf("after the flood: %w", err)
	}
	res.SeqAdded = seq1 - seq0
	added, complete, err := c.API.AuditAfter(ctx, seq0, maxAuditRead)
	if err != nil {
		return res, fmt.Errorf("after the flood: %w", err)
	}
	res.InLog, res.InLogComplete = len(added), complete
	for i, e := range added {
		if !e.Success || e.Action == "lockout" {
			res.FloodEntries++
		}
		res.ByAction[e.Action]++
		if i == 0 {
			res.Sample = &added[i]
		}
	}
	if res.LoginKept, err = c.API.AuditHas(ctx, res.LoginSeq); err != nil {
		return res, err
	}
	if res.ChangeKept, err = c.API.AuditHas(ctx, res.ChangeSeq); err != nil {
		return res, err
	}
	return res, nil
}

// ---------------------------------------------------------------------
// Unauthenticated large bodies

// BodiesConfig describes the unauthenticated-bodies attack.
type BodiesConfig struct {
	// API is an administrator's client, which enables the
	// LoadMaster-compatible API for the attack (and puts the option back).
	API *AdminAPI
	// PID is the server's process.
	PID int
	// Conns bodies are sent at once in each round (default 25), each of
	// Size bytes (default 16 MiB), each from its own address of Sources.
	Conns   int
	Size    int64
	Sources *Sources
	// SampleEvery is the RSS sampling interval (default 100 ms).
	SampleEvery time.Duration
	// AfterWait is how long to wait for RSS to come back within 1.2× of
	// before (default 20 s).
	AfterWait time.Duration
}

// BodyRound is one round of large bodies.
type BodyRound struct {
	Name     string      `json:"name"`
	Sent     int         `json:"sent"`
	Statuses map[int]int `json:"statuses"`
	// NoAnswer counts requests that got no answer, by error.
	NoAnswer map[string]int `json:"no_answer,omitempty"`
	// BytesSent is the body bytes the clients managed to write, in all.
	BytesSent int64   `json:"bytes_sent"`
	Seconds   float64 `json:"seconds"`
	// PeakKiB is the highest RSS sampled during the round.
	PeakKiB int64 `json:"peak_kib"`
}

// BodiesResult is what the unauthenticated-bodies attack measured.
type BodiesResult struct {
	APIWasEnabled bool        `json:"api_was_enabled"`
	BeforeKiB     int64       `json:"before_kib"`
	PeakKiB       int64       `json:"peak_kib"`
	AfterKiB      int64       `json:"after_kib"`
	AfterWaitS    float64     `json:"after_wait_s"`
	Samples       int         `json:"samples"`
	Rounds        []BodyRound `json:"rounds"`
}

// GrowthKiB is the peak RSS minus the RSS before.
func (r BodiesResult) GrowthKiB() int64 { return r.PeakKiB - r.BeforeKiB }

// CameBack reports whether RSS came back within 1.2× of before.
func (r BodiesResult) CameBack() bool { return r.AfterKiB*10 <= r.BeforeKiB*12 }

// Acceptable reports whether issue 15's acceptance holds: peak growth at
// most MaxBodyGrowthKiB, and memory back within 1.2× afterwards.
func (r BodiesResult) Acceptable() (bool, string) {
	var why []string
	if r.GrowthKiB() > MaxBodyGrowthKiB {
		why = append(why, fmt.Sprintf("RSS grew by %d MiB (from %d to %d MiB), above %d MiB",
			r.GrowthKiB()>>10, r.BeforeKiB>>10, r.PeakKiB>>10, MaxBodyGrowthKiB>>10))
	}
	if !r.CameBack() {
		why = append(why, fmt.Sprintf("RSS %d MiB %.0f s after, %.2f× the %d MiB before (want ≤ 1.2×)",
			r.AfterKiB>>10, r.AfterWaitS, float64(r.AfterKiB)/float64(max(r.BeforeKiB, 1)), r.BeforeKiB>>10))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// rssSampler samples a process's RSS until stopped (at most 10 minutes).
type rssSampler struct {
	peak atomic.Int64
	n    atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.Now().Add(10 * time.Minute)
		for time.Now().Before(end) {
			v := RSSKiB(pid)
			s.n.Add(1)
			if v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end stops the sampler and returns the peak.
func (s *rssSampler) end() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// largePost sends one request of total body bytes on a new TLS
// connection from src, writing the head and the body while it reads the
// answer, and returns the status (0: none), the body bytes written and
// the error that ended it without an answer.
func largePost(ctx context.Context, addr string, src net.IP, head string, body io.Reader) (int, int64, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, fmt.Errorf("dial: %w", err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // a test tool
	defer func() { _ = c.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := c.HandshakeContext(ctx); err != nil {
		return 0, 0, fmt.Errorf("tls: %w", err)
	}
	var written atomic.Int64
	go func() {
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, rerr := body.Read(buf)
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
				written.Add(int64(n))
			}
			if rerr != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, written.Load(), fmt.Errorf("no answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, written.Load(), nil
}

// paddedBody returns a reader of exactly size bytes: prefix, then 'A's,
// then suffix.
func paddedBody(prefix, suffix string, size int64) io.Reader {
	pad := max(size-int64(len(prefix))-int64(len(suffix)), 0)
	return io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeatReader('A'), pad), strings.NewReader(suffix))
}

// repeatReader reads the byte c forever.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// warmBody is the size of the warm-up bodies of RunUnauthBodies.
const warmBody = 4 << 10

// RunUnauthBodies enables the LoadMaster-compatible API, then, after a
// warm-up round of Conns small bodies, sends Conns
// concurrent POSTs of Size bytes without credentials to /accessv2 (a JSON
// object with a long member), and a second round to /access/addvs (a form
// with a long field), sampling the server's RSS every SampleEvery; then it
// waits up to AfterWait for RSS to come back within 1.2× of before and
// puts enableApi back as it was.
func RunUnauthBodies(ctx context.Context, c BodiesConfig) (BodiesResult, error) {
	if c.Conns <= 0 {
		c.Conns = 25
	}
	if c.Size <= 0 {
		c.Size = 16 << 20
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 100 * time.Millisecond
	}
	if c.AfterWait <= 0 {
		c.AfterWait = 20 * time.Second
	}
	var res BodiesResult
	ans, err := c.API.call(ctx, http.MethodGet, "/api/v1/options", nil)
	if err != nil {
		return res, fmt.Errorf("options: %w", err)
	}
	var opts struct {
		EnableAPI bool `json:"enableApi"`
	}
	if err := json.Unmarshal(ans.Body, &opts); err != nil {
		return res, fmt.Errorf("options: %w", err)
	}
	res.APIWasEnabled = opts.EnableAPI
	if !opts.EnableAPI {
		if _, err := c.API.call(ctx, http.MethodPatch, "/api/v1/options", []byte(`{"enableApi":true}`)); err != nil {
			return res, fmt.Errorf("enable the LoadMaster API: %w", err)
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = c.API.Call(rctx, http.MethodPatch, "/api/v1/options", []byte(`{"enableApi":false}`))
		}()
	}
	addr := c.API.Addr()
	// A warm-up round of small bodies, so that what 25 connections cost
	// (TLS state, goroutines, buffers) is in the figure before and only
	// the large bodies' cost is measured.
	warm := fmt.Sprintf("POST /accessv2 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		addr, warmBody)
	var wg sync.WaitGroup
	for range c.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = largePost(ctx, addr, c.Sources.Next(), warm, paddedBody(`{"cmd":"listvs","x":"`, `"}`, warmBody))
		}()
	}
	wg.Wait()
	time.Sleep(time.Second)
	res.BeforeKiB = RSSKiB(c.PID)
	rounds := []struct {
		name, path, contentType string
		body                    func() io.Reader
	}{
		{"v2 /accessv2 JSON", "/accessv2", "application/json", func() io.Reader {
			return paddedBody(`{"cmd":"addvs","vs":"127.9.9.9","port":"80","prot":"tcp","nickname":"`, `"}`, c.Size)
		}},
		{"v1 /access/addvs form", "/access/addvs", "application/x-www-form-urlencoded", func() io.Reader {
			return paddedBody("vs=127.9.9.9&port=80&prot=tcp&nickname=", "", c.Size)
		}},
	}
	for _, rd := range rounds {
		s := sampleRSS(c.PID, c.SampleEvery)
		r := BodyRound{Name: rd.name, Sent: c.Conns, Statuses: map[int]int{}, NoAnswer: map[string]int{}}
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
			rd.path, addr, rd.contentType, c.Size)
		var mu sync.Mutex
		start := time.Now()
		for range c.Conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, n, err := largePost(ctx, addr, c.Sources.Next(), head, rd.body())
				mu.Lock()
				defer mu.Unlock()
				r.BytesSent += n
				if err != nil {
					r.NoAnswer[ErrKind(err)]++
					return
				}
				r.Statuses[status]++
			}()
		}
		wg.Wait()
		r.Seconds = math.Round(time.Since(start).Seconds()*100) / 100
		time.Sleep(3 * c.SampleEvery) // memory held just after the answers
		r.PeakKiB = s.end()
		res.Samples += int(s.n.Load())
		res.PeakKiB = max(res.PeakKiB, r.PeakKiB)
		res.Rounds = append(res.Rounds, r)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	t0 := time.Now()
	for {
		res.AfterKiB = RSSKiB(c.PID)
		if res.CameBack() || time.Since(t0) >= c.AfterWait || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.AfterWaitS = math.Round(time.Since(t0).Seconds()*10) / 10
	return res, nil
}

// ---------------------------------------------------------------------
// Forged restore

// Identity is the administrator a forged backup adds, with an API key.
type Identity struct {
	User, Password string
	// KeyID and KeySecret are its API key's.
	KeyID, KeySecret string
}

// NewIdentity returns an administrator user with a random password and
// API key.
func NewIdentity(user string) Identity {
	id := make([]byte, 8)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	keyID := hex.EncodeToString(id)
	return Identity{User: user, Password: "forged-" + randomText(12), KeyID: keyID, KeySecret: "fk_" + keyID + "_" + randomText(32)}
}

// backupPayloadFields are the fields a backup's checksum covers, in
// order (internal/store/backup.go describes the format).
var backupPayloadFields = []string{"format", "version", "created", "revision", "config", "users", "apiKeys"}

// ForgeBackup adds the administrator id (its password hashed with bcrypt
// cost 4) and its API key to a backup file (gzip'd JSON or plain), and
// recomputes the checksum as the format defines it: the SHA-256 of
// {"format":…,"version":…,…,"apiKeys":…} with each field's value
// compacted. The signature is kept as it was (it then no longer matches)
// unless dropSignature, which removes it. The forged file is
// gzip-compressed.
func ForgeBackup(backup []byte, id Identity, dropSignature bool) ([]byte, error) {
	data := backup
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
		if data, err = io.ReadAll(io.LimitReader(zr, 128<<20)); err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("forge: not a backup: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(id.Password), 4)
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var users, keys []json.RawMessage
	if err := json.Unmarshal(doc["users"], &users); err != nil {
		return nil, fmt.Errorf("forge: users: %w", err)
	}
	if raw := doc["apiKeys"]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, fmt.Errorf("forge: apiKeys: %w", err)
		}
	}
	sum := sha256.Sum256([]byte(id.KeySecret))
	for _, add := range []struct {
		list *[]json.RawMessage
		v    map[string]any
	}{
		{&users, map[string]any{"name": id.User, "role": "admin", "passwordHash": string(hash), "created": now, "passwordChanged": now}},
		{&keys, map[string]any{"id": id.KeyID, "user": id.User, "hash": hex.EncodeToString(sum[:]), "description": "forged", "created": now}},
	} {
		b, err := json.Marshal(add.v)
		if err != nil {
			return nil, fmt.Errorf("forge: %w", err)
		}
		*add.list = append(*add.list, b)
	}
	if doc["users"], err = json.Marshal(users); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	if doc["apiKeys"], err = json.Marshal(keys); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	var payload bytes.Buffer
	payload.WriteByte('{')
	for i, name := range backupPayloadFields {
		if i > 0 {
			payload.WriteByte(',')
		}
		fmt.Fprintf(&payload, "%q:", name)
		if v := doc[name]; len(v) == 0 {
			payload.WriteString("null")
		} else if err := json.Compact(&payload, v); err != nil {
			return nil, fmt.Errorf("forge: field %s: %w", name, err)
		}
	}
	payload.WriteByte('}')
	cs := sha256.Sum256(payload.Bytes())
	if doc["checksum"], err = json.Marshal(hex.EncodeToString(cs[:])); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	if dropSignature {
		delete(doc, "signature")
	}
	// Written back in the format's order of fields, each value as it is.
	var out bytes.Buffer
	out.WriteByte('{')
	n := 0
	for _, name := range append(slices.Clone(backupPayloadFields), "checksum", "signature") {
		v, ok := doc[name]
		if !ok {
			continue
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		fmt.Fprintf(&out, "%q:", name)
		out.Write(v)
	}
	out.WriteByte('}')
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(out.Bytes()); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	return gz.Bytes(), nil
}

// RestoreStep is one POST /api/v1/restore of a forged backup.
type RestoreStep struct {
	// Name says what was posted; Query the query string.
	Name  string `json:"name"`
	Query string `json:"query"`
	// Status and Message are the answer's.
	Status  int    `json:"status"`
	Message string `json:"message"`
	// Committed is the answer's committed flag.
	Committed bool `json:"committed"`
	// Signature is how the server judged the backup's signature.
	Signature string `json:"signature,omitempty"`
	// NamesUser and NamesKey report whether the answer's users and
	// apiKeys lists name the forged administrator and key.
	NamesUser bool `json:"names_user"`
	NamesKey  bool `json:"names_key"`
}

// RestoreResult is what the forged-restore case measured.
type RestoreResult struct {
	BackupBytes int           `json:"backup_bytes"`
	Steps       []RestoreStep `json:"steps"`
	// UserListed reports whether GET /api/v1/users lists the forged
	// administrator afterwards; PasswordStatus and KeyStatus are the
	// answers to its password (Basic) and API key on GET /api/v1/status.
	UserListed     bool `json:"user_listed"`
	PasswordStatus int  `json:"password_status"`
	KeyStatus      int  `json:"key_status"`
}

// Step returns the step named name (a zero step when there is none).
func (r RestoreResult) Step(name string) RestoreStep {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return RestoreStep{}
}

// Names of the forged-restore steps.
const (
	StepSigned         = "forged, signature kept"
	StepUnsigned       = "forged, signature removed"
	StepPreview        = "preview: allowUnsigned, dryRun"
	StepPreviewUsers   = "preview with users: allowUnsigned, users, dryRun"
	StepRestoreUsers   = "restore with users: allowUnsigned, users"
	StepRestoreConfig  = "restore configuration: allowUnsigned"
	restoreAnswerLimit = 300
)

// GotIn reports whether the forged administrator exists or authenticates.
func (r RestoreResult) GotIn() bool {
	return r.UserListed || r.PasswordStatus == http.StatusOK || r.KeyStatus == http.StatusOK
}

// Acceptable reports whether issue 15's acceptance holds: the forged
// backup refused without the explicit parameter (both with its signature
// kept and removed), and the forged administrator never gets in.
func (r RestoreResult) Acceptable() (bool, string) {
	var why []string
	for _, name := range []string{StepSigned, StepUnsigned} {
		if s := r.Step(name); s.Status/100 != 4 || s.Committed {
			why = append(why, fmt.Sprintf("%s: status %d committed %v (%s)", name, s.Status, s.Committed, s.Message))
		}
	}
	if r.GotIn() {
		why = append(why, fmt.Sprintf("the forged administrator got in: listed %v, password %d, API key %d",
			r.UserListed, r.PasswordStatus, r.KeyStatus))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// RunForgedRestore downloads a backup with api (an administrator's
// client), adds the administrator user with an API key (ForgeBackup),
// and posts it to /api/v1/restore: with its signature kept and removed
// and no parameter, as a preview (allowUnsigned=true&dryRun=true, with and
// without users=true), and restored with allowUnsigned=true, with and
// without users=true, as an administrator fooled into it would. Then it
// checks whether user is listed and whether its password and key work
// (from probeSource). It deletes the user if it got in.
func RunForgedRestore(ctx context.Context, api *AdminAPI, user string, probeSource net.IP) (RestoreResult, error) {
	var res RestoreResult
	ans, err := api.call(ctx, http.MethodGet, "/api/v1/backup", nil)
	if err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	res.BackupBytes = len(ans.Body)
	id := NewIdentity(user)
	signed, err := ForgeBackup(ans.Body, id, false)
	if err != nil {
		return res, err
	}
	unsigned, err := ForgeBackup(ans.Body, id, true)
	if err != nil {
		return res, err
	}
	steps := []struct {
		name, query string
		file        []byte
	}{
		{StepSigned, "", signed},
		{StepUnsigned, "", unsigned},
		{StepPreview, "?allowUnsigned=true&dryRun=true", unsigned},
		{StepPreviewUsers, "?allowUnsigned=true&users=true&dryRun=true", unsigned},
		{StepRestoreUsers, "?allowUnsigned=true&users=true", unsigned},
		{StepRestoreConfig, "?allowUnsigned=true", unsigned},
	}
	for _, st := range steps {
		ans, err := api.CallBinary(ctx, http.MethodPost, "/api/v1/restore"+st.query, st.file, "application/gzip")
		if err != nil {
			return res, fmt.Errorf("%s: %w", st.name, err)
		}
		s := RestoreStep{Name: st.name, Query: st.query, Status: ans.Status}
		var body struct {
			Committed bool   `json:"committed"`
			Summary   string `json:"summary"`
			Backup    struct {
				Signature string `json:"signature"`
			} `json:"backup"`
			Users []struct {
				Name string `json:"name"`
			} `json:"users"`
			APIKeys []struct {
				Name string `json:"name"`
			} `json:"apiKeys"`
		}
		if ans.Status/100 == 2 && json.Unmarshal(ans.Body, &body) == nil {
			s.Committed, s.Message, s.Signature = body.Committed, body.Summary, body.Backup.Signature
			for _, u := range body.Users {
				s.NamesUser = s.NamesUser || u.Name == user
			}
			for _, k := range body.APIKeys {
				s.NamesKey = s.NamesKey || k.Name == id.KeyID
			}
		} else {
			s.Message = ans.Message()
		}
		if len(s.Message) > restoreAnswerLimit {
			s.Message = s.Message[:restoreAnswerLimit] + "…"
		}
		res.Steps = append(res.Steps, s)
	}
	ans, err = api.call(ctx, http.MethodGet, "/api/v1/users", nil)
	if err != nil {
		return res, fmt.Errorf("users: %w", err)
	}
	var list struct {
		Users []struct {
			Name string `json:"name"`
		} `json:"users"`
	}
	if err := json.Unmarshal(ans.Body, &list); err != nil {
		return res, fmt.Errorf("users: %w", err)
	}
	for _, u := range list.Users {
		res.UserListed = res.UserListed || u.Name == user
	}
	probe := SourceClient(probeSource, 30*time.Second)
	defer CloseIdle(probe)
	if a, err := do(ctx, probe, api.Addr(), http.MethodGet, "/api/v1/status", nil, "", basicAuth(user, id.Password)); err == nil {
		res.PasswordStatus = a.Status
	}
	if a, err := do(ctx, probe, api.Addr(), http.MethodGet, "/api/v1/status", nil, "", bearer(id.KeySecret)); err == nil {
		res.KeyStatus = a.Status
	}
	if res.GotIn() {
		_, _ = api.Call(ctx, http.MethodDelete, "/api/v1/users/"+user, nil)
	}
	return res, nil
}
