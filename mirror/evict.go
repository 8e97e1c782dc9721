package mirror

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/berth-registry/berth/store"
)

var evictionRounds = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "berth_mirror_eviction_rounds_total",
	Help: "Eviction rounds: each deletes the tags it needs and runs one garbage collection.",
}, []string{"mirror"})

var evictions = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "berth_mirror_evicted_tags_total",
	Help: "Cached tags evicted to keep a mirror under its --max-size, least recently pulled first.",
}, []string{"mirror"})

// maybeEvict starts an eviction of cfg's cache when it has a cap and none
// runs; fills call it as they place blobs.
func (m *Mirror) maybeEvict(cfg store.Mirror) {
	if cfg.MaxBytes <= 0 {
		return
	}
	m.mu.Lock()
	if m.evicting[cfg.Name] {
		m.mu.Unlock()
		return
	}
	m.evicting[cfg.Name] = true
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.evicting, cfg.Name)
			m.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if n, err := m.Evict(ctx, cfg); err != nil {
			m.log.Error("mirror eviction", "mirror", cfg.Name, "evicted", n, "err", err)
		}
	}()
}

// Evict brings the cache of cfg under cfg.MaxBytes in rounds. A round
// takes the least recently pulled tags (the store's last-pull times,
// which outlive a restart; a tag never pulled counts from when it was
// cached), as many as it takes for the
// blobs only they refer to to cover the excess, deletes them and runs one
// garbage collection. The collection is the store's GC, safe while pulls
// run; the cache's repositories get no grace period in it, since nothing
// is pushed there and whatever goes is fetched again by the next pull.
// Rounds repeat until the cache fits or holds no tag (the estimate misses
// what no tag holds). It returns how many tags it evicted.
func (m *Mirror) Evict(ctx context.Context, cfg store.Mirror) (int, error) {
	ns := cfg.Name + "/"
	opts := store.GCOptions{NoGrace: func(repo string) bool { return strings.HasPrefix(repo, ns) }}
	evicted := 0
	for {
		used, tags, err := m.store.CacheUsage(cfg.Name)
		if err != nil || used <= cfg.MaxBytes || len(tags) == 0 {
			return evicted, err
		}
		sort.SliceStable(tags, func(i, j int) bool { return lastUse(tags[i]).Before(lastUse(tags[j])) })
		victims := tags[:evictionRound(used, cfg.MaxBytes, tags)]
		for _, v := range victims {
			if _, err := m.store.DeleteTag(v.Repo, v.Tag); err != nil && !errors.Is(err, store.ErrManifestUnknown) {
				return evicted, err
			}
			evicted++
			evictions.WithLabelValues(cfg.Name).Inc()
			m.log.Info("mirror evicted a tag", "mirror", cfg.Name, "repo", v.Repo, "tag", v.Tag, "cache_bytes", used, "max_bytes", cfg.MaxBytes)
		}
		report, err := m.store.CollectGarbage(ctx, opts)
		if err != nil {
			return evicted, err
		}
		evictionRounds.WithLabelValues(cfg.Name).Inc()
		var freed int64
		for _, b := range report.Blobs {
			freed += b.Size
		}
		m.log.Info("mirror eviction round", "mirror", cfg.Name, "tags", len(victims), "freed_bytes", freed)
	}
}

// evictionRound returns how many of tags, least recently pulled first,
// one round deletes: the fewest whose blobs, those no remaining tag refers
// to, bring used under max; all of them when none do, and at least one.
func evictionRound(used, max int64, tags []store.CachedTag) int {
	refs := map[store.Digest]int{}
	for _, t := range tags {
		for d := range t.Blobs {
			refs[d]++
		}
	}
	var freed int64
	for i, t := range tags {
		for d, size := range t.Blobs {
			if refs[d]--; refs[d] == 0 {
				freed += size
			}
		}
		if used-freed <= max {
			return i + 1
		}
	}
	return len(tags)
}

// lastUse is when t was last pulled, or cached.
func lastUse(t store.CachedTag) time.Time {
	if t.Pulled.After(t.Created) {
		return t.Pulled
	}
	return t.Created
}
