package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/fulcrumproc"
)

// crashProc is the Fulcrum of crash-atomicity, killed and restarted again
// and again in one data directory.
type crashProc struct {
	p   *fulcrumproc.Process
	api *fulcrumproc.Client
}

// startCrashProc starts Fulcrum in dir (removing the console socket a
// killed process left behind) and waits for its admin API.
func startCrashProc(ctx context.Context, bin, dir string, adminPort int) (*crashProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crash dir: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, "data", "fulcrum.sock"))
	p, err := fulcrumproc.Start(ctx, bin, dir, adminPort, "reliability passphrase")
	if err != nil {
		return nil, err
	}
	c := &crashProc{p: p}
	if c.api, err = p.Client(); err != nil {
		p.Stop()
		return nil, err
	}
	if err := waitPort(ctx, p.AdminAddr, 20*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return c, nil
}

// put replaces the whole configuration through the API.
func (c *crashProc) put(ctx context.Context, doc string) error {
	body, status, err := c.api.Call(ctx, http.MethodPut, "/api/v1/config", doc)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("PUT /api/v1/config: status %d: %s", status, strings.TrimSpace(string(body)))
	}
	return nil
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (c *crashProc) kill9() {
	_ = c.p.Cmd.Process.Kill()
	c.p.Stop()
}

func (c *crashProc) stop() { c.p.Stop() }
