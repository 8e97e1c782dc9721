package store

import (
	"context"
	"errors"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrSpaceLow is returned for a push while the data directory's filesystem
// is below its free-space mark and pruning found nothing more to remove
// (RefusePushes): the push is refused before its first byte instead of
// failing mid-write on a full disk. Pulls go on.
var ErrSpaceLow = errors.New("the registry's disk is below its free-space mark and nothing more can be pruned: pushes are refused until space is freed")

// RefusePushes turns the refusal of pushes with ErrSpaceLow on or off: the
// free-space watermark sets it when it cannot prune its way back above the
// low mark, and clears it once there is room again.
func (s *Store) RefusePushes(on bool) { s.spaceLow.Store(on) }

// PushesRefused reports whether RefusePushes is on.
func (s *Store) PushesRefused() bool { return s.spaceLow.Load() }

// checkSpace is the refusal at the start of every step that writes blob
// bytes.
func (s *Store) checkSpace() error {
	if s.spaceLow.Load() {
		return ErrSpaceLow
	}
	return nil
}

// PruneOldest removes the n least recently used tags (by the later of push
// and last pull) of the repositories a retention rule matches, whatever
// the rules keep, with what only they held (as ApplyRetention removes
// content): the free-space watermark's stricter retention. Each
// repository keeps its most recently pushed tag, immutable tags stay, and
// signature fallback tags follow their subject. It returns what it
// removed; no tags means nothing more is eligible.
func (s *Store) PruneOldest(ctx context.Context, n int) (RetentionReport, error) {
	type candidate struct {
		repo, tag string
		used      time.Time
	}
	var cands []candidate
	var rules []RetentionRule
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if rules, err = retentionRules(tx); err != nil {
			return err
		}
		for _, repo := range allRepos(tx) {
			if !matchesAny(rules, repo) {
				continue
			}
			tags, err := tagInfos(tx, repo, s.lastPulls(tx, repo))
			if err != nil {
				return err
			}
			newest := -1
			for i, t := range tags {
				if _, sig := SignatureSubject(t.Tag); !sig && (newest < 0 || t.Pushed.After(tags[newest].Pushed)) {
					newest = i
				}
			}
			for i, t := range tags {
				_, sig := SignatureSubject(t.Tag)
				if _, immutable := s.immutableRule(repo, t.Tag); i == newest || sig || immutable {
					continue
				}
				used := t.Pushed
				if t.Pulled.After(used) {
					used = t.Pulled
				}
				cands = append(cands, candidate{repo, t.Tag, used})
			}
		}
		return nil
	})
	if err != nil || len(cands) == 0 {
		return RetentionReport{}, err
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used.Before(cands[j].used) })
	drop := make(map[string]bool)
	for _, c := range cands[:min(n, len(cands))] {
		drop[string(key(c.repo, c.tag))] = true
	}
	return s.applyRetention(ctx, RetentionOptions{Rules: rules}, func(repo string, tags []TagInfo, _ []*RetentionRule, _ time.Time) []bool {
		kept := make([]bool, len(tags))
		for i, t := range tags {
			kept[i] = !drop[string(key(repo, t.Tag))]
		}
		return kept
	})
}

func matchesAny(rules []RetentionRule, repo string) bool {
	for i := range rules {
		if rules[i].repos.Match(repo) {
			return true
		}
	}
	return false
}
