package kempapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// filler is a reader of n bytes of 'A' that allocates nothing, so that
// the memory a test measures is the server's.
type filler struct{ n int64 }

func (f *filler) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	for i := range p {
		p[i] = 'A'
	}
	f.n -= int64(len(p))
	return len(p), nil
}

// bigBody is a v2 body of about size bytes: head, size bytes of base64
// "data", and the end of the object.
func bigBody(head string, size int64) io.Reader {
	return io.MultiReader(strings.NewReader(head+`"data":"`), &filler{n: size}, strings.NewReader(`"}`))
}

// TestUnauthenticatedV2BodiesBounded reproduces issue 15, item 6: 25
// concurrent 16 MiB POSTs to /accessv2 without (good) credentials took the
// server from 445 MB to 2,059 MB, because each body was read whole before
// the credentials inside it were checked. Now at most maxPreAuthBody bytes
// of each are read before authentication, so the heap must grow by no more
// than a few MiB.
func TestUnauthenticatedV2BodiesBounded(t *testing.T) {
	e := newEnv(t, envOpts{})
	const clients, size = 25, 16<<20 - 256 // the whole body within the 16 MiB maximum
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"no credentials", `{"cmd":"listvs",`, http.StatusUnauthorized},
		{"wrong api key", `{"apikey":"fk_0123456789abcdef_wrongwrongwrongwrongwrongwrongwrongwrongwro","cmd":"listvs",`, http.StatusUnauthorized},
		// 25 wrong passwords at once exceed the account's budget across
		// sources (admin.AccountSlowAfter): some are answered 429.
		{"wrong password", `{"apiuser":"bal","apipass":"wrong","cmd":"listvs",`, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var peak atomic.Uint64
			peak.Store(before.HeapAlloc)
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					runtime.ReadMemStats(&m)
					if m.HeapAlloc > peak.Load() {
						peak.Store(m.HeapAlloc)
					}
				}
			}()
			var wg sync.WaitGroup
			codes := make([]int, clients)
			for i := range clients {
				wg.Go(func() {
					r := httptest.NewRequest(http.MethodPost, "https://127.0.0.1:8443/accessv2", bigBody(c.head, size))
					r.RemoteAddr = fmt.Sprintf("127.0.%d.%d:4000", 1+i/200, 1+i%200)
					w := httptest.NewRecorder()
					e.kemp.ServeHTTP(w, r)
					codes[i] = w.Code
				})
			}
			wg.Wait()
			close(stop)
			<-sampled
			runtime.ReadMemStats(&after)
			allocated := after.TotalAlloc - before.TotalAlloc
			growth := int64(peak.Load()) - int64(before.HeapAlloc)
			t.Logf("%d concurrent 16 MiB POSTs (%s): %.2f MiB allocated, peak heap growth %.2f MiB",
				clients, c.name, float64(allocated)/(1<<20), float64(growth)/(1<<20))
			for i, code := range codes {
				if code != c.status && code != http.StatusTooManyRequests {
					t.Fatalf("client %d: status %d, want %d", i, code, c.status)
				}
			}
			if allocated > 8<<20 {
				t.Errorf("the server allocated %d bytes for %d unauthenticated bodies, want at most 8 MiB", allocated, clients)
			}
			if growth > 4<<20 {
				t.Errorf("the heap grew by %d bytes, want at most 4 MiB", growth)
			}
		})
	}
}

// TestLargeBodiesAfterAuthentication checks that bodies over
// maxPreAuthBody still work once their credentials are good — in the
// Authorization header, or early in the body as clients put them — and
// how the others are refused.
func TestLargeBodiesAfterAuthentication(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.97.1&port=80")
	key := e.ok1("addapikey", "").data().val("ApiKey")
	pad := strings.Repeat("A", 3*maxPreAuthBody)
	nickname := func() string { return e.ctl.Current().Config.VirtualServices[0].NickName }
	post := func(path, body, contentType string, basic bool) answer {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if basic {
			r.SetBasicAuth("bal", balPW)
		}
		return e.do(r)
	}
	v2 := func(members string, basic bool) (answer, *jval) {
		t.Helper()
		a := post("/accessv2", "{"+members+"}", "application/json", basic)
		j, err := parseJSON(a.body)
		if err != nil {
			t.Fatalf("%v: %s", err, a.body)
		}
		return a, j
	}
	creds := `"apiuser":"bal","apipass":"` + balPW + `",`
	ok := func(a answer, j *jval, want string) {
		t.Helper()
		if a.status != 200 || j.get("status").s != "ok" {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		if got := nickname(); got != want {
			t.Fatalf("nickname %q, want %q", got, want)
		}
	}

	a, j := v2(creds+`"cmd":"modvs","vs":"1","NickName":"one","pad":"`+pad+`"`, false)
	ok(a, j, "one")
	a, j = v2(`"apikey":"`+key+`","cmd":"modvs","vs":"1","pad":"`+pad+`","NickName":"two"`, false)
	ok(a, j, "two")
	a, j = v2(`"cmd":"modvs","vs":"1","pad":"`+pad+`","NickName":"three"`, true) // Basic header
	ok(a, j, "three")

	// Credentials after the first maxPreAuthBody bytes are not looked for.
	a, j = v2(`"cmd":"modvs","vs":"1","pad":"`+pad+`",`+creds+`"NickName":"late"`, false)
	mustErrJSON(t, a, j, http.StatusUnauthorized, fmt.Sprintf("within its first %d bytes", maxPreAuthBody))
	// Nor may a body authenticated one way carry other credentials later.
	a, j = v2(`"cmd":"modvs","vs":"1","pad":"`+pad+`",`+creds+`"NickName":"late"`, true)
	mustErrJSON(t, a, j, http.StatusBadRequest, "within the first")
	a, j = v2(`"apikey":"`+key+`","cmd":"modvs","vs":"1","pad":"`+pad+`","apikey":"other","NickName":"dup"`, false)
	mustErrJSON(t, a, j, http.StatusBadRequest, "Duplicate parameter")
	if got := nickname(); got != "three" {
		t.Fatalf("a refused request changed the nickname to %q", got)
	}
	// The documented maximum still holds once authenticated.
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", bigBody(`{"cmd":"listvs",`, maxJSONBody))
	r.SetBasicAuth("bal", balPW)
	if a := e.do(r); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over %d bytes: status %d", maxJSONBody, a.status)
	}

	// v1 forms: the apikey early in the form, or the Authorization header.
	form := "apikey=" + key + "&vs=1&NickName=four&pad=" + pad
	if a := post("/access/modvs", form, "application/x-www-form-urlencoded", false); a.status != 200 || nickname() != "four" {
		t.Fatalf("v1 form with apikey: %d %s", a.status, a.body)
	}
	form = "vs=1&pad=" + pad + "&NickName=five"
	if a := post("/access/modvs", form, "application/x-www-form-urlencoded", true); a.status != 200 || nickname() != "five" {
		t.Fatalf("v1 form with Basic: %d %s", a.status, a.body)
	}
	mustErrXML(t, post("/access/modvs", form, "application/x-www-form-urlencoded", false), http.StatusUnauthorized, "Authorization required")
	// A small body is read whole before authentication, as before.
	if a := post("/access/modvs", "apikey="+key+"&vs=1&NickName=six", "application/x-www-form-urlencoded", false); a.status != 200 || nickname() != "six" {
		t.Fatalf("small v1 form: %d %s", a.status, a.body)
	}
}

// TestScanV2Credentials covers the pre-authentication scan of a body's
// beginning.
func TestScanV2Credentials(t *testing.T) {
	tests := []struct {
		prefix string
		want   map[string]string
	}{
		{`{"apikey":"k","cmd":"listvs","data":"AAAA`, map[string]string{"apikey": "k"}},
		{`{"cmd":"x","nested":{"a":[1,2,{"b":"c"}]},"APIUser":"bal","ApiPass":"pw","data":"AA`, map[string]string{"apiuser": "bal", "apipass": "pw"}},
		{`{"cmd":"x","data":"AAAAAAAA`, map[string]string{}},
		{`{"apikey":"first","apikey":"second"`, map[string]string{"apikey": "first"}},
		{`{"apikey":12345,`, map[string]string{"apikey": "12345"}},
		{`["apikey","k"]`, map[string]string{}},
		{`garbage`, map[string]string{}},
		{`{"apikey":"cut`, map[string]string{}},
	}
	for _, tt := range tests {
		got := scanV2Credentials([]byte(tt.prefix))
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(tt.want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("scanV2Credentials(%s) = %s, want %s", tt.prefix, gb, wb)
		}
	}
}
