// Package health runs Fulcrum's health checks and computes the statuses of
// virtual services and real servers, as LoadMaster does.
//
// A Checker runs one kind of check (icmp, tcp, http, https, smtp, nntp,
// ftp, telnet, pop3, imap, ldap, bdata, dns) against a Target. The Monitor
// runs the checks of a configuration: Sync applies a configuration
// (SyncPlan with the packet marks of services that have their own default
// gateway, which their checks' sockets then carry), keeping the state of
// every check whose specification did not change;
// results go to the real servers' backend.Server (SetHealth) and to
// Options.OnChange; transitions go to Options.OnEvent (the appliance's event
// bus); Status and Events expose statuses and transitions to
// the API. ReportFailure and ReportSuccess are the passive checks fed by
// the proxies.
//
// docs/health-checks.md describes the check types, timers and statuses,
// and the decisions taken where LoadMaster's documentation says nothing.
package health
