package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit (docs/performance.md, "Small pushes"). A push is durable
// once its blob file is fsynced, renamed into its shard, the shard fsynced
// and its records committed; each of those used to be paid per request,
// and bbolt commits one writer at a time with an fdatasync each. Commits
// that arrive while one is under way now wait together and are made by one
// of them, the leader, as a batch:
//
//  1. the batch's digest locks are taken (sorted order, as GC does), so GC
//     cannot take a placed file for an orphan before its record exists;
//  2. every staged file (already fsynced by its own request, so those
//     fsyncs ran in parallel) is renamed into place;
//  3. each shard directory that got a rename is fsynced once, the shards
//     in parallel;
//  4. one bbolt transaction runs every job's function and commits with one
//     fsync;
//  5. then, and only then, every job is answered.
//
// Nothing is acknowledged before it is durable: a job's caller returns
// after step 5 of the batch that carried it. When a job's function fails,
// the transaction is rolled back and run again without it, so one
// request's error (a manifest whose blob GC took) is its own and the others
// still commit; a job's function must therefore be safe to run more than
// once (it only reads and writes tx). A lone commit finds no batch under
// way and leads at once: no timer, no added latency when idle.
//
// Leadership passes on: the leader, its batch done, hands the next batch to
// one of its waiters and returns, so no request carries others' work for
// longer than one batch.

// commitJob is one caller's part of a batch.
type commitJob struct {
	staged []StagedBlob // verified, fsynced files to rename into place first
	fn     func(tx *bolt.Tx) error
	err    error
	done   chan bool // receives false when the job is done, true when its caller is to lead the next batch
}

// groupCommit queues the jobs that wait for the batch under way.
type groupCommit struct {
	mu      sync.Mutex
	running bool
	queue   []*commitJob
}

// maxBatchJobs bounds one batch, so a burst does not make one transaction
// (and the digest locks it holds) arbitrarily long.
const maxBatchJobs = 256

// groupUpdate places staged (may be empty) and runs fn in a write
// transaction shared with concurrent callers, and returns when both are
// durable, with fn's error or the batch's. fn may run more than once.
func (s *Store) groupUpdate(staged []StagedBlob, fn func(tx *bolt.Tx) error) error {
	j := &commitJob{staged: staged, fn: fn, done: make(chan bool, 1)}
	g := &s.commits
	g.mu.Lock()
	g.queue = append(g.queue, j)
	if g.running {
		g.mu.Unlock()
		if lead := <-j.done; !lead {
			return j.err
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	// This caller leads: its own job is in the queue, and it runs batches
	// until its own is done, then hands over.
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxBatchJobs)
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		s.runBatch(batch)
		mine := false
		for _, b := range batch {
			if b == j {
				mine = true
			} else {
				b.done <- false
			}
		}
		if !mine {
			continue
		}
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.running = false
			if cap(g.queue) > 4*maxBatchJobs {
				g.queue = nil
			}
		} else {
			g.queue[0].done <- true
		}
		g.mu.Unlock()
		return j.err
	}
}

// runBatch is steps 1 to 4 for batch; it sets each job's err.
func (s *Store) runBatch(batch []*commitJob) {
	var keys []string
	for _, j := range batch {
		for _, b := range j.staged {
			keys = append(keys, string(b.Digest))
		}
	}
	if len(keys) > 0 {
		unlock := s.digestLocks.lockAll(keys)
		defer unlock()
		s.placeBatch(batch)
	}
	live := make([]*commitJob, 0, len(batch))
	for _, j := range batch {
		if j.err == nil {
			live = append(live, j)
		}
	}
	for len(live) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, j := range live {
				if err := j.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			return
		case failed < 0: // the commit itself failed: nothing of the batch is stored
			for _, j := range live {
				j.err = err
			}
			return
		}
		live[failed].err = err
		live = append(live[:failed], live[failed+1:]...)
	}
}

// placeBatch places the batch's staged blobs (the directory: renames the
// files into place) and fsyncs each shard that got one, once, the shards in
// parallel. A job whose rename or
// shard sync failed gets the error and is left out of the transaction; the
// files it placed are complete and verified, and a later push records them.
func (s *Store) placeBatch(batch []*commitJob) {
	shards := map[string][]*commitJob{}
	for _, j := range batch {
		for _, b := range j.staged {
			shard, err := s.blobs.place(b)
			if err != nil {
				j.err = err
				break
			}
			if shard != "" {
				shards[shard] = append(shards[shard], j)
			}
		}
	}
	errs := make(map[string]error, len(shards))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for dir := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.blobs.syncPlaced(dir); err != nil {
				mu.Lock()
				errs[dir] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for dir, err := range errs {
		for _, j := range shards[dir] {
			if j.err == nil {
				j.err = fmt.Errorf("place blobs: %w", err)
			}
		}
	}
}
