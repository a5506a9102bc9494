package setupui

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Field is one question of the quick setup.
type Field int

// The fields of the quick setup, in the order they are asked.
const (
	// FieldInterface is the network-side interface.
	FieldInterface Field = iota
	// FieldAddress is its address with prefix length.
	FieldAddress
	// FieldGateway is the default gateway.
	FieldGateway
	// FieldDNS are the DNS servers.
	FieldDNS
	// FieldSearch are the DNS search domains.
	FieldSearch
	// FieldHostname is the host name.
	FieldHostname
	// FieldPassword is the administrator's password.
	FieldPassword
	// FieldPasswordAgain is the administrator's password typed again.
	FieldPasswordAgain
	// FieldAdminAddr is the admin listener's address.
	FieldAdminAddr
	// FieldStored is for problems of the stored network settings that
	// the answers do not touch (another interface, a static route).
	FieldStored
)

// fieldNames holds each field's words on the form and its flag.
var fieldNames = map[Field]struct{ label, flag string }{
	FieldInterface:     {"Network-side interface", "--interface"},
	FieldAddress:       {"Address", "--address"},
	FieldGateway:       {"Default gateway", "--gateway"},
	FieldDNS:           {"DNS servers", "--dns"},
	FieldSearch:        {"Search domains", "--search"},
	FieldHostname:      {"Host name", "--hostname"},
	FieldPassword:      {"Admin password", "--admin-password-file (or $FULCRUM_ADMIN_PASSWORD)"},
	FieldPasswordAgain: {"Admin password again", "--admin-password-file (or $FULCRUM_ADMIN_PASSWORD)"},
	FieldAdminAddr:     {"Admin listener", "--admin-addr"},
	FieldStored:        {"Stored network settings", "stored network settings"},
}

// Label is the field's title on the form.
func (f Field) Label() string { return fieldNames[f].label }

// Flag is the field's flag of `fulcrum setup --non-interactive`.
func (f Field) Flag() string { return fieldNames[f].flag }

// FieldError is one problem with one answer.
type FieldError struct {
	// Field is the answer at fault.
	Field Field
	// Message says what is wrong, in the words of netcfg.Validate or of
	// the password rules.
	Message string
}

// Error names the field with its form label.
func (e FieldError) Error() string { return e.Field.Label() + ": " + e.Message }

// FlagError names the field with its flag.
func (e FieldError) FlagError() string { return e.Field.Flag() + ": " + e.Message }

// InputError is every problem found in one set of answers; nothing is
// written while there is one.
type InputError []FieldError

// Error lists the problems with their form labels.
func (e InputError) Error() string {
	s := make([]string, len(e))
	for i, fe := range e {
		s[i] = fe.Error()
	}
	return strings.Join(s, "; ")
}

// Flags lists the problems with their flags, one a line.
func (e InputError) Flags() string {
	s := make([]string, len(e))
	for i, fe := range e {
		s[i] = fe.FlagError()
	}
	return strings.Join(s, "\n")
}

// Of returns the problems of field f joined in one error, or nil.
func (e InputError) Of(f Field) error {
	var msgs []string
	for _, fe := range e {
		if fe.Field == f {
			msgs = append(msgs, fe.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(f.Label() + ": " + strings.Join(msgs, "; "))
}

// networkFields maps the paths of netcfg.Validate's errors to the fields
// of the form. iface is the index of the chosen interface in the
// candidate Network.
func networkFields(err error, iface int) InputError {
	var es config.Errors
	if !errors.As(err, &es) {
		if err == nil {
			return nil
		}
		return InputError{{Field: FieldStored, Message: err.Error()}}
	}
	own := fmt.Sprintf("network.interfaces[%d].", iface)
	var out InputError
	for _, e := range es {
		p := e.Path
		var f Field
		switch {
		case strings.HasPrefix(p, own+"name"):
			f = FieldInterface
		case strings.HasPrefix(p, own+"addresses"):
			f = FieldAddress
		case strings.HasPrefix(p, "network.interfaces[") && strings.Contains(e.Message, strings.TrimPrefix(own, "network.")):
			// another interface's subnet overlaps the new address
			f = FieldAddress
		case p == "network.gateway" || p == "network.gateway6":
			f = FieldGateway
		case strings.HasPrefix(p, "network.dns.servers"):
			f = FieldDNS
		case strings.HasPrefix(p, "network.dns.search"):
			f = FieldSearch
		case p == "network.hostname":
			f = FieldHostname
		case p == "network.adminAddress":
			f = FieldAdminAddr
		default:
			out = append(out, FieldError{Field: FieldStored, Message: e.Error()})
			continue
		}
		out = append(out, FieldError{Field: f, Message: e.Message})
	}
	return out
}

// sorted returns e in the order of the form's fields.
func (e InputError) sorted() InputError {
	slices.SortStableFunc(e, func(a, b FieldError) int { return int(a.Field) - int(b.Field) })
	return e
}
