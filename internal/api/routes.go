package api

import (
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// table lists every API operation. Handler registration and the OpenAPI
// document are both made from it.
func (s *Server) table() []route {
	const v1 = "/api/v1"
	read, write, op, users := admin.PermRead, admin.PermWrite, admin.PermOperate, admin.PermUsers
	secrets := admin.PermReadSecrets
	return []route{
		{method: "GET", path: v1 + "/openapi.json", summary: "This OpenAPI document", h: s.openAPI},
		{method: "POST", path: v1 + "/login", summary: "Start a browser session (sets the session cookie; returns the CSRF token)",
			body: loginRequest{}, resp: sessionInfo{}, h: s.login},
		{method: "POST", path: v1 + "/logout", summary: "End the current session", perm: read, status: http.StatusNoContent, h: s.logout},
		{method: "GET", path: v1 + "/session", summary: "Who the caller is, and the session's CSRF token", perm: read, resp: sessionInfo{}, h: s.session},

		{method: "GET", path: v1 + "/virtual-services", summary: "List virtual services", perm: read, resp: vsList{}, h: s.listVS},
		{method: "POST", path: v1 + "/virtual-services", summary: "Create a virtual service (?parent=ID creates a SubVS)", perm: write,
			body: config.VirtualService{}, resp: config.VirtualService{}, status: http.StatusCreated, h: s.createVS, dry: true},
		{method: "GET", path: v1 + "/virtual-services/{id}", summary: "Show a virtual service", perm: read, resp: config.VirtualService{}, h: s.getVS},
		{method: "PUT", path: v1 + "/virtual-services/{id}", summary: "Replace a virtual service", perm: write,
			body: config.VirtualService{}, resp: config.VirtualService{}, h: s.updateVS, dry: true},
		{method: "PATCH", path: v1 + "/virtual-services/{id}", summary: "Change fields of a virtual service", perm: write,
			body: config.VirtualService{}, resp: config.VirtualService{}, h: s.updateVS, dry: true},
		{method: "DELETE", path: v1 + "/virtual-services/{id}", summary: "Delete a virtual service", perm: write, resp: changeResult{}, h: s.deleteVS, dry: true},

		{method: "GET", path: v1 + "/virtual-services/{id}/real-servers", summary: "List a service's real servers", perm: read, resp: rsList{}, h: s.listRS},
		{method: "POST", path: v1 + "/virtual-services/{id}/real-servers", summary: "Add a real server", perm: write,
			body: config.RealServer{}, resp: config.RealServer{}, status: http.StatusCreated, h: s.createRS, dry: true},
		{method: "GET", path: v1 + "/virtual-services/{id}/real-servers/{rsid}", summary: "Show a real server", perm: read, resp: config.RealServer{}, h: s.getRS},
		{method: "PUT", path: v1 + "/virtual-services/{id}/real-servers/{rsid}", summary: "Replace a real server", perm: write,
			body: config.RealServer{}, resp: config.RealServer{}, h: s.updateRS, dry: true},
		{method: "PATCH", path: v1 + "/virtual-services/{id}/real-servers/{rsid}", summary: "Change fields of a real server (operators: enabled only)", perm: op,
			body: config.RealServer{}, resp: config.RealServer{}, h: s.updateRS, dry: true},
		{method: "DELETE", path: v1 + "/virtual-services/{id}/real-servers/{rsid}", summary: "Delete a real server", perm: write, resp: changeResult{}, h: s.deleteRS, dry: true},

		{method: "GET", path: v1 + "/options", summary: "Show the global options", perm: read, resp: config.Options{}, h: s.getOptions},
		{method: "PUT", path: v1 + "/options", summary: "Replace the global options", perm: write, body: config.Options{}, resp: config.Options{}, h: s.updateOptions, dry: true},
		{method: "PATCH", path: v1 + "/options", summary: "Change global options (e.g. {\"enableApi\": true})", perm: write, body: config.Options{}, resp: config.Options{}, h: s.updateOptions, dry: true},

		{method: "GET", path: v1 + "/config", summary: "The whole configuration (?format=yaml)", perm: read, resp: config.Config{}, h: s.getConfig},
		{method: "PUT", path: v1 + "/config", summary: "Replace the whole configuration (declarative apply; ?dryRun=true)", perm: write,
			body: config.Config{}, resp: changeResult{}, h: s.putConfig, dry: true},

		{method: "GET", path: v1 + "/certificates", summary: "List certificates", perm: read, resp: certList{}, h: s.listCerts},
		{method: "POST", path: v1 + "/certificates", summary: "Import a certificate (PEM with key, PFX with password, or intermediate)", perm: write,
			body: certUpload{}, resp: certs.Info{}, status: http.StatusCreated, h: s.uploadCert, dry: true},
		{method: "GET", path: v1 + "/certificates/{name}", summary: "Describe a certificate", perm: read, resp: certs.Info{}, h: s.getCert},
		{method: "DELETE", path: v1 + "/certificates/{name}", summary: "Delete a certificate that no service uses", perm: write, resp: changeResult{}, h: s.deleteCert, dry: true},

		{method: "GET", path: v1 + "/templates", summary: "List application templates (built-in and imported)", perm: read, resp: templateList{}, h: s.listTemplates},
		{method: "POST", path: v1 + "/templates", summary: "Import a template (YAML or JSON; ?replace=true)", perm: write,
			body: templates.Template{}, resp: templates.Summary{}, status: http.StatusCreated, h: s.importTemplate},
		{method: "GET", path: v1 + "/templates/{name}", summary: "A template document (YAML; ?format=json)", perm: read, resp: templates.Template{}, h: s.getTemplate},
		{method: "DELETE", path: v1 + "/templates/{name}", summary: "Delete an imported template", perm: write, status: http.StatusNoContent, h: s.deleteTemplate},
		{method: "POST", path: v1 + "/templates/{name}/instantiate", summary: "Create a template's virtual services as one change (?dryRun=true)", perm: write,
			body: instantiateRequest{}, resp: instantiateResult{}, status: http.StatusCreated, h: s.instantiate, dry: true},
		{method: "POST", path: v1 + "/virtual-services/{id}/template", summary: "Make a template of a service and its SubVSs (exportvstmplt)", perm: write,
			body: exportRequest{}, resp: templates.Template{}, h: s.exportTemplate},

		{method: "POST", path: v1 + "/verify", summary: "Deployment verification: run the services' smoke checks as a client would", perm: op,
			body: verifyRequest{}, resp: verifyReport{}, h: s.runVerify},

		{method: "GET", path: v1 + "/revisions", summary: "Configuration history, newest first (?before=&limit=)", perm: read, resp: revisionList{}, h: s.listRevisions},
		{method: "GET", path: v1 + "/revisions/{rev}", summary: "One revision with its configuration", perm: read, resp: revisionBody{}, h: s.getRevision},
		{method: "GET", path: v1 + "/revisions/{rev}/diff", summary: "What a revision changed (?from=N compares with another)", perm: read, resp: diffBody{}, h: s.diffRevision},
		{method: "POST", path: v1 + "/revisions/{rev}/rollback", summary: "Make a revision's configuration current again (?dryRun=true)", perm: write, resp: changeResult{}, h: s.rollback, dry: true},

		{method: "GET", path: v1 + "/backup", summary: "Download a backup file (configuration, users, API keys)", perm: secrets, h: s.backup},
		{method: "POST", path: v1 + "/restore", summary: "Restore a backup file (body: the file). Configuration only unless ?users=true (users and API keys too); " +
			"a backup not signed by this installation or a trusted key is refused (403) unless ?allowUnsigned=true; ?dryRun=true only answers what would change",
			perm: write, resp: restoreResult{}, dry: true, h: s.restore},
		{method: "GET", path: v1 + "/backup/key", summary: "Export this installation's backup signing key (to trust its backups elsewhere; keep it like a password)",
			perm: secrets, resp: backupKeyExport{}, h: s.exportBackupKey},
		{method: "GET", path: v1 + "/backup/keys", summary: "List the backup keys: this installation's (own) and the imported ones whose backups are trusted",
			perm: users, resp: backupKeyList{}, h: s.listBackupKeys},
		{method: "POST", path: v1 + "/backup/keys", summary: "Import another installation's backup key: restore then trusts the backups it signed",
			perm: users, body: backupKeyExport{}, resp: store.BackupKeyInfo{}, status: http.StatusCreated, h: s.importBackupKey},
		{method: "DELETE", path: v1 + "/backup/keys/{name}", summary: "Stop trusting an imported backup key (name: its ID)",
			perm: users, status: http.StatusNoContent, h: s.removeBackupKey},

		{method: "GET", path: v1 + "/network", summary: "The node's network settings (ETag: their revision), a pending confirm deadline, and what the configuration needs of the host as applied (VIPs, gateways, SNAT, transparency; managed or why not)",
			perm: read, resp: networkBody{}, h: s.getNetwork},
		{method: "PUT", path: v1 + "/network", summary: "Replace the network settings (If-Match: the network revision; ?dryRun=true). Rolled back unless confirmed within confirmSeconds; invalid settings: 422 with the fields",
			perm: write, body: netcfg.Network{}, resp: netChangeResult{}, h: s.putNetwork, dry: true},
		{method: "POST", path: v1 + "/network/confirm", summary: "Confirm the pending network change (body {\"revision\": N} or ?revision=N): it is kept",
			perm: write, body: netConfirm{}, resp: networkBody{}, h: s.confirmNetwork},
		{method: "GET", path: v1 + "/network/history", summary: "Network settings history, newest first (?before=&limit=)", perm: read, resp: netHistory{}, h: s.networkHistory},
		{method: "GET", path: v1 + "/network/links", summary: "The host's interfaces as the kernel has them (409 when Fulcrum does not manage the host's network)",
			perm: read, resp: linkList{}, h: s.networkLinks},

		{method: "GET", path: v1 + "/status", summary: "Runtime status and counters of services and real servers", perm: read, resp: statusBody{}, h: s.getStatus},
		{method: "GET", path: v1 + "/events", summary: "Health-check events, newest first (query: vs = service ID, limit = at most this many, default 100, 0 = all kept)",
			perm: read, resp: eventsBody{}, h: s.getEvents},
		{method: "GET", path: v1 + "/logs", summary: "The event log, newest first (query: severity = at least this severe, an RFC 5424 keyword; kind = a group prefix " +
			"such as rs. or one kind; q = text in the message or a field, case-insensitive; before = events numbered below this seq, for paging; " +
			"limit = at most this many, default 100, 0 = all kept)",
			perm: read, resp: logsBody{}, h: s.getLogs},
		{method: "GET", path: v1 + "/history", summary: "Statistics history for graphs (query: none = the appliance's total, vs = service ID, " +
			"subvs and rs = a SubVS's or real server's ID within vs; range = 1h (2-second points, default) or 24h (1-minute points); " +
			"since = Unix seconds, only newer points; fields = comma-separated names of: active, cps, bytesIn, bytesOut, rps, r4xx, r5xx). " +
			"Compact JSON: t (Unix seconds) and one array per field, null where the object did not exist",
			perm: read, resp: history.Doc{}, h: s.getHistory},
		{method: "GET", path: v1 + "/audit", summary: "Audit log, newest first (?before=&limit=)", perm: users, resp: auditList{}, h: s.audit},

		{method: "GET", path: v1 + "/users", summary: "List users (others than the caller need the users permission)", perm: read, resp: userList{}, h: s.listUsers},
		{method: "POST", path: v1 + "/users", summary: "Add a user", perm: users, body: newUser{}, resp: admin.UserInfo{}, status: http.StatusCreated, h: s.addUser},
		{method: "GET", path: v1 + "/users/{name}", summary: "Show a user", perm: read, resp: admin.UserInfo{}, h: s.getUser},
		{method: "PATCH", path: v1 + "/users/{name}", summary: "Change a user's role", perm: users, body: userPatch{}, resp: admin.UserInfo{}, h: s.patchUser},
		{method: "DELETE", path: v1 + "/users/{name}", summary: "Delete a user, their sessions and API keys", perm: users, status: http.StatusNoContent, h: s.deleteUser},
		{method: "POST", path: v1 + "/users/{name}/unlock", summary: "Lift the lockouts and the guessing budget of an account (fulcrum passwd --unlock)", perm: users,
			resp: unlockResult{}, h: s.unlockUser},
		{method: "PUT", path: v1 + "/users/{name}/password", summary: "Set a password (own: give the old one); revokes the user's sessions", perm: read,
			body: passwordChange{}, status: http.StatusNoContent, h: s.setPassword},

		{method: "GET", path: v1 + "/api-keys", summary: "List API keys (own; admins all or ?user=)", perm: read, resp: keyList{}, h: s.listKeys},
		{method: "POST", path: v1 + "/api-keys", summary: "Create an API key; its secret is shown once", perm: read, body: newKey{}, resp: createdKey{}, status: http.StatusCreated, h: s.createKey},
		{method: "DELETE", path: v1 + "/api-keys/{id}", summary: "Revoke an API key", perm: read, status: http.StatusNoContent, h: s.revokeKey},
	}
}
