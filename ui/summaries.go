package ui

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// summaryMinAge is how long a snapshot of the repository summaries serves,
// once they are expensive to compute (see summarySyncBelow), before a
// change to the store may replace it. Computing one reads every link,
// manifest and tag record (about 0.2 s at 10,000 repositories on the
// 2-core test machine), so under a steady stream of pushes it is redone
// at most this often, in the background.
const summaryMinAge = 10 * time.Second

// summarySyncBelow is the cost under which a request recomputes stale
// summaries itself, so that a registry small enough for that never shows
// a stale order.
const summarySyncBelow = 25 * time.Millisecond

// summaries keeps the summary of every repository (sizes as du counts
// them, tag count, last push), so that sorting the repository list by size
// or by last push and the storage page cost a sort of what is kept, not a
// pass over the whole store per request. Safe for concurrent use.
type summaries struct {
	st  *store.Store
	log func(msg string, args ...any)
	// minAge and syncBelow are summaryMinAge and summarySyncBelow; tests
	// change them.
	minAge, syncBelow time.Duration

	mu         sync.Mutex
	snap       *summarySnapshot
	refreshing bool
	computing  sync.Mutex // held by a request computing a snapshot itself
}

// summarySnapshot is one consistent reading of every repository, with its
// rows in the orders the pages ask for. It is never changed once made.
type summarySnapshot struct {
	Taken  time.Time
	gen    uint64
	cost   time.Duration // what computing it took
	byName []store.RepoSummary
	bySize []store.RepoSummary // Exclusive+Shared, largest first
	byPush []store.RepoSummary // newest push first
	byUse  []store.RepoSummary // Exclusive, largest first: what deleting frees
}

// get returns a snapshot that is current, or, when computing one is
// expensive (it cost summarySyncBelow or more last time), the kept one,
// refreshed in the background once it is older than minAge and the store
// has changed since it was taken.
func (s *summaries) get() (*summarySnapshot, error) {
	snap := s.current()
	if snap != nil && snap.cost >= s.syncBelow {
		if time.Since(snap.Taken) >= s.minAge && s.changedSince(snap) {
			s.refreshInBackground()
		}
		return snap, nil
	}
	if snap != nil && !s.changedSince(snap) {
		return snap, nil
	}
	// None yet, or stale and cheap: compute one here, a request at a time,
	// unless another request made a current one meanwhile.
	s.computing.Lock()
	defer s.computing.Unlock()
	if cur := s.current(); cur != nil && cur != snap && !s.changedSince(cur) {
		return cur, nil
	}
	fresh, err := s.compute()
	if err != nil {
		return nil, err
	}
	s.keep(fresh)
	return fresh, nil
}

func (s *summaries) current() *summarySnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// changedSince reports whether the store has had a write since snap was
// taken; when it cannot tell, it says so, and the caller recomputes (and
// meets the error there).
func (s *summaries) changedSince(snap *summarySnapshot) bool {
	gen, err := s.st.Generation()
	return err != nil || gen != snap.gen
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
	defer func() { snap.cost = time.Since(taken) }() // the sorts included
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
