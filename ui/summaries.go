package ui

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// summaryMinAge is how long a snapshot of the repository summaries serves
// before a change to the store may replace it. Computing one reads every
// link, manifest and tag record (about 0.2 s at 10,000 repositories on the
// 2-core test machine), so under a steady stream of pushes it is redone at
// most this often, in the background.
const summaryMinAge = 10 * time.Second

// summaries keeps the summary of every repository (sizes as du counts
// them, tag count, last push), so that sorting the repository list by size
// or by last push and the storage page cost a sort of what is kept, not a
// pass over the whole store per request. Safe for concurrent use.
type summaries struct {
	st  *store.Store
	log func(msg string, args ...any)
	// minAge is summaryMinAge; tests shorten it.
	minAge time.Duration

	mu         sync.Mutex
	snap       *summarySnapshot
	refreshing bool
	first      sync.Mutex // held while the very first snapshot is computed
}

// summarySnapshot is one consistent reading of every repository, with its
// rows in the orders the pages ask for. It is never changed once made.
type summarySnapshot struct {
	Taken  time.Time
	gen    uint64
	byName []store.RepoSummary
	bySize []store.RepoSummary // Exclusive+Shared, largest first
	byPush []store.RepoSummary // newest push first
	byUse  []store.RepoSummary // Exclusive, largest first: what deleting frees
}

// get returns a snapshot: the kept one, refreshed in the background when
// the store has changed since it was taken and it is older than
// summaryMinAge. Only the first call computes one while the caller waits.
func (s *summaries) get() (*summarySnapshot, error) {
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap == nil {
		return s.firstSnapshot()
	}
	if time.Since(snap.Taken) >= s.minAge {
		if gen, err := s.st.Generation(); err == nil && gen != snap.gen {
			s.refreshInBackground()
		}
	}
	return snap, nil
}

func (s *summaries) firstSnapshot() (*summarySnapshot, error) {
	s.first.Lock()
	defer s.first.Unlock()
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap != nil {
		return snap, nil // another request made it while this one waited
	}
	snap, err := s.compute()
	if err != nil {
		return nil, err
	}
	s.keep(snap)
	return snap, nil
}

func (s *summaries) refreshInBackground() {
	s.mu.Lock()
	if s.refreshing {
		s.mu.Unlock()
		return
	}
	s.refreshing = true
	s.mu.Unlock()
	go func() {
		snap, err := s.compute()
		if err != nil {
			s.log("repository summaries", "err", err)
		} else {
			s.keep(snap) // before refreshing ends, so no request starts another for the same change
		}
		s.mu.Lock()
		s.refreshing = false
		s.mu.Unlock()
	}()
}

// keep makes snap the current snapshot unless a newer one is there.
func (s *summaries) keep(snap *summarySnapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil || snap.gen >= s.snap.gen {
		s.snap = snap
	}
}

func (s *summaries) compute() (*summarySnapshot, error) {
	taken := time.Now()
	rows, gen, err := s.st.Summaries()
	if err != nil {
		return nil, err
	}
	snap := &summarySnapshot{Taken: taken, gen: gen, byName: rows}
	snap.bySize = sortedBy(rows, func(a, b store.RepoSummary) int {
		return cmp.Compare(b.Exclusive+b.Shared, a.Exclusive+a.Shared)
	})
	snap.byPush = sortedBy(rows, func(a, b store.RepoSummary) int { return b.LastPush.Compare(a.LastPush) })
	snap.byUse = sortedBy(rows, func(a, b store.RepoSummary) int { return cmp.Compare(b.Exclusive, a.Exclusive) })
	return snap, nil
}

// sortedBy returns a copy of rows (which are in name order) sorted by
// order, names breaking ties.
func sortedBy(rows []store.RepoSummary, order func(a, b store.RepoSummary) int) []store.RepoSummary {
	out := slices.Clone(rows)
	slices.SortStableFunc(out, order)
	return out
}
