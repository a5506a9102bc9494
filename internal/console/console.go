// Package console is the CLI's way into Fulcrum: it speaks the native API
// as the console administrator, through the running server's socket in the
// data directory, or — when no server runs — in-process on the store, so
// that `fulcrum apply`, `export` and `passwd` work either way and always go
// through the single write path.
package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/api"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// Client sends API requests as the console administrator.
type Client struct {
	hc     *http.Client
	closer func() error
	// Live is true when the client talks to a running server (whose data
	// plane applies changes at once), false when it works on the store
	// directly (changes take effect when the server next starts).
	Live bool
}

// socketName must match appliance.SocketName (kept separate to avoid an
// import cycle with the packages appliance wires).
const socketName = "fulcrum.sock"

// Connect reaches the server running on dataDir, or opens its store.
//
// Nothing is sent to a console socket that another user could have put
// there: the data directory must not be writable by others than its owner
// and must belong to root or the caller; the socket must be a socket of
// root or the caller that others cannot write to, and (on Linux) the
// process listening on it must run as root or the caller. Otherwise
// Connect refuses with an error wrapping ErrUntrusted, rather than fall
// back to the store.
func Connect(dataDir string) (*Client, error) {
	if err := checkDataDir(dataDir); err != nil {
		return nil, err
	}
	sock := filepath.Join(dataDir, socketName)
	if fi, err := os.Lstat(sock); err == nil {
		if err := checkSocket(sock, fi); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := dialConsole(ctx, sock)
		cancel()
		if errors.Is(err, ErrUntrusted) {
			return nil, err
		}
		if err == nil {
			_ = conn.Close()
			tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialConsole(ctx, sock)
			}}
			return &Client{hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, closer: func() error {
				tr.CloseIdleConnections()
				return nil
			}, Live: true}, nil
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "fulcrum.db")); err != nil {
		return nil, fmt.Errorf("no Fulcrum data directory at %s (start `fulcrum serve --data-dir %s` once, or pass --data-dir)", dataDir, dataDir)
	}
	st, err := store.Open(dataDir, store.Options{LockTimeout: 500 * time.Millisecond})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, fmt.Errorf("a fulcrum server holds %s but its console socket does not answer: %w", dataDir, err)
		}
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctl, err := control.New(st, nil, log)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	auth := admin.New(st, admin.Options{Logger: log, Policy: func() config.Lockout {
		return ctl.Current().Config.Options.AdminLockout
	}})
	ctl.SetAuditor(auth)
	lib, err := templates.NewLibrary(st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	srv := api.New(api.Options{Control: ctl, Auth: auth, History: st, Logger: log, Templates: lib})
	return &Client{hc: &http.Client{Transport: handlerTransport{srv.ConsoleHandler()}}, closer: st.Close}, nil
}

// handlerTransport serves requests with an in-process handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Close releases the connection or the store.
func (c *Client) Close() error { return c.closer() }

// APIError is an error answer of the API.
type APIError struct {
	// Status is the HTTP status.
	Status int `json:"status"`
	// Message is the error text.
	Message string `json:"error"`
	// Fields are field errors with paths.
	Fields []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"fields"`
	// Revision is the current revision, on conflicts.
	Revision uint64 `json:"revision"`
}

// Error renders the message and each field error on its own line.
func (e *APIError) Error() string {
	var sb strings.Builder
	sb.WriteString(e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&sb, "\n  %s: %s", f.Path, f.Message)
	}
	return sb.String()
}

// Do sends a request and returns the body of a 2xx answer, the ETag, or an
// *APIError.
func (c *Client) Do(method, path string, body []byte, contentType string, header map[string]string) ([]byte, string, error) {
	req, err := http.NewRequest(method, "http://fulcrum"+path, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(out, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(out)))
		}
		return nil, "", e
	}
	return out, resp.Header.Get("ETag"), nil
}
