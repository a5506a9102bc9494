package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// salvageSet is what is written to the new store.
type salvageSet struct {
	buckets map[string]map[string][]byte
	seqs    map[string]uint64
	// idsUpTo is the newest revision of the tree the meta bucket came
	// from: its highest IDs cover the revisions up to it.
	idsUpTo uint64
}

// immutableBuckets hold records that never change once written.
var immutableBuckets = [][]byte{bucketChanges, bucketConfigs, bucketAudit}

// mergeSources merges the trees read (newest first) and the records found
// by scanning, and checks every record, keeping those that decode.
func mergeSources(sources []*salvageSource, scanned *salvageSource) (*salvageSet, *SalvageReport) {
	r := &SalvageReport{}
	primary := scanned
	if len(sources) > 0 {
		primary = sources[0]
		r.Transaction = primary.txid
	} else {
		r.Lost = append(r.Lost, "no tree of the store could be read: users, API keys, templates and secrets are lost")
	}
	set := &salvageSet{buckets: map[string]map[string][]byte{}, seqs: map[string]uint64{}}
	names := map[string]bool{}
	for _, s := range sources {
		for name := range s.buckets {
			names[name] = true
		}
	}
	if len(primary.damaged[""]) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the list of buckets of %s is damaged: %s", primary.label, describe(primary.damaged[""])))
	}
	for name := range names {
		immutable := slices.ContainsFunc(immutableBuckets, func(b []byte) bool { return string(b) == name })
		merged := map[string][]byte{}
		var seq uint64
		if immutable {
			for i, s := range sources {
				added := 0
				for k, v := range s.buckets[name] {
					if _, ok := merged[k]; !ok {
						merged[k] = v
						added++
					}
				}
				seq = max(seq, s.seqs[name])
				if i > 0 && added > 0 {
					r.Notes = append(r.Notes, fmt.Sprintf("bucket %q: %d records taken from %s (the newest tree lacks them)", name, added, s.label))
				}
			}
		} else {
			// The newest readable, undamaged copy of the bucket.
			from := primary
			for _, s := range sources {
				if _, ok := s.buckets[name]; ok && len(s.damaged[name]) == 0 {
					from = s
					break
				}
			}
			if from.guessed && (name == string(bucketUsers) || name == string(bucketAPIKeys)) {
				r.Lost = append(r.Lost, fmt.Sprintf("bucket %q: found only in %s, of unknown age, so not copied (a user or key deleted since must not come back)", name, from.label))
				continue
			}
			if _, ok := primary.buckets[name]; !ok || len(primary.damaged[name]) > 0 {
				if from != primary {
					r.Notes = append(r.Notes, fmt.Sprintf("bucket %q: taken from %s, as the newest copy is damaged or missing", name, from.label))
				}
			}
			merged, seq = from.buckets[name], from.seqs[name]
			if name == string(bucketMeta) && len(from.damaged[name]) == 0 {
				for k := range from.buckets[string(bucketChanges)] {
					set.idsUpTo = max(set.idsUpTo, readU64([]byte(k)))
				}
			}
			if len(from.damaged[name]) > 0 {
				r.Lost = append(r.Lost, fmt.Sprintf("bucket %q is damaged: %s", name, describe(from.damaged[name])))
			}
		}
		set.buckets[name], set.seqs[name] = merged, seq
	}
	for _, p := range primary.pages {
		if len(r.Notes) < maxProblems {
			r.Notes = append(r.Notes, "unreadable: "+p)
		}
	}
	addScanned(set, r, scanned)
	checkSalvaged(set, r, primary)
	if len(sources) == 0 {
		r.Lost = append(r.Lost, fmt.Sprintf("revisions after %d may be lost: without a readable tree, the newest revisions are those found on pages", r.NewestRevision))
	}
	return set, r
}

// addScanned adds the revisions and audit entries found by scanning pages
// that the trees lack: a revision only with both its records (the change
// naming its number) and an audit entry only if it names its own number,
// and only from the oldest one the trees hold on, so that records the
// store had pruned do not come back.
func addScanned(set *salvageSet, r *SalvageReport, scanned *salvageSource) {
	bucket := func(name []byte) map[string][]byte {
		b := set.buckets[string(name)]
		if b == nil {
			b = map[string][]byte{}
			set.buckets[string(name)] = b
		}
		return b
	}
	changes, configs, audit := bucket(bucketChanges), bucket(bucketConfigs), bucket(bucketAudit)
	oldest := func(b map[string][]byte) uint64 {
		var lo uint64
		for k := range b {
			if n := readU64([]byte(k)); n != 0 && (lo == 0 || n < lo) {
				lo = n
			}
		}
		return lo
	}
	fromRev, fromSeq := oldest(changes), oldest(audit)
	revs, entries := 0, 0
	for k, chDoc := range scanned.buckets[string(bucketChanges)] {
		n := readU64([]byte(k))
		cfgDoc := scanned.buckets[string(bucketConfigs)][k]
		var ch Change
		if cfgDoc == nil || n < fromRev || (changes[k] != nil && configs[k] != nil) ||
			json.Unmarshal(chDoc, &ch) != nil || ch.Revision != n {
			continue
		}
		if checkConfig(cfgDoc, true) != nil {
			continue
		}
		changes[k], configs[k] = chDoc, cfgDoc
		revs++
	}
	for k, doc := range scanned.buckets[string(bucketAudit)] {
		n := readU64([]byte(k))
		var e AuditEntry
		if n < fromSeq || audit[k] != nil || json.Unmarshal(doc, &e) != nil || e.Seq != n || e.Action == "" {
			continue
		}
		audit[k] = doc
		entries++
	}
	if revs+entries > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d revisions and %d audit entries taken from %s", revs, entries, scanned.label))
	}
}

// checkSalvaged keeps the records that decode and reports the others and
// the gaps.
func checkSalvaged(set *salvageSet, r *SalvageReport, primary *salvageSource) {
	changes, configs := set.buckets[string(bucketChanges)], set.buckets[string(bucketConfigs)]
	revs := map[uint64]bool{}
	for _, b := range []map[string][]byte{changes, configs} {
		for k := range b {
			if len(k) == 8 {
				revs[binary.BigEndian.Uint64([]byte(k))] = true
			}
		}
	}
	var kept, lost []uint64
	var vs, rs int
	for _, n := range slices.Sorted(maps.Keys(revs)) {
		k := string(u64(n))
		var ch Change
		chDoc, cfgDoc := changes[k], configs[k]
		var err error
		switch {
		case chDoc == nil:
			err = errors.New("its change record is missing")
		case cfgDoc == nil:
			err = errors.New("its configuration is missing")
		case json.Unmarshal(chDoc, &ch) != nil || ch.Revision != n:
			err = errors.New("its change record is damaged")
		default:
			if err = checkConfig(cfgDoc, true); err != nil {
				err = fmt.Errorf("its configuration is damaged: %w", err)
			}
		}
		if err == nil && n > set.idsUpTo {
			// Newer than the highest IDs recorded: raise them to its own.
			var cfg *config.Config
			if cfg, err = decodeConfig(cfgDoc); err != nil {
				err = fmt.Errorf("its configuration is damaged: %w", err)
			} else {
				cfg.Walk(func(v, _ *config.VirtualService) {
					vs = max(vs, v.ID)
					for _, s := range v.RealServers {
						rs = max(rs, s.ID)
					}
				})
			}
		}
		if err != nil {
			r.Lost = append(r.Lost, fmt.Sprintf("revision %d: %v", n, err))
			lost = append(lost, n)
			delete(changes, k)
			delete(configs, k)
			continue
		}
		kept = append(kept, n)
	}
	// Drop records whose key is not a revision number.
	for _, b := range []map[string][]byte{changes, configs} {
		for k := range b {
			if len(k) != 8 {
				delete(b, k)
			}
		}
	}
	r.Revisions = len(kept)
	if len(kept) > 0 {
		r.OldestRevision, r.NewestRevision = kept[0], kept[len(kept)-1]
		// Revision numbers are consecutive: a gap is a loss.
		if gaps := ranges(slices.Sorted(slices.Values(append(kept, lost...)))); gaps != "" {
			r.Lost = append(r.Lost, "revisions "+gaps+" could not be read")
		}
	}
	r.Lost = append(r.Lost, openEnded(primary, "revisions", kept, bucketChanges, bucketConfigs)...)
	meta := set.buckets[string(bucketMeta)]
	if meta == nil {
		meta = map[string][]byte{}
		set.buckets[string(bucketMeta)] = meta
	}
	meta[string(keyLayout)] = u64(layoutVersion)
	meta[string(keyMaxVSID)] = u64(max(readU64(meta[string(keyMaxVSID)]), uint64(vs)))
	meta[string(keyMaxRSID)] = u64(max(readU64(meta[string(keyMaxRSID)]), uint64(rs)))

	users := set.buckets[string(bucketUsers)]
	for k, v := range users {
		var u config.User
		if err := json.Unmarshal(v, &u); err != nil || u.Name != k {
			r.Lost = append(r.Lost, fmt.Sprintf("user %q: its record is damaged", k))
			delete(users, k)
		}
	}
	r.Users = len(users)
	keys := set.buckets[string(bucketAPIKeys)]
	for k, v := range keys {
		var key config.APIKey
		switch err := json.Unmarshal(v, &key); {
		case err != nil || key.ID != k:
			r.Lost = append(r.Lost, fmt.Sprintf("API key %q: its record is damaged", k))
			delete(keys, k)
		case users[key.User] == nil:
			r.Lost = append(r.Lost, fmt.Sprintf("API key %q: its user %q was not salvaged", k, key.User))
			delete(keys, k)
		}
	}
	r.APIKeys = len(keys)
	audit := set.buckets[string(bucketAudit)]
	var seqs []uint64
	for k, v := range audit {
		var e AuditEntry
		if len(k) != 8 || json.Unmarshal(v, &e) != nil || e.Seq != binary.BigEndian.Uint64([]byte(k)) {
			if len(k) == 8 {
				r.Lost = append(r.Lost, fmt.Sprintf("audit entry %d: its record is damaged", binary.BigEndian.Uint64([]byte(k))))
			}
			delete(audit, k)
			continue
		}
		seqs = append(seqs, e.Seq)
	}
	slices.Sort(seqs)
	if gaps := ranges(seqs); gaps != "" {
		r.Lost = append(r.Lost, "audit entries "+gaps+" could not be read")
	}
	r.Lost = append(r.Lost, openEnded(primary, "audit entries", seqs, bucketAudit)...)
	if len(seqs) > 0 {
		set.seqs[string(bucketAudit)] = max(set.seqs[string(bucketAudit)], seqs[len(seqs)-1])
	}
	r.AuditEntries = len(audit)
	r.Templates = len(set.buckets[string(bucketTemplates)])
	r.NetworkRevisions = checkSalvagedNetwork(set.buckets[string(bucketNetwork)], r)
	r.Secrets = len(set.buckets[string(bucketSecrets)])
	if r.Users == 0 {
		r.Lost = append(r.Lost, "no user could be read: the next start creates the administrator \"bal\" with a new password")
	}
	if _, ok := set.buckets[string(bucketSecrets)]; !ok || len(primary.damaged[string(bucketSecrets)]) > 0 {
		r.Lost = append(r.Lost, "the installation secrets could not all be read: new ones are made, so sessions end and backups signed before may not be recognised as this install's")
	}
	slices.Sort(r.Lost)
}

// openEnded reports the unreadable parts of the numbered buckets of the
// newest tree that lie beyond the records kept (the sorted numbers kept):
// the gaps between them are reported apart, but records after the newest
// or before the oldest kept may be missing without a trace.
func openEnded(primary *salvageSource, what string, kept []uint64, buckets ...[]byte) []string {
	var out []string
	num := func(k []byte) uint64 {
		if len(k) != 8 {
			return 0
		}
		return binary.BigEndian.Uint64(k)
	}
	for _, b := range buckets {
		for _, p := range primary.damaged[string(b)] {
			switch {
			case len(kept) == 0:
				out = append(out, fmt.Sprintf("no %s could be read (%s)", what, p.why))
			case p.hi == nil && (p.lo == nil || num(p.lo) >= kept[len(kept)-1]):
				out = append(out, fmt.Sprintf("%s after %d may be lost (%s)", what, kept[len(kept)-1], p.why))
			case p.lo == nil && p.hi != nil && num(p.hi) <= kept[0]:
				out = append(out, fmt.Sprintf("%s before %d may be lost (%s)", what, kept[0], p.why))
			}
		}
	}
	return out
}

// ranges describes the numbers missing between the first and the last of
// the sorted ns, as "3, 7-9".
func ranges(ns []uint64) string {
	var parts []string
	for i := 1; i < len(ns) && len(parts) < 20; i++ {
		if lo, hi := ns[i-1]+1, ns[i]-1; lo == hi {
			parts = append(parts, fmt.Sprint(lo))
		} else if lo < hi {
			parts = append(parts, fmt.Sprintf("%d-%d", lo, hi))
		}
	}
	return strings.Join(parts, ", ")
}

// checkSalvagedNetwork keeps the network revisions of b that decode,
// reports the others, and returns how many are kept.
func checkSalvagedNetwork(b map[string][]byte, r *SalvageReport) int {
	for k, v := range b {
		if _, err := decodeNetRevision([]byte(k), v); err != nil {
			r.Lost = append(r.Lost, err.Error())
			delete(b, k)
		}
	}
	return len(b)
}
