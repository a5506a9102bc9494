// Command l7bench runs Fulcrum's layer-7 service standalone, without the
// store and admin plane (bench/run.sh measures `fulcrum serve` itself; this
// is for quick profiling of internal/l7 alone): it reads a configuration
// document (YAML or JSON, as `fulcrum apply` takes), serves every enabled
// http or http2 virtual service on its address with internal/l7, and runs
// until SIGINT or SIGTERM. With -cpuprofile it writes a CPU profile of the
// whole run.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l7"
)

func main() {
	cfgPath := flag.String("config", "", "configuration document (YAML or JSON)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if err := run(*cfgPath, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "l7bench:", err)
		os.Exit(1)
	}
}

func run(path, profile string) error {
	if path == "" {
		return errors.New("-config is required")
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cfg, err := config.Decode(doc)
	if err != nil {
		return err
	}
	cfg.AssignIDs(nil)
	if err := cfg.Validate(); err != nil {
		return err
	}
	store, err := certs.NewStore(cfg.Certificates)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	proxy := l7.New(l7.Options{Logger: log})
	defer proxy.Close()
	reg := backend.NewRegistry()
	var all []*backend.Server
	pools := map[*config.VirtualService]l7.Servers{}
	addPool := func(vs *config.VirtualService) error {
		var list []*backend.Server
		for _, rs := range vs.RealServers {
			s := reg.Lookup(backend.Key{VS: vs.ID, Address: rs.Address, Port: rs.Port},
				backend.Settings{ID: rs.ID, Weight: rs.Weight, Limit: rs.Limit, Enabled: config.IsTrue(rs.Enabled)})
			all = append(all, s)
			if config.IsTrue(rs.Enabled) {
				list = append(list, s)
			}
		}
		p, err := balance.New(vs.Schedule, list)
		if err != nil {
			return fmt.Errorf("virtualServices[id=%d]: %w", vs.ID, err)
		}
		pools[vs] = l7.Servers{Picker: p}
		return nil
	}
	b := &l7.Build{Config: cfg, Certs: store, Tickets: certs.NewTicketKeys(0), Pools: pools}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.Type != "http" && vs.Type != "http2" || !config.IsTrue(vs.Enabled) {
			continue
		}
		if len(vs.SubVSs) == 0 {
			if err := addPool(vs); err != nil {
				return err
			}
		}
		for j := range vs.SubVSs {
			if err := addPool(&vs.SubVSs[j]); err != nil {
				return err
			}
		}
		sc, err := b.BuildService(fmt.Sprintf("virtualServices[id=%d]", vs.ID), vs)
		if err != nil {
			return err
		}
		idle := vs.Idletime // resolved as the data plane does
		if idle == 0 {
			idle = cfg.Options.ConnTimeout
		}
		sc.IdleTimeout = time.Duration(idle) * time.Second
		svc, err := proxy.Service(sc)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(vs.Address, strconv.Itoa(vs.Port)))
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				svc.Handle(c)
			}
		}()
		log.Warn("serving", "service", sc.Name, "address", ln.Addr().String(), "tls", sc.TLS != nil)
	}
	reg.Commit(all)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}
