package setupui

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// webURL is the web UI's address for the admin listener addr: the
// interface address stands in for an unspecified host.
func webURL(addr, address string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	ip := ap.Addr()
	if ip.IsUnspecified() {
		if p, err := netip.ParsePrefix(address); err == nil {
			ip = p.Addr()
		}
	}
	return "https://" + netip.AddrPortFrom(ip, ap.Port()).String() + "/"
}

// summary says in a line what the answers set.
func summary(a Answers, adminAddr string) string {
	s := fmt.Sprintf("quick setup: %s %s", a.Interface, a.Address)
	if a.Gateway != "" {
		s += ", gateway " + a.Gateway
	}
	if len(a.DNS) > 0 {
		s += ", DNS " + strings.Join(a.DNS, " ")
	}
	if len(a.Search) > 0 {
		s += ", search " + strings.Join(a.Search, " ")
	}
	if a.Hostname != "" {
		s += ", host name " + a.Hostname
	}
	return s + ", admin listener " + adminAddr
}

// Print writes the summary of r, the web UI's URL and what to do next.
func (r Result) Print(w io.Writer) {
	a := r.Answers
	fmt.Fprintf(w, "Quick setup written to %s (network revision %d):\n", r.DataDir, r.Revision)
	line := func(k, v string) {
		if v == "" {
			v = "(none)"
		}
		fmt.Fprintf(w, "  %-18s %s\n", k, v)
	}
	line("Interface", a.Interface)
	line("Address", a.Address)
	line("Default gateway", a.Gateway)
	line("DNS servers", strings.Join(a.DNS, ", "))
	line("Search domains", strings.Join(a.Search, ", "))
	line("Host name", a.Hostname)
	line("Admin listener", r.AdminAddr)
	switch r.Password {
	case "generated":
		line("Administrator", fmt.Sprintf("%s, password %s (shown only once)", config.FirstAdmin, r.Generated))
	case "created":
		line("Administrator", config.FirstAdmin+", password set")
	case "set":
		line("Administrator", config.FirstAdmin+", password changed")
	default:
		line("Administrator", config.FirstAdmin+", password unchanged")
	}
	fmt.Fprintf(w, "\nWeb UI: %s\n\n", r.URL)
	fmt.Fprintln(w, "Next:", nextStep(r.DataDir))
	fmt.Fprintln(w, "Fulcrum applies these network settings when it starts with the right to manage the host's network")
	fmt.Fprintln(w, "(root or CAP_NET_ADMIN), and listens on the admin listener above unless serve is given --admin-addr.")
}

// units are where a packaged Fulcrum's systemd unit would be.
var units = []string{"/etc/systemd/system/fulcrum.service", "/lib/systemd/system/fulcrum.service", "/usr/lib/systemd/system/fulcrum.service"}

// nextStep says how to start Fulcrum on the data directory dir.
func nextStep(dir string) string {
	for _, u := range units {
		if _, err := os.Stat(u); err == nil {
			return "restart Fulcrum: systemctl restart fulcrum"
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "start Fulcrum: fulcrum serve --data-dir " + quote(dir)
}

// quote quotes a path for a command line when it needs it.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
