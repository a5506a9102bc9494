package kempapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// benchEnv is an API over 100 services with 4 real servers each, and a key
// for bal (API keys cost a hash, not a bcrypt comparison).
func benchEnv(b *testing.B) (*env, string) {
	e := newEnv(b, envOpts{})
	_, err := e.ctl.Apply(control.Change{Actor: control.Actor{User: "bench", Source: control.SourceSystem},
		Mutate: func(c *config.Config) error {
			for i := 0; i < 100; i++ {
				v := config.VirtualService{Address: fmt.Sprintf("192.0.2.%d", i+1), Port: 80, Type: "http", NickName: fmt.Sprintf("svc%d", i)}
				for j := 0; j < 4; j++ {
					v.RealServers = append(v.RealServers, config.RealServer{Address: fmt.Sprintf("198.51.100.%d", j+1), Port: 8080})
				}
				c.VirtualServices = append(c.VirtualServices, v)
			}
			return nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	bal := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	_, key, err := e.auth.CreateAPIKey(bal, "", "bal", "bench")
	if err != nil {
		b.Fatal(err)
	}
	return e, key
}

func benchServe(b *testing.B, e *env, req func() *http.Request) {
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.kemp.ServeHTTP(rec, req())
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body.Bytes())
		}
	}
}

// BenchmarkListVS measures listvs of 100 services (about 130 KB of XML).
func BenchmarkListVS(b *testing.B) {
	e, key := benchEnv(b)
	benchServe(b, e, func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/access/listvs?apikey="+url.QueryEscape(key), nil)
		return r
	})
}

// BenchmarkListVSv2 is the same in JSON.
func BenchmarkListVSv2(b *testing.B) {
	e, key := benchEnv(b)
	body := `{"cmd":"listvs","apikey":"` + key + `"}`
	benchServe(b, e, func() *http.Request {
		return httptest.NewRequest(http.MethodPost, "/accessv2", strings.NewReader(body))
	})
}

// BenchmarkShowVS measures one service by index.
func BenchmarkShowVS(b *testing.B) {
	e, key := benchEnv(b)
	benchServe(b, e, func() *http.Request {
		return httptest.NewRequest(http.MethodGet, "/access/showvs?vs=50&apikey="+url.QueryEscape(key), nil)
	})
}

// BenchmarkModRS measures a write: toggling a real server through the
// whole write path (validation, commit to the store with fsync).
func BenchmarkModRS(b *testing.B) {
	e, key := benchEnv(b)
	i := 0
	benchServe(b, e, func() *http.Request {
		i++
		return httptest.NewRequest(http.MethodGet, fmt.Sprintf("/access/modrs?vs=50&rs=!%d&enable=%d&apikey=%s",
			197, i%2, url.QueryEscape(key)), nil)
	})
}
