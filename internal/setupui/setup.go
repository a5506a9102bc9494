// Package setupui is the quick-setup console of an appliance (`fulcrum
// setup`): a terminal form (charmbracelet huh) and its scriptable
// equivalent that set the network-side interface and its address, the
// default gateway, DNS, the host name, the admin listener and the first
// administrator's password, and write them to the data directory's store
// as one confirmed network revision and the administrator's password.
//
// A Session holds the store while the questions are asked: a running
// Fulcrum (which holds it) is refused, and nothing is written until every
// answer passed netcfg.Validate and the password rules.
package setupui

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Source is the change source of what the quick setup writes.
const Source = "console"

// Options configure Open.
type Options struct {
	// DataDir is the data directory; created (mode 0700) when new, as
	// `fulcrum serve` does. "" means appliance.DefaultDataDir.
	DataDir string
	// User is whom the network revision is recorded for; "" means the
	// operating-system user running the command, or "console".
	User string
	// BcryptCost is passed to the admin service (tests lower it); 0 is
	// the production cost.
	BcryptCost int
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
}

// Answers are the quick setup's answers.
type Answers struct {
	// Interface is the network-side interface, by name.
	Interface string
	// Address is its address with prefix length, e.g. "10.0.0.5/24".
	Address string
	// Gateway is the default gateway of the address's family; "" sets
	// none (and removes one set before).
	Gateway string
	// DNS are up to three name servers.
	DNS []string
	// Search are the DNS search domains.
	Search []string
	// Hostname is the host name; "" leaves the host's name alone.
	Hostname string
	// Password is the administrator's new password; "" keeps an existing
	// administrator's password, or generates one for a new store (shown
	// once, as `fulcrum serve` does).
	Password string
	// PasswordAgain must equal Password.
	PasswordAgain string
	// AdminAddr is the admin listener's address (host:port); "" means
	// the address's IP with the port of appliance.DefaultAdminAddr.
	AdminAddr string
}

// Session is an open data directory being set up.
type Session struct {
	dir         string
	st          *store.Store
	cur         store.NetRevision // the current revision, the base of the commit
	base        *netcfg.Network   // the settings the answers change
	users       []string
	minPassword int
	links       []HostInterface
	local       map[netip.Addr]bool
	user        string
	cost        int
	log         *slog.Logger
	fresh       []string // what Open created, removed again if nothing is written
	written     bool
}

// lockedError is the refusal of a store another process holds.
type lockedError struct{ err error }

func (e *lockedError) Error() string {
	return "Fulcrum is running (the store is locked): change the network in the web UI or stop Fulcrum first"
}

func (e *lockedError) Unwrap() error { return e.err }

// Open checks and opens the data directory's store (creating it when new)
// and reads what the questions start from: the current network revision,
// the users, the password rules and the host's interfaces. A store held
// by a running Fulcrum is refused with an error wrapping store.ErrLocked.
// The store stays open, so held, until Close.
func Open(o Options) (*Session, error) {
	if o.DataDir == "" {
		o.DataDir = appliance.DefaultDataDir
	}
	if abs, err := filepath.Abs(o.DataDir); err == nil {
		o.DataDir = abs
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := appliance.CheckDataDir(o.DataDir, log); err != nil {
		return nil, err
	}
	fresh := newPaths(o.DataDir)
	st, err := store.Open(o.DataDir, store.Options{})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, &lockedError{err: err}
		}
		(&Session{fresh: fresh, log: log}).removeFresh()
		return nil, err
	}
	s := &Session{dir: o.DataDir, st: st, user: o.User, cost: o.BcryptCost, log: log, fresh: fresh}
	if err := s.load(); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.user == "" {
		s.user = "console"
		if u, err := user.Current(); err == nil && u.Username != "" {
			s.user = u.Username
		}
	}
	return s, nil
}

func (s *Session) load() error {
	var err error
	if s.cur, err = s.st.NetworkCurrent(); err != nil {
		return fmt.Errorf("read the network settings: %w", err)
	}
	// The answers build on the newest confirmed settings: a change still
	// in its confirm window (of a Fulcrum that stopped before it was
	// confirmed) is not confirmed by the way.
	confirmed, err := s.st.NetworkConfirmed()
	if err != nil {
		return fmt.Errorf("read the network settings: %w", err)
	}
	s.base = confirmed.Network
	if s.base == nil {
		s.base = &netcfg.Network{}
	}
	users, err := s.st.Users()
	if err != nil {
		return fmt.Errorf("read the users: %w", err)
	}
	for _, u := range users {
		s.users = append(s.users, u.Name)
	}
	rev, err := s.st.Current()
	if err != nil {
		return err
	}
	s.minPassword = rev.Config.Options.AdminLockout.MinPassword
	if s.minPassword <= 0 {
		s.minPassword = config.DefaultLockout().MinPassword
	}
	if s.links, err = hostInterfaces(); err != nil {
		return err
	}
	s.local = localAddrs()
	return nil
}

// Close lets go of the store. When nothing was written, the files and
// the directory Open created are removed again.
func (s *Session) Close() error {
	err := s.st.Close()
	if !s.written {
		s.removeFresh()
	}
	return err
}

// removeFresh removes what Open created.
func (s *Session) removeFresh() {
	for _, p := range s.fresh {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("setup: could not remove what it created", "path", p, "err", err)
		}
	}
}

// newPaths lists what Open would create in dir that is not there yet:
// the store file, the install marker and dir itself, in the order to
// remove them.
func newPaths(dir string) []string {
	var out []string
	for _, p := range []string{filepath.Join(dir, store.FileName), filepath.Join(dir, store.MarkerName), dir} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}

// NewAdmin reports whether the store has no user yet: the password then
// creates the first administrator.
func (s *Session) NewAdmin() bool { return len(s.users) == 0 }

// Defaults are the answers the form proposes: the stored network
// settings (see Stored) of the first interface that has stored settings,
// else of the host's first interface, completed with what the host has
// now: the interface's current address and the host's name.
func (s *Session) Defaults() Answers {
	iface := ""
	for _, f := range s.base.Interfaces {
		if f.Parent == "" && len(f.Addresses) > 0 && s.hostInterface(f.Name) != nil {
			iface = f.Name
			break
		}
	}
	if iface == "" && len(s.links) > 0 {
		iface = s.links[0].Name
	}
	return s.DefaultsFor(iface)
}

// DefaultsFor are Defaults with the interface iface chosen.
func (s *Session) DefaultsFor(iface string) Answers {
	a := s.Stored(iface)
	if h := s.hostInterface(iface); h != nil && a.Address == "" {
		a.Address = h.primaryAddress()
		a.Gateway = s.base.Gateway
		if p, err := netip.ParsePrefix(a.Address); err == nil && p.Addr().Is6() {
			a.Gateway = s.base.Gateway6
		}
	}
	if a.Hostname == "" {
		if h, err := os.Hostname(); err == nil && netcfgHostname(h) {
			a.Hostname = h
		}
	}
	return a
}

// Stored are the answers the stored network settings give for the
// interface iface: its first stored address, the gateway of that
// address's family, DNS, host name, and the admin listener ("" when it
// is the default for the address, so that it follows a new address).
// `fulcrum setup --non-interactive` keeps these for the flags not given.
func (s *Session) Stored(iface string) Answers {
	n := s.base
	a := Answers{Interface: iface, Hostname: n.Hostname, AdminAddr: n.AdminAddress,
		DNS: slices.Clone(n.DNS.Servers), Search: slices.Clone(n.DNS.Search), Gateway: n.Gateway}
	if f := n.Interface(iface); f != nil && len(f.Addresses) > 0 {
		a.Address = f.Addresses[0]
	}
	if p, err := netip.ParsePrefix(a.Address); err == nil && p.Addr().Is6() {
		a.Gateway = n.Gateway6
	}
	if a.AdminAddr == DefaultAdminAddr(a.Address) {
		a.AdminAddr = ""
	}
	return a
}

func netcfgHostname(h string) bool {
	return (&netcfg.Network{Hostname: h}).Validate() == nil
}

func (s *Session) hostInterface(name string) *HostInterface {
	for i := range s.links {
		if s.links[i].Name == name {
			return &s.links[i]
		}
	}
	return nil
}

// adminAddr is a's admin listener address with the default filled in.
func adminAddr(a Answers) string {
	if a.AdminAddr != "" {
		return a.AdminAddr
	}
	p, err := netip.ParsePrefix(a.Address)
	if err != nil {
		return ""
	}
	_, port, _ := strings.Cut(appliance.DefaultAdminAddr, ":")
	n, _ := strconv.Atoi(port)
	return netip.AddrPortFrom(p.Addr(), uint16(n)).String()
}

// DefaultAdminAddr is the admin listener address proposed for address
// (an address with prefix length), or "" when it does not parse.
func DefaultAdminAddr(address string) string { return adminAddr(Answers{Address: address}) }

// Network returns the network settings the answers make: the stored ones
// with the answers applied. The chosen interface's first address of the
// answer's family is replaced (other addresses are kept); the gateway of
// that family, the DNS servers and search domains, the host name and the
// admin listener are replaced. It does not validate.
func (s *Session) Network(a Answers) *netcfg.Network {
	n, _ := s.network(a)
	return n
}

// network is Network with the index of the chosen interface.
func (s *Session) network(a Answers) (*netcfg.Network, int) {
	n := s.base.Clone()
	i := slices.IndexFunc(n.Interfaces, func(f netcfg.Interface) bool { return f.Name == a.Interface })
	if i < 0 {
		n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: a.Interface})
		i = len(n.Interfaces) - 1
	}
	f := &n.Interfaces[i]
	v6 := false
	if p, err := netip.ParsePrefix(a.Address); err == nil {
		v6 = p.Addr().Is6()
	}
	if a.Address != "" {
		j := slices.IndexFunc(f.Addresses, func(s string) bool {
			p, err := netip.ParsePrefix(s)
			return err == nil && p.Addr().Is6() == v6
		})
		if j >= 0 {
			f.Addresses[j] = a.Address
		} else {
			f.Addresses = append([]string{a.Address}, f.Addresses...)
		}
	}
	f.Down = false
	gw := a.Gateway
	if g, err := netip.ParseAddr(gw); err == nil {
		v6 = g.Is6()
	}
	if v6 {
		n.Gateway6 = gw
	} else {
		n.Gateway = gw
	}
	n.DNS.Servers = slices.Clone(a.DNS)
	n.DNS.Search = slices.Clone(a.Search)
	n.Hostname = a.Hostname
	n.AdminAddress = adminAddr(a)
	return n, i
}

// Check returns every problem of a, or nil: the interface must be one of
// the host's, the network settings must pass netcfg.Validate, the admin
// listener must be an address this host will have, and the password must
// follow the store's password rules.
func (s *Session) Check(a Answers) InputError {
	var out InputError
	add := func(f Field, format string, args ...any) {
		out = append(out, FieldError{Field: f, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case a.Interface == "":
		// netcfg.Validate: the interface's name is required
	case s.hostInterface(a.Interface) == nil:
		var names []string
		for _, h := range s.links {
			names = append(names, h.Name)
		}
		add(FieldInterface, "this host has no interface %q (it has: %s)", a.Interface, strings.Join(names, ", "))
	}
	if a.Address == "" {
		add(FieldAddress, "is required: an address with prefix length such as 10.0.0.5/24")
	}
	n, i := s.network(a)
	nes := networkFields(n.Validate(), i)
	if a.Address == "" || nes.Of(FieldAddress) != nil {
		// A gateway lies in no subnet because the address is wrong:
		// that is the address's problem alone.
		nes = slices.DeleteFunc(nes, func(e FieldError) bool {
			return e.Field != FieldAddress && strings.Contains(e.Message, "lies in no interface's subnet")
		})
	}
	out = append(out, nes...)
	if ap, err := netip.ParseAddrPort(n.AdminAddress); err == nil {
		ip := ap.Addr().Unmap()
		own := false
		if p, err := netip.ParsePrefix(a.Address); err == nil && p.Addr() == ip {
			own = true
		}
		switch {
		case ap.Port() == 0:
			add(FieldAdminAddr, "needs a port other than 0, got %q", n.AdminAddress)
		case !own && !ip.IsUnspecified() && !s.local[ip]:
			add(FieldAdminAddr, "%s is neither the address %s nor an address of this host, so the admin listener could not open", ip, a.Address)
		}
	}
	if a.Password != "" {
		if err := config.ValidatePassword(a.Password, s.minPassword); err != nil {
			var es config.Errors
			if errors.As(err, &es) && len(es) > 0 {
				add(FieldPassword, "%s", es[0].Message)
			} else {
				add(FieldPassword, "%v", err)
			}
		}
		if !s.NewAdmin() && !slices.Contains(s.users, config.FirstAdmin) {
			add(FieldPassword, "there is no administrator %q to set the password of (users: %s); set passwords with fulcrum passwd --user NAME",
				config.FirstAdmin, strings.Join(s.users, ", "))
		}
	}
	if a.PasswordAgain != a.Password {
		add(FieldPasswordAgain, "does not match the password")
	}
	return out.sorted()
}

// Result is what Write wrote.
type Result struct {
	// DataDir is the data directory.
	DataDir string
	// Revision is the network revision written.
	Revision uint64
	// Network are the network settings written.
	Network *netcfg.Network
	// Answers are the answers written (without the password).
	Answers Answers
	// AdminAddr is the admin listener's address.
	AdminAddr string
	// URL is the web UI's address.
	URL string
	// Password says what became of the administrator's password:
	// "set", "created", "generated" or "unchanged".
	Password string
	// Generated is the generated password of a new administrator, shown
	// once.
	Generated string
}

// Write checks a and, when every answer is good, stores the
// administrator's password (creating the first administrator in a new
// store, the way `fulcrum serve` does) and then the network settings as
// one confirmed network revision. Bad answers return an InputError and
// write nothing; when the network revision cannot be stored, the password
// change is undone. Ctrl-C and a closed terminal (SIGINT, SIGHUP) are held
// off while it writes, so that they cannot stop it between the two.
func (s *Session) Write(a Answers) (Result, error) {
	if es := s.Check(a); len(es) > 0 {
		return Result{}, es
	}
	signal.Ignore(os.Interrupt, syscall.SIGHUP)
	defer signal.Reset(os.Interrupt, syscall.SIGHUP)
	n, _ := s.network(a)
	res := Result{DataDir: s.dir, Network: n, AdminAddr: n.AdminAddress, URL: webURL(n.AdminAddress, a.Address)}
	undo, err := s.writePassword(a.Password, &res)
	if err != nil {
		return Result{}, err
	}
	s.written = true
	a.Password, a.PasswordAgain = "", ""
	res.Answers = a
	ch := store.Change{User: s.user, Source: Source, Summary: summary(a, n.AdminAddress)}
	rev, err := s.st.CommitNetwork(s.cur.Revision, ch, n, true)
	if err != nil {
		if uerr := undo(); uerr != nil {
			return Result{}, fmt.Errorf("store the network settings: %w (and undo the password change: %v)", err, uerr)
		}
		s.written = false
		return Result{}, fmt.Errorf("store the network settings (nothing was written): %w", err)
	}
	s.cur, s.base = rev, rev.Network
	res.Revision = rev.Revision
	if _, err := s.st.AppendAudit(store.AuditEntry{User: s.user, Source: Source, Action: "network",
		Detail: fmt.Sprintf("network revision %d: %s", rev.Revision, ch.Summary), Success: true}); err != nil {
		s.log.Warn("setup: audit entry not written", "err", err)
	}
	return res, nil
}

// writePassword sets the administrator's password through the admin
// service and returns how to undo it.
func (s *Session) writePassword(pw string, res *Result) (undo func() error, err error) {
	policy := config.DefaultLockout()
	policy.MinPassword = s.minPassword
	svc := admin.New(s.st, admin.Options{Policy: func() config.Lockout { return policy }, BcryptCost: s.cost, Logger: s.log})
	switch {
	case s.NewAdmin():
		gen, err := svc.Bootstrap(pw)
		if err != nil {
			return nil, err
		}
		res.Password, res.Generated = "created", gen
		if gen != "" {
			res.Password = "generated"
		}
		s.users = []string{config.FirstAdmin}
		return func() error { s.users = nil; return s.st.DeleteUser(config.FirstAdmin) }, nil
	case pw != "":
		old, err := s.st.User(config.FirstAdmin)
		if err != nil {
			return nil, fmt.Errorf("read user %q: %w", config.FirstAdmin, err)
		}
		if _, err := svc.ResetPassword(config.FirstAdmin, pw); err != nil {
			return nil, err
		}
		res.Password = "set"
		return func() error { return s.st.PutUser(old) }, nil
	}
	res.Password = "unchanged"
	return func() error { return nil }, nil
}
