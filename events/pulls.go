package events

import (
	"context"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/store"
)

// PullRecorder collects pull events in memory and writes them to the
// outbox in batches: one write transaction per second (or per pullBatch
// events), never one per pull, so pulls stay as cheap as reads. Pull
// events are the one kind that a crash can lose: those of the last second,
// which report reads, not changes.
type PullRecorder struct {
	st  *store.Store
	in  chan store.Event
	log *slog.Logger
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
	return &PullRecorder{st: st, in: make(chan store.Event, pullBuffer), log: log}
}

// Record queues a pull event without blocking. It is safe for concurrent
// use.
func (p *PullRecorder) Record(ev store.Event) {
	select {
	case p.in <- ev:
	default:
		pullsDropped.Inc()
	}
}

// Run writes the collected events until ctx ends, then writes what is left.
func (p *PullRecorder) Run(ctx context.Context) {
	tick := time.NewTicker(pullInterval)
	defer tick.Stop()
	batch := make([]store.Event, 0, pullBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := p.st.AppendEvents(batch); err != nil {
			p.log.Error("webhook: record pull events", "n", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case ev := <-p.in:
			batch = append(batch, ev)
			if len(batch) == pullBatch {
				flush()
			}
		case <-tick.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case ev := <-p.in:
					batch = append(batch, ev)
				default:
					flush()
					return
				}
			}
		}
	}
}
