package fulcrumproc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Client calls the REST API of a Process over HTTPS, trusting the admin
// plane's own certificate from the data directory. It authenticates as
// bal with HTTP Basic until UseAPIKey gives it an API key.
type Client struct {
	http     *http.Client
	base     string
	password string
	key      string
}

// Client returns an API client for the process. It reads the admin
// certificate but makes no call.
func (p *Process) Client() (*Client, error) {
	pemBytes, err := os.ReadFile(filepath.Join(p.DataDir, "admin-cert.pem"))
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("admin certificate: no certificate in admin-cert.pem")
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4,
	}
	return &Client{
		http:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
		base:     "https://" + p.AdminAddr,
		password: p.password,
	}, nil
}

// UseAPIKey creates an API key with one Basic call (one bcrypt check on
// the server) and authenticates every later call with it, which is much
// cheaper for the server than Basic on each call.
func (c *Client) UseAPIKey(ctx context.Context, description string) error {
	req, err := json.Marshal(map[string]string{"description": description})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	body, status, err := c.Call(ctx, http.MethodPost, "/api/v1/api-keys", string(req))
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	if status/100 != 2 {
		return fmt.Errorf("create API key: status %d: %s", status, body)
	}
	var ck struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &ck); err != nil || ck.Secret == "" {
		return fmt.Errorf("create API key: no secret in %s", body)
	}
	c.key = ck.Secret
	return nil
}

// Call makes one API call (path starts with /api/v1) with body as JSON
// when it is not empty, and returns the answer's body (at most 64 MiB)
// and status.
func (c *Client) Call(ctx context.Context, method, path, body string) ([]byte, int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	} else {
		req.SetBasicAuth("bal", c.password)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return out, resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return out, resp.StatusCode, nil
}

// Get makes a GET call and returns the body of a 200 answer; any other
// status is an error carrying the end of the body.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	body, status, err := c.Call(ctx, http.MethodGet, path, "")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", path, status, LastLines(body, 3))
	}
	return body, nil
}
