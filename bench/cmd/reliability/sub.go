package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
)

// subcommand runs the helper modes of the binary: `backend` (a real
// server in a process of its own, for the kill -9 case) and `attack
// rapid-reset` (the attacker in a process of its own). It reports whether
// args named one.
func subcommand(args []string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "backend":
		fs := flag.NewFlagSet("backend", flag.ContinueOnError)
		mode := fs.String("mode", "http", "http, reset, hang or echo")
		listen := fs.String("listen", "127.0.0.1:0", "address")
		if err := fs.Parse(args[1:]); err != nil {
			return true, err
		}
		b, err := attack.StartBackend(*listen, attack.Mode(*mode))
		if err != nil {
			return true, err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		b.Close()
		return true, nil
	case "attack":
		if len(args) < 2 || args[1] != "rapid-reset" {
			return true, fmt.Errorf("attack: want rapid-reset")
		}
		fs := flag.NewFlagSet("attack", flag.ContinueOnError)
		addr := fs.String("addr", "", "HTTP/2 TLS address")
		conns := fs.Int("conns", 10, "connections")
		d := fs.Duration("duration", 5*time.Second, "length")
		if err := fs.Parse(args[2:]); err != nil {
			return true, err
		}
		if *d <= 0 || *d > 10*time.Minute || *conns < 1 || *conns > 1000 {
			return true, fmt.Errorf("attack: -duration must be 0-10m and -conns 1-1000")
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		res := attack.RapidReset(ctx, *addr, *conns, *d, "/")
		return true, json.NewEncoder(os.Stdout).Encode(res)
	}
	return false, nil
}
