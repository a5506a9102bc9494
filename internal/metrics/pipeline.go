package metrics

import "strconv"

// Pipeline are the counters of what carries logs and alerts out of
// Fulcrum: the access log writer, the syslog senders and the alerter.
// The appliance fills it at scrape time (Options.Pipeline).
type Pipeline struct {
	// AccessLines, AccessBytes, AccessDropped and AccessWriteErrors are
	// the access log writer's counters (accesslog.Stats).
	AccessLines, AccessBytes, AccessDropped, AccessWriteErrors uint64
	// Syslog are the syslog hosts' counters, one per configured host.
	Syslog []SyslogHost
	// MailsSent and MailsFailed count alert mails.
	MailsSent, MailsFailed int64
	// Webhooks are the webhooks' counters in configuration order.
	Webhooks []WebhookCounts
}

// SyslogHost are one syslog host's counters.
type SyslogHost struct {
	// Host is "protocol://address:port" (from the configuration).
	Host string
	// Sent and Dropped count messages; Queued is the queue now.
	Sent, Dropped int64
	// Queued is the number of messages waiting now.
	Queued int
	// Connected is true while a connection (UDP: a socket) is open.
	Connected bool
}

// WebhookCounts are one webhook's counters.
type WebhookCounts struct {
	// Sent, Failed and Dropped count events posted, given up on and not
	// queued.
	Sent, Failed, Dropped int64
}

// Families of the pipeline. A webhook is labelled by its position (1
// first), never by its URL, which may hold a token.
var (
	fAccessLines   = fam(SchemeFulcrum, "fulcrum_accesslog_lines_total", Counter, nil, "Access log lines handed to a destination (file, syslog or both).")
	fAccessBytes   = fam(SchemeFulcrum, "fulcrum_accesslog_bytes_total", Counter, nil, "Bytes written to the access log file.")
	fAccessDropped = fam(SchemeFulcrum, "fulcrum_accesslog_dropped_total", Counter, nil, "Access log lines lost because the writer's queue was full.")
	fAccessErrors  = fam(SchemeFulcrum, "fulcrum_accesslog_write_errors_total", Counter, nil, "Failed writes to the access log file.")
	fSyslogSent    = fam(SchemeFulcrum, "fulcrum_syslog_messages_total", Counter, []string{"host"}, "Messages written to the remote syslog host.")
	fSyslogDropped = fam(SchemeFulcrum, "fulcrum_syslog_dropped_total", Counter, []string{"host"}, "Messages lost for the remote syslog host (queue full, host removed, write failed three times).")
	fSyslogQueued  = fam(SchemeFulcrum, "fulcrum_syslog_queued", Gauge, []string{"host"}, "Messages waiting for the remote syslog host.")
	fSyslogUp      = fam(SchemeFulcrum, "fulcrum_syslog_connected", Gauge, []string{"host"}, "1 while a connection to the remote syslog host is open (UDP: a socket).")
	fMails         = fam(SchemeFulcrum, "fulcrum_alert_mails_total", Counter, []string{"result"}, "Alert mails (batches of events) by result: sent or failed.")
	fWebhookEvents = fam(SchemeFulcrum, "fulcrum_alert_webhook_events_total", Counter, []string{"webhook", "result"}, "Events for the webhook (1 = the first configured) by result: sent, failed (given up after retries) or dropped (queue full).")
)

func (s *scrape) pipeline(p Pipeline) {
	s.put(fAccessLines, float64(p.AccessLines))
	s.put(fAccessBytes, float64(p.AccessBytes))
	s.put(fAccessDropped, float64(p.AccessDropped))
	s.put(fAccessErrors, float64(p.AccessWriteErrors))
	for _, h := range p.Syslog {
		s.put(fSyslogSent, float64(h.Sent), h.Host)
		s.put(fSyslogDropped, float64(h.Dropped), h.Host)
		s.put(fSyslogQueued, float64(h.Queued), h.Host)
		s.put(fSyslogUp, boolf(h.Connected), h.Host)
	}
	s.put(fMails, float64(p.MailsSent), "sent")
	s.put(fMails, float64(p.MailsFailed), "failed")
	for i, w := range p.Webhooks {
		id := strconv.Itoa(i + 1)
		s.put(fWebhookEvents, float64(w.Sent), id, "sent")
		s.put(fWebhookEvents, float64(w.Failed), id, "failed")
		s.put(fWebhookEvents, float64(w.Dropped), id, "dropped")
	}
}
