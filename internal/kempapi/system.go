package kempapi

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// maxBackup bounds a restore body.
const maxBackup = 64 << 20

// backup answers Fulcrum's backup file: the configuration, users and API
// keys (password and key hashes included), checksummed. v1 sends the file
// itself, v2 base64 in "data".
func (c *call) backup() result {
	if c.s.backups == nil {
		return invalid("Command not available: no backup store").result()
	}
	var b bytes.Buffer
	if err := c.s.backups.Backup(&b); err != nil {
		return c.s.failure(fmt.Errorf("backup: %w", err)).result()
	}
	c.s.auth.Audit(c.who, c.r.RemoteAddr, "backup", fmt.Sprintf("backup of revision %d (kemp api)", c.s.ctl.Current().Revision), true)
	return result{blob: b.Bytes(), blobCT: "application/gzip"}
}

// restore replaces the configuration, users and API keys with a backup
// file's. LoadMaster's type selects parts of a backup (1 base, 2 virtual
// services, 4 GEO, 8 ESP); Fulcrum's backup is one whole, so the type must
// include both base and virtual services (3, 7, 11 or 15) or be left out.
func (c *call) restore() result {
	if s, ok := c.p.get("type"); ok && strings.TrimSpace(s) != "" {
		n, good := parseInt(s)
		if !good || n < 1 || n > 15 {
			return invalid("type: must be 1-15").result()
		}
		if n&3 != 3 {
			return invalid("type: Fulcrum restores the base and Virtual Service configuration together (type 3)").result()
		}
	}
	if len(c.req.body) == 0 {
		return missing("data").result()
	}
	snap, err := c.s.ctl.Restore(bytes.NewReader(c.req.body), c.actor())
	if err != nil {
		c.s.auth.Audit(c.who, c.r.RemoteAddr, "restore", err.Error(), false)
		return c.s.failure(err).result()
	}
	c.s.auth.Audit(c.who, c.r.RemoteAddr, "restore", snap.Change.Summary, true)
	return completed()
}

// listapi lists the commands and get/set parameters Fulcrum answers.
func (c *call) listapi() result {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []node{str("Version", c.s.version)}
	for _, n := range names {
		out = append(out, node{name: "Command", kind: kString, str: n, item: true})
	}
	for _, g := range globalParams {
		out = append(out, node{name: "Parameter", kind: kString, str: g.name, item: true})
	}
	for _, g := range netParams {
		out = append(out, node{name: "Parameter", kind: kString, str: g.name, item: true})
	}
	return withData(out...)
}

// licenseinfo describes Fulcrum honestly: open source, no licence key, no
// limits but the configuration model's own.
func (c *call) licenseinfo() result {
	o := c.s.ctl.Current().Config.Options
	return withData(
		str("LicenseType", "Fulcrum open source (Apache-2.0)"),
		str("LicenseStatus", "No license required"),
		str("LicensedUntil", "unlimited"),
		str("SupportLevel", "community"),
		str("ApplianceModel", "Fulcrum"),
		str("Version", c.s.version),
		inum("MaxVirtualServices", config.MaxVirtualServices),
		inum("MaxRealServersPerVS", config.MaxRealServers),
		inum("ThroughputLimit", o.ThroughputLimit),
	)
}

// Commands LoadMaster has whose feature Fulcrum does not have yet: they
// are refused with "Command not available" and the reason (a LoadMaster
// answers so for features its licence lacks), never with a pretended
// success. Everything else unknown is answered as LoadMaster answers an
// unknown command.
var notAvailable = map[string]string{}

func init() {
	add := func(why string, cmds ...string) {
		for _, c := range cmds {
			notAvailable[c] = why
		}
	}
	add("Fulcrum selects ciphers by TLS version set (TLSType); there are no cipher sets to manage",
		"modifycipherset", "getcipherset", "delcipherset")
	add("certificate backups are part of Fulcrum's backup command", "backupcert", "restorecert")
}

func unavailable(cmd string) (string, bool) {
	why, ok := notAvailable[cmd]
	return why, ok
}
