package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// PullRecorder collects pull events in memory and writes them to the
// outbox in batches: one write transaction per second (or per pullBatch
// events), never one per pull, so pulls stay as cheap as reads. Pull
// events are the one kind that a crash can lose: those of the last second,
// which report reads, not changes.
//
// The queue is a slice under a mutex rather than a channel of pullBuffer
// events: a buffered channel allocates all its slots up front (2.3 MB of
// store.Event), which the serve process carried from start even when no
// webhook takes pull events. The slice holds only what is waiting, with
// the same bound.
type PullRecorder struct {
	st   *store.Store
	log  *slog.Logger
	wake chan struct{} // a batch is full: Run writes without waiting for the tick

	mu      sync.Mutex
	pending []store.Event
}

const (
	pullBatch    = 512
	pullInterval = time.Second
	// pullBuffer bounds the events waiting to be written; beyond it pulls
	// are dropped and counted (berth_webhook_pull_events_dropped_total)
	// rather than slowing the pulls down.
	pullBuffer = 8192
)

// NewPullRecorder returns a recorder for st that logs to log (nil: the
// default logger); Run must be running for the events to reach the outbox.
func NewPullRecorder(st *store.Store, log *slog.Logger) *PullRecorder {
	if log == nil {
		log = slog.Default()
	}
	return &PullRecorder{st: st, log: log, wake: make(chan struct{}, 1)}
}

// Record queues a pull event without blocking. It is safe for concurrent
// use.
func (p *PullRecorder) Record(ev store.Event) {
	p.mu.Lock()
	if len(p.pending) >= pullBuffer {
		p.mu.Unlock()
		pullsDropped.Inc()
		return
	}
	p.pending = append(p.pending, ev)
	full := len(p.pending) == pullBatch
	p.mu.Unlock()
	if full {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// take returns the waiting events and leaves spare, emptied, in their
// place, so the two slices alternate and a steady flow of pulls allocates
// nothing.
func (p *PullRecorder) take(spare []store.Event) []store.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.pending
	p.pending = spare[:0]
	return batch
}

// Run writes the collected events until ctx ends, then writes what is left.
func (p *PullRecorder) Run(ctx context.Context) {
	tick := time.NewTicker(pullInterval)
	defer tick.Stop()
	var spare []store.Event
	flush := func() {
		batch := p.take(spare)
		if len(batch) > 0 {
			if err := p.st.AppendEvents(batch); err != nil {
				p.log.Error("webhook: record pull events", "n", len(batch), "err", err)
			}
		}
		// Events hold strings: clear them so the spare keeps none alive,
		// and let a slice that a burst grew past a batch go.
		clear(batch)
		if cap(batch) > pullBatch {
			batch = nil
		}
		spare = batch
	}
	for {
		select {
		case <-p.wake:
			flush()
		case <-tick.C:
			flush()
		case <-ctx.Done():
			flush()
			return
		}
	}
}
