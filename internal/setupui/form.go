package setupui

import (
	"errors"
	"fmt"
	"io"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// ErrCancelled is returned by Run when the person at the console leaves
// the form (Ctrl-C) or chooses not to write: nothing is written.
var ErrCancelled = errors.New("setup cancelled: nothing was written")

// formState is what the form's fields are bound to. Its fields are
// exported so that huh can hash them for the summary's updates.
type formState struct {
	Answers
	// DNSText and SearchText are the lists as typed.
	DNSText, SearchText string
	// Write is the final confirmation.
	Write bool
}

// answers are the answers as typed so far.
func (f *formState) answers() Answers {
	a := f.Answers
	a.DNS = splitList(f.DNSText)
	a.Search = splitList(f.SearchText)
	return a
}

// splitList splits a list typed with spaces or commas.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// Run asks the questions on the terminal in and out (the process's own
// when nil), then writes the answers with Write and returns what was
// written. Every answer is checked as it is given, with netcfg.Validate
// and the password rules, and its problems are shown under the form; the
// form cannot be left with a problem. ErrCancelled means nothing was
// written.
func Run(s *Session, in io.Reader, out io.Writer) (Result, error) {
	var opts []tea.ProgramOption
	if in != nil {
		opts = append(opts, tea.WithInput(in))
	}
	if out != nil {
		opts = append(opts, tea.WithOutput(out))
	}
	if len(s.links) == 0 {
		return Result{}, errors.New("this host has no network interface but loopback to set up")
	}
	// First the interface: the address proposed depends on it.
	iface := s.Defaults().Interface
	options := make([]huh.Option[string], len(s.links))
	for i, h := range s.links {
		options[i] = huh.NewOption(h.String(), h.Name)
	}
	pick := huh.NewForm(huh.NewGroup(
		huh.NewSelect[string]().Title(FieldInterface.Label()).
			Description("The interface on the network side: clients, the virtual services' addresses and the default gateway are reached through it.").
			Options(options...).Value(&iface),
	).Title("Fulcrum quick setup")).WithProgramOptions(opts...)
	if err := pick.Run(); err != nil {
		return Result{}, formError(err)
	}

	st := &formState{Answers: s.DefaultsFor(iface), Write: true}
	st.DNSText = strings.Join(st.DNS, " ")
	st.SearchText = strings.Join(st.Search, " ")
	check := func(f Field) func(string) error {
		return func(string) error { return s.Check(st.answers()).Of(f) }
	}
	pwHelp := fmt.Sprintf("For the administrator %q. At least %d characters; leave empty to keep the current password.", config.FirstAdmin, s.minPassword)
	if s.NewAdmin() {
		pwHelp = fmt.Sprintf("Of the first administrator %q. At least %d characters; leave empty to have one generated (shown once at the end).", config.FirstAdmin, s.minPassword)
	}
	form := huh.NewForm(
		huh.NewGroup(
			huh.NewInput().Title(FieldAddress.Label()).Description("Address of "+iface+" with prefix length, e.g. 10.0.0.5/24.").
				Value(&st.Address).Validate(check(FieldAddress)),
			huh.NewInput().Title(FieldGateway.Label()).Description("In the address's subnet; empty for none.").
				Value(&st.Gateway).Validate(check(FieldGateway)),
			huh.NewInput().Title(FieldDNS.Label()).Description("Up to three, separated by spaces.").
				Value(&st.DNSText).Validate(check(FieldDNS)),
			huh.NewInput().Title(FieldSearch.Label()).Description("Separated by spaces; empty for none.").
				Value(&st.SearchText).Validate(check(FieldSearch)),
			huh.NewInput().Title(FieldHostname.Label()).Description("Empty leaves the host's name alone.").
				Value(&st.Hostname).Validate(check(FieldHostname)),
		).Title("Fulcrum quick setup: network ("+iface+")"),
		huh.NewGroup(
			huh.NewInput().Title(FieldPassword.Label()).Description(pwHelp).EchoMode(huh.EchoModePassword).
				Value(&st.Password).Validate(check(FieldPassword)),
			huh.NewInput().Title(FieldPasswordAgain.Label()).EchoMode(huh.EchoModePassword).
				Value(&st.PasswordAgain).Validate(check(FieldPasswordAgain)),
			huh.NewInput().Title(FieldAdminAddr.Label()).
				DescriptionFunc(func() string {
					return "Address and port of the web UI and API; empty for " + DefaultAdminAddr(st.Address) + "."
				}, &st.Address).
				Value(&st.AdminAddr).Validate(check(FieldAdminAddr)),
		).Title("Fulcrum quick setup: administration"),
		huh.NewGroup(
			huh.NewNote().Title("Summary").DescriptionFunc(func() string { return preview(s, st.answers()) }, st),
			huh.NewConfirm().Title("Write these settings to "+s.dir+"?").Affirmative("Write").Negative("Cancel").
				Value(&st.Write).Validate(func(write bool) error {
				if !write {
					return nil
				}
				if es := s.Check(st.answers()); len(es) > 0 {
					return es
				}
				return nil
			}),
		).Title("Fulcrum quick setup: confirm"),
	).WithProgramOptions(opts...)
	if err := form.Run(); err != nil {
		return Result{}, formError(err)
	}
	if !st.Write {
		return Result{}, ErrCancelled
	}
	return s.Write(st.answers())
}

// formError turns the form's end into Run's error.
func formError(err error) error {
	if errors.Is(err, huh.ErrUserAborted) {
		return ErrCancelled
	}
	return fmt.Errorf("setup form: %w", err)
}

// preview is the summary shown before writing.
func preview(s *Session, a Answers) string {
	n := s.Network(a)
	var b strings.Builder
	line := func(k, v string) {
		if v == "" {
			v = "(none)"
		}
		fmt.Fprintf(&b, "%-18s %s\n", k, v)
	}
	line("Interface", a.Interface)
	line("Address", a.Address)
	line("Default gateway", a.Gateway)
	line("DNS servers", strings.Join(a.DNS, ", "))
	line("Search domains", strings.Join(a.Search, ", "))
	line("Host name", a.Hostname)
	line("Admin listener", n.AdminAddress)
	line("Web UI", webURL(n.AdminAddress, a.Address))
	return b.String()
}
