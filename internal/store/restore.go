package store

import (
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Restore is RestoreWith with the default options: the backup must be
// signed by this installation or a trusted key, and only its configuration
// is restored (users and API keys are kept).
func (s *Store) Restore(r io.Reader, ch Change) (Revision, error) {
	rev, _, err := s.RestoreWith(r, ch, RestoreOptions{})
	return rev, err
}

// RestoreWith reads a backup made by Backup (gzip-compressed or plain JSON,
// at most MaxBackupSize bytes) and, in one transaction, makes its
// configuration a new revision with the change ch and, with o.Accounts,
// replaces all users and API keys by those of the backup. The history is
// kept. If ch.Summary is empty it says which backup was restored and what
// changed (RestorePlan.Summary). It returns the new revision and what the
// restore changed; with o.DryRun it changes nothing and returns the
// current revision (without its Config) and what the restore would change.
//
// RestoreWith refuses, changing nothing, a file that is not a backup, of
// an unknown version, corrupted (checksum mismatch), not signed by this
// installation or a trusted key (unless o.AllowUnsigned; the error then
// also wraps ErrUntrustedBackup), with nonsense metadata (a revision
// beyond 2^53-1, made in the future or before 2020), with an invalid
// configuration (the error then also wraps the config.Errors), or with an
// invalid user or API key; with o.Accounts also one without a user of role
// admin, or that would give a user a password hash of bcrypt cost below
// o.MinBcryptCost (a hash the user already has is kept). Such errors wrap
// ErrBadBackup.
//
// RestoreWith is PrepareRestore and CommitRestore at once, for a caller
// that has nothing to check in between.
func (s *Store) RestoreWith(r io.Reader, ch Change, o RestoreOptions) (Revision, *RestorePlan, error) {
	p, err := s.readRestore(r, o)
	if err != nil {
		return Revision{}, nil, err
	}
	if o.DryRun {
		cur, plan, err := s.planRestore(p)
		if err != nil {
			return Revision{}, nil, err
		}
		return Revision{Change: cur.Change}, plan, nil
	}
	return s.commitRestore(nil, ch, p)
}

// PreparedRestore is a backup read and checked by PrepareRestore, for
// CommitRestore.
type PreparedRestore struct {
	set     *restoreSet
	o       RestoreOptions
	minCost int
}

// Config returns the backup's configuration, with its defaults set and
// validated. It is the configuration CommitRestore stores; the caller must
// not modify it.
func (p *PreparedRestore) Config() *config.Config { return p.set.cfg }

// PrepareRestore reads and checks a backup as RestoreWith does and returns
// it with what restoring it would change now, changing nothing (o.DryRun
// makes no difference). The configuration's write path uses it to have
// the data plane accept the backup's configuration before anything is
// stored; CommitRestore then stores it.
func (s *Store) PrepareRestore(r io.Reader, o RestoreOptions) (*PreparedRestore, *RestorePlan, error) {
	p, err := s.readRestore(r, o)
	if err != nil {
		return nil, nil, err
	}
	_, plan, err := s.planRestore(p)
	if err != nil {
		return nil, nil, err
	}
	return p, plan, nil
}

// CommitRestore restores p as RestoreWith does: in one transaction, the
// backup's configuration becomes a new revision with the change ch and,
// with the options' Accounts, its users and API keys replace all others.
// The current revision must still be base; otherwise nothing is written
// and the error is a *ConflictError. The users and keys are checked again
// against those stored at the commit. It returns the new revision (with
// p's Config) and what the restore changed.
func (s *Store) CommitRestore(base uint64, ch Change, p *PreparedRestore) (Revision, *RestorePlan, error) {
	if p == nil || p.set == nil {
		return Revision{}, nil, errors.New("restore: nothing prepared")
	}
	return s.commitRestore(&base, ch, p)
}

// readRestore reads, decodes and checks the backup in r, its signature
// against the trusted keys unless o.AllowUnsigned.
func (s *Store) readRestore(r io.Reader, o RestoreOptions) (*PreparedRestore, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBackupSize+1))
	if err != nil {
		return nil, fmt.Errorf("restore: read backup: %w", err)
	}
	keys, err := s.loadBackupKeys()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	set, err := parseBackup(data, keys, time.Now())
	if err != nil {
		return nil, err
	}
	if !o.AllowUnsigned {
		if err := checkTrusted(set.info); err != nil {
			return nil, err
		}
	}
	minCost := o.MinBcryptCost
	if minCost <= 0 {
		minCost = MinBcryptCost
	}
	return &PreparedRestore{set: set, o: o, minCost: minCost}, nil
}

// planRestore compares p with the store's current state in a read
// transaction.
func (s *Store) planRestore(p *PreparedRestore) (Revision, *RestorePlan, error) {
	var cur Revision
	var plan *RestorePlan
	var refused error
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		cur, plan, refused, err = p.compare(tx)
		if refused != nil {
			return refused
		}
		return err
	})
	if refused != nil {
		return Revision{}, nil, refused
	}
	if err != nil {
		return Revision{}, nil, fmt.Errorf("restore: %w", err)
	}
	return cur, plan, nil
}

// compare makes the plan of restoring p from the state in tx and, when
// accounts are restored, checks them against the stored ones: refused is
// the reason they cannot be installed. It returns the current revision.
func (p *PreparedRestore) compare(tx *bolt.Tx) (cur Revision, plan *RestorePlan, refused, err error) {
	plan = &RestorePlan{Backup: p.set.info, AccountsRestored: p.o.Accounts}
	cur, err = currentRevision(tx)
	if err != nil {
		return Revision{}, nil, nil, err
	}
	if plan.Diff = config.Diff(cur.Config, p.set.cfg); plan.Diff == nil {
		plan.Diff = []config.Difference{}
	}
	users, err := readUsers(tx)
	if err != nil {
		return Revision{}, nil, nil, err
	}
	keys, err := readAPIKeys(tx)
	if err != nil {
		return Revision{}, nil, nil, err
	}
	plan.Users, plan.APIKeys = diffUsers(users, p.set.users), diffKeys(keys, p.set.keys)
	if p.o.Accounts {
		if refused = checkAccounts(p.set.users, users, p.minCost); refused != nil {
			return Revision{}, nil, refused, nil
		}
	}
	return cur, plan, nil, nil
}

// commitRestore stores p in one transaction, if the current revision is
// *base when base is not nil.
func (s *Store) commitRestore(base *uint64, ch Change, p *PreparedRestore) (Revision, *RestorePlan, error) {
	var out Revision
	var plan *RestorePlan
	var refused error
	err := s.update(func(tx *bolt.Tx) error {
		if base != nil {
			if cur := currentNumber(tx); cur != *base {
				return &ConflictError{Base: *base, Current: cur}
			}
		}
		var err error
		if _, plan, refused, err = p.compare(tx); refused != nil || err != nil {
			if refused != nil {
				return refused
			}
			return err
		}
		if ch.Summary == "" {
			ch.Summary = plan.Summary()
		}
		if out, err = s.putRevision(tx, ch, p.set.cfg, p.set.doc); err != nil {
			return err
		}
		out.Config = p.set.cfg
		if !p.o.Accounts {
			return nil
		}
		if err := replaceBucket(tx, bucketUsers, len(p.set.users), func(i int) ([]byte, any) {
			return []byte(p.set.users[i].Name), p.set.users[i]
		}); err != nil {
			return fmt.Errorf("replace users: %w", err)
		}
		if err := replaceBucket(tx, bucketAPIKeys, len(p.set.keys), func(i int) ([]byte, any) {
			return []byte(p.set.keys[i].ID), p.set.keys[i]
		}); err != nil {
			return fmt.Errorf("replace api keys: %w", err)
		}
		return nil
	})
	if refused != nil {
		return Revision{}, nil, refused
	}
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return Revision{}, nil, conflict
	}
	if err != nil {
		return Revision{}, nil, fmt.Errorf("restore: %w", err)
	}
	return out, plan, nil
}
