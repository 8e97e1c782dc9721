package mirror

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/berth-registry/berth/store"
)

var prefetchRuns = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "berth_mirror_prefetch_runs_total",
	Help: "Scheduled prefetch runs (berth mirror schedule) by mirror and result (ok, error).",
}, []string{"mirror", "result"})

// schedulePoll bounds how long a change of the schedules (berth mirror
// schedule) waits to be seen.
const schedulePoll = time.Second

// RunSchedules runs each mirror's prefetch schedule until ctx ends: every
// PrefetchEvery, plus up to a tenth of it as jitter (so servers, and
// mirrors, started together do not ask their upstreams at once), it
// prefetches the mirror's images, one run per mirror at a time, each
// bounded by its interval. The first run comes one interval after the
// schedule is seen. It returns once every run it started has ended.
func (m *Mirror) RunSchedules(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	next := map[string]time.Time{}      // mirror → when its next run is due
	every := map[string]time.Duration{} // mirror → the interval next was set for
	running := map[string]bool{}
	var mu sync.Mutex
	t := time.NewTicker(schedulePoll)
	defer t.Stop()
	for {
		ms, err := m.store.Mirrors()
		if err != nil {
			m.log.Warn("mirror schedules not read", "err", err)
		}
		now := m.now()
		seen := map[string]bool{}
		for _, cfg := range ms {
			if len(cfg.Prefetch) == 0 || cfg.PrefetchEvery <= 0 {
				continue
			}
			seen[cfg.Name] = true
			if every[cfg.Name] != cfg.PrefetchEvery {
				every[cfg.Name] = cfg.PrefetchEvery
				next[cfg.Name] = now.Add(withJitter(cfg.PrefetchEvery))
			}
			mu.Lock()
			busy := running[cfg.Name]
			mu.Unlock()
			if busy || now.Before(next[cfg.Name]) {
				continue
			}
			next[cfg.Name] = now.Add(withJitter(cfg.PrefetchEvery))
			mu.Lock()
			running[cfg.Name] = true
			mu.Unlock()
			wg.Add(1)
			go func(cfg store.Mirror) {
				defer wg.Done()
				m.prefetchScheduled(ctx, cfg)
				mu.Lock()
				delete(running, cfg.Name)
				mu.Unlock()
			}(cfg)
		}
		for name := range every {
			if !seen[name] {
				delete(every, name)
				delete(next, name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withJitter is d plus a random part of up to a tenth of d.
func withJitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d + rand.N(d/10)
}

// prefetchScheduled runs one scheduled prefetch of cfg's images, bounded
// by its interval, and logs and counts the outcome.
func (m *Mirror) prefetchScheduled(ctx context.Context, cfg store.Mirror) {
	ctx, cancel := context.WithTimeout(ctx, cfg.PrefetchEvery)
	defer cancel()
	start := m.now()
	var total Fetched
	failed := 0
	for _, s := range cfg.Prefetch {
		repo, ref, err := SplitImageRef(cfg.Name + "/" + s)
		if err == nil {
			var got Fetched
			got, err = m.Prefetch(ctx, repo, ref)
			total.Manifests += got.Manifests
			total.Blobs += got.Blobs
			total.Bytes += got.Bytes
		}
		if err != nil {
			failed++
			m.log.Warn("mirror scheduled prefetch failed", "mirror", cfg.Name, "ref", s, "err", err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	result := "ok"
	if failed > 0 {
		result = "error"
	}
	prefetchRuns.WithLabelValues(cfg.Name, result).Inc()
	m.log.Info("mirror scheduled prefetch", "mirror", cfg.Name, "refs", len(cfg.Prefetch), "failed", failed,
		"manifests", total.Manifests, "blobs", total.Blobs, "bytes_fetched", total.Bytes, "took", m.now().Sub(start).Round(time.Millisecond))
}
