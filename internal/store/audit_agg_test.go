package store

import (
	"fmt"
	"testing"
)

func openAudit(t *testing.T, dir string, maxAudit int) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxAudit: maxAudit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// auditCounts returns the number of entries and of failure entries (by
// their Action, "fail") in the log, checking that they come newest first.
func auditCounts(t *testing.T, s *Store) (all, fails int, entries []AuditEntry) {
	t.Helper()
	entries, err := s.Audit(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if i > 0 && e.Seq >= entries[i-1].Seq {
			t.Fatalf("entries out of order: %d after %d", e.Seq, entries[i-1].Seq)
		}
		if e.Action == "fail" {
			fails++
		}
	}
	return len(entries), fails, entries
}

// TestAuditFailuresKeptInTheirShare reproduces the retention half of issue
// 15, item 5: failures (bad API keys from rotating addresses, 50 a
// second) flushed the whole audit log, logins and changes included. With
// AppendAuditEntry they only ever push out older failures.
func TestAuditFailuresKeptInTheirShare(t *testing.T) {
	s := openAudit(t, t.TempDir(), 100)
	for i := range 10 {
		if _, err := s.AppendAuditEntry(AuditEntry{Action: "login", Detail: fmt.Sprint("ok ", i), Success: true}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		if _, err := s.AppendAuditEntry(AuditEntry{Action: "fail", Detail: fmt.Sprint(i)}, true); err != nil {
			t.Fatal(err)
		}
	}
	all, fails, entries := auditCounts(t, s)
	if all != 30 || fails != 100/AuditFailureShareDivisor {
		t.Fatalf("%d entries, %d failures; want the 10 logins and the newest %d failures", all, fails, 100/AuditFailureShareDivisor)
	}
	if entries[0].Detail != "999" || entries[all-1].Detail != "ok 0" {
		t.Fatalf("kept %q … %q; want the newest failure … the first login", entries[0].Detail, entries[all-1].Detail)
	}

	// Other entries may fill the rest of the log, and then push out the
	// oldest entries, failures and others alike, down to the share.
	for i := range 200 {
		if _, err := s.AppendAuditEntry(AuditEntry{Action: "config", Detail: fmt.Sprint("change ", i), Success: true}, false); err != nil {
			t.Fatal(err)
		}
	}
	if all, fails, _ := auditCounts(t, s); all != 100 || fails != 0 {
		t.Fatalf("after 200 changes: %d entries, %d failures; want 100 changes", all, fails)
	}
	for range 1000 {
		s.AppendAuditEntry(AuditEntry{Action: "fail"}, true)
	}
	all, fails, entries = auditCounts(t, s)
	if all != 100 || fails != 20 || entries[all-1].Detail != "change 120" {
		t.Fatalf("after 1000 more failures: %d entries, %d failures, oldest %q; want 100, 20, the newest 80 changes", all, fails, entries[all-1].Detail)
	}

	// The shares hold across a restart.
	dir := t.TempDir()
	s2 := openAudit(t, dir, 10)
	s2.AppendAuditEntry(AuditEntry{Action: "login", Success: true}, false)
	s2.Close()
	s2 = openAudit(t, dir, 10)
	for range 50 {
		s2.AppendAuditEntry(AuditEntry{Action: "fail"}, true)
	}
	if all, fails, _ := auditCounts(t, s2); all != 3 || fails != 2 {
		t.Fatalf("after a restart: %d entries, %d failures; want the login and 2 failures", all, fails)
	}
}

// TestAuditEntriesOfAppendAuditPruned checks that entries written by
// AppendAudit (an older version) are pruned as before once
// AppendAuditEntry takes over, and that sequence numbers go on.
func TestAuditEntriesOfAppendAuditPruned(t *testing.T) {
	s := openAudit(t, t.TempDir(), 10)
	for range 8 {
		if _, err := s.AppendAudit(AuditEntry{Action: "old", Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	e, err := s.AppendAuditEntry(AuditEntry{Action: "login", Success: true}, false)
	if err != nil || e.Seq != 9 {
		t.Fatalf("AppendAuditEntry = %+v, %v; want sequence 9", e, err)
	}
	for range 20 {
		s.AppendAuditEntry(AuditEntry{Action: "fail"}, true)
	}
	all, fails, entries := auditCounts(t, s)
	if fails != 2 || all > 10 {
		t.Fatalf("%d entries, %d failures", all, fails)
	}
	for _, e := range entries {
		if e.Action == "old" && e.Seq <= 29-10 {
			t.Fatalf("entry %d of AppendAudit outlived %d newer entries", e.Seq, 29-e.Seq)
		}
	}
	if entries[all-1].Action != "login" && entries[all-1].Action != "old" {
		t.Fatalf("the login was pushed out: %+v", entries)
	}
}
