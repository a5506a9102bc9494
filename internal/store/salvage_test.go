package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

// TestSalvage salvages a store file damaged in each of the 13 ways: the
// damaged file is never changed, and what Salvage writes is a healthy
// store that opens with what could be read.
func TestSalvage(t *testing.T) {
	pristine := makeInstall(t)
	// What each damage leaves to salvage: the number of revisions (-1:
	// some), or refused when nothing is readable.
	want := map[string]struct {
		revisions int
		refused   bool
		lost      string // in the report of what could not be read
	}{
		"truncated to 50%":                    {revisions: -1, lost: "may be lost"},
		"truncated to 1 page":                 {refused: true},
		"empty file":                          {refused: true},
		"a gzip file (a backup) in its place": {refused: true},
		"a text file in its place":            {refused: true},
		"zeroed data page":                    {revisions: 58, lost: "revision 3: its configuration is missing"},
		"random bytes on a data page":         {revisions: 58, lost: "revision 4: its configuration is missing"},
	}
	for _, d := range storetest.Damages(15) {
		t.Run(d.Name, func(t *testing.T) {
			dir := storetest.CopyDir(t, pristine)
			path := filepath.Join(dir, FileName)
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			outDir := t.TempDir()
			out := filepath.Join(outDir, FileName)
			r, err := Salvage(path, out, SalvageOptions{})
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("Salvage changed the damaged file")
			}
			w, ok := want[d.Name]
			if !ok {
				w.revisions = 60 // everything, from the other meta page's tree
			}
			if err != nil {
				t.Logf("salvage refused: %v", err)
				if !w.refused {
					t.Errorf("Salvage: %v", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("the error does not name the file")
				}
				if _, serr := os.Stat(out); serr == nil {
					t.Error("a refused salvage left its output file")
				}
				return
			}
			if w.refused {
				t.Error("Salvage succeeded on a file with nothing readable")
			}
			switch lost := strings.Join(r.Lost, "\n"); {
			case w.revisions == -1 && r.Revisions == 0, w.revisions > 0 && r.Revisions != w.revisions:
				t.Errorf("%d revisions salvaged, want %d", r.Revisions, w.revisions)
			case w.revisions == 60 && (lost != "" || r.Users != 2 || r.APIKeys != 1 || r.AuditEntries != 40 || r.Secrets != 1):
				t.Errorf("not everything salvaged: %+v", r)
			case !strings.Contains(lost, w.lost):
				t.Errorf("the report of what was lost lacks %q: %s", w.lost, lost)
			}
			t.Logf("%d revisions (%d-%d), %d users, %d keys, %d audit; lost %q; notes %q", r.Revisions, r.OldestRevision, r.NewestRevision,
				r.Users, r.APIKeys, r.AuditEntries, r.Lost, r.Notes)
			s, err := Open(outDir, Options{})
			if err != nil {
				t.Fatalf("the salvaged store does not open: %v", err)
			}
			defer s.Close()
			h, err := s.History(0, 1000)
			if err != nil || len(h) != r.Revisions {
				t.Errorf("History: %d entries, %v; the report says %d", len(h), err, r.Revisions)
			}
			for _, c := range h {
				rev, err := s.Revision(c.Revision)
				if err != nil || !config.Equal(rev.Config, gen(c.Revision)) {
					t.Errorf("salvaged revision %d: %v", c.Revision, err)
				}
			}
			if cur, err := s.Current(); err == nil && cur.Revision > 0 {
				maxVS, maxRS := 0, 0
				cur.Config.Walk(func(v, _ *config.VirtualService) {
					maxVS = max(maxVS, v.ID)
					for _, rs := range v.RealServers {
						maxRS = max(maxRS, rs.ID)
					}
				})
				if vs, rs, err := s.IDHighWater(); err != nil || vs < maxVS || rs < maxRS {
					t.Errorf("highest IDs %d, %d (%v) below those of revision %d: %d, %d", vs, rs, err, cur.Revision, maxVS, maxRS)
				}
			}
			a, err := s.Audit(0, 1)
			if err != nil || len(a) != 1 || a[0].Action != "salvage" || !strings.Contains(a[0].Detail, path) {
				t.Errorf("no audit entry of the salvage: %+v %v", a, err)
			}
		})
	}
}
