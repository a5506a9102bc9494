package kempapi

import (
	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// commands are the commands Fulcrum answers, by LoadMaster name. The table
// is filled in init because listapi, one of its commands, lists it.
var commands map[string]command

func init() {
	read, op, write, users := admin.PermRead, admin.PermOperate, admin.PermWrite, admin.PermUsers
	commands = map[string]command{
		// Virtual services.
		"listvs": {readOnly: true, perm: read, run: (*call).listvs},
		"showvs": {readOnly: true, perm: read, run: (*call).showvs},
		"addvs":  {perm: write, run: (*call).addvs},
		"modvs":  {perm: write, run: (*call).modvs},
		"delvs":  {perm: write, run: (*call).delvs},
		"dupvs":  {perm: write, run: (*call).dupvs},

		// Real servers.
		"showrs":    {readOnly: true, perm: read, run: (*call).showrs},
		"addrs":     {perm: write, run: (*call).addrs},
		"modrs":     {permFn: rsPerm, run: (*call).modrs},
		"delrs":     {perm: write, run: (*call).delrs},
		"enablers":  {perm: op, run: func(c *call) result { return c.setRSEverywhere(true) }},
		"disablers": {perm: op, run: func(c *call) result { return c.setRSEverywhere(false) }},

		// Content rules.
		"showrule":            {readOnly: true, perm: read, run: (*call).showrule},
		"addrule":             {perm: write, run: (*call).addrule},
		"modrule":             {perm: write, run: (*call).modrule},
		"delrule":             {perm: write, run: (*call).delrule},
		"addrsrule":           {perm: write, run: func(c *call) result { return c.assignRule(slotSelect, false) }},
		"delrsrule":           {perm: write, run: func(c *call) result { return c.assignRule(slotSelect, true) }},
		"addprerule":          {perm: write, run: func(c *call) result { return c.assignRule(slotPre, false) }},
		"delprerule":          {perm: write, run: func(c *call) result { return c.assignRule(slotPre, true) }},
		"addrequestrule":      {perm: write, run: func(c *call) result { return c.assignRule(slotRequest, false) }},
		"delrequestrule":      {perm: write, run: func(c *call) result { return c.assignRule(slotRequest, true) }},
		"addresponserule":     {perm: write, run: func(c *call) result { return c.assignRule(slotResponse, false) }},
		"delresponserule":     {perm: write, run: func(c *call) result { return c.assignRule(slotResponse, true) }},
		"addresponsebodyrule": {perm: write, run: (*call).responseBodyRule},
		"delresponsebodyrule": {perm: write, run: (*call).responseBodyRule},

		// Certificates.
		"listcert":         {readOnly: true, perm: read, run: func(c *call) result { return c.listCerts(false) }},
		"listintermediate": {readOnly: true, perm: read, run: func(c *call) result { return c.listCerts(true) }},
		"readcert":         {readOnly: true, perm: read, run: func(c *call) result { return c.readCert(false) }},
		"readintermediate": {readOnly: true, perm: read, run: func(c *call) result { return c.readCert(true) }},
		"addcert":          {perm: write, run: (*call).addCert, binary: true},
		"addintermediate":  {perm: write, run: (*call).addIntermediate, binary: true},
		"delcert":          {perm: write, run: func(c *call) result { return c.delCert(false) }},
		"delintermediate":  {perm: write, run: func(c *call) result { return c.delCert(true) }},

		// Health checks and global parameters.
		"showhealth": {readOnly: true, perm: read, run: (*call).showhealth},
		"modhealth":  {perm: write, run: (*call).modhealth},
		"get":        {readOnly: true, perm: read, run: (*call).get},
		"getall":     {readOnly: true, perm: read, run: (*call).getall},
		"set":        {perm: write, run: (*call).set},

		// Adaptive scheduling's agent settings (options.adaptive).
		"showadaptive": {readOnly: true, perm: read, run: (*call).showadaptive},
		"modadaptive":  {perm: write, run: (*call).modadaptive},

		// Statistics.
		"stats":    {readOnly: true, perm: read, run: (*call).stats},
		"vstotals": {readOnly: true, perm: read, run: (*call).vstotals},

		// Users and API keys.
		"userlist":           {readOnly: true, perm: users, run: (*call).userlist},
		"usershow":           {readOnly: true, perm: read, run: (*call).usershow},
		"useraddlocal":       {perm: users, run: (*call).useraddlocal},
		"userdellocal":       {perm: users, run: (*call).userdellocal},
		"userchangelocpass":  {perm: read, run: (*call).userchangelocpass},
		"usersetsyspassword": {perm: read, run: (*call).usersetsyspassword},
		"usersetperms":       {perm: users, run: (*call).usersetperms},
		"addapikey":          {perm: read, run: (*call).addapikey},
		"listapikeys":        {readOnly: true, perm: read, run: (*call).listapikeys},
		"delapikey":          {perm: read, run: (*call).delapikey},

		// Network: interfaces, VLANs, additional addresses, routes (DNS,
		// host name and default gateways are get/set parameters).
		"showiface":      {readOnly: true, perm: read, run: (*call).showiface},
		"modiface":       {perm: write, run: (*call).modiface},
		"addadditional":  {perm: write, run: func(c *call) result { return c.additional(true) }},
		"deladditional":  {perm: write, run: func(c *call) result { return c.additional(false) }},
		"addvlan":        {perm: write, run: (*call).addvlan},
		"delvlan":        {perm: write, run: (*call).delvlan},
		"showroute":      {readOnly: true, perm: read, run: (*call).showroute},
		"addroute":       {perm: write, run: (*call).addroute},
		"delroute":       {perm: write, run: (*call).delroute},
		"confirmnetwork": {perm: write, run: (*call).confirmnetwork},

		// Templates (templates.go).
		"listtemplates":  {readOnly: true, perm: read, run: (*call).listtemplates},
		"uploadtemplate": {perm: write, run: (*call).uploadtemplate, binary: true, bodyLimit: templates.MaxDocumentSize},
		"deltemplate":    {perm: write, run: (*call).deltemplate},
		"exportvstmplt":  {readOnly: true, perm: read, run: (*call).exportvstmplt},

		// System.
		"backup":      {readOnly: true, perm: admin.PermReadSecrets, run: (*call).backup},
		"restore":     {perm: write, run: (*call).restore, binary: true, bodyLimit: maxBackup},
		"listapi":     {readOnly: true, perm: read, run: (*call).listapi},
		"licenseinfo": {readOnly: true, perm: read, run: (*call).licenseinfo},
	}
}
