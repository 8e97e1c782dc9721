package mirror

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/berth-registry/berth/store"
)

var evictions = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "berth_mirror_evicted_tags_total",
	Help: "Cached tags evicted to keep a mirror under its --max-size, least recently pulled first.",
}, []string{"mirror"})

// pulled records a pull of tag in repo, for eviction's order.
func (m *Mirror) pulled(repo, tag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.lastPull) > 1<<16 {
		clear(m.lastPull)
	}
	m.lastPull[repo+":"+tag] = m.now()
}

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

// Evict brings the cache of cfg under cfg.MaxBytes: it deletes the least
// recently pulled tag (a tag this process has not seen pulled counts from
// when it was cached) and collects garbage, until the cache fits or holds
// no tag. The collection is the store's GC, safe while pulls run; the
// cache's repositories get no grace period in it, since nothing is pushed
// there and whatever goes is fetched again by the next pull. It returns
// how many tags it evicted.
func (m *Mirror) Evict(ctx context.Context, cfg store.Mirror) (int, error) {
	ns := cfg.Name + "/"
	opts := store.GCOptions{NoGrace: func(repo string) bool { return strings.HasPrefix(repo, ns) }}
	evicted := 0
	for {
		used, tags, err := m.store.CacheUsage(cfg.Name)
		if err != nil || used <= cfg.MaxBytes || len(tags) == 0 {
			return evicted, err
		}
		m.mu.Lock()
		sort.Slice(tags, func(i, j int) bool { return m.lastUse(tags[i]).Before(m.lastUse(tags[j])) })
		m.mu.Unlock()
		victim := tags[0]
		if _, err := m.store.DeleteTag(victim.Repo, victim.Tag); err != nil {
			return evicted, err
		}
		evicted++
		evictions.WithLabelValues(cfg.Name).Inc()
		m.log.Info("mirror evicted a tag", "mirror", cfg.Name, "repo", victim.Repo, "tag", victim.Tag, "cache_bytes", used, "max_bytes", cfg.MaxBytes)
		if _, err := m.store.CollectGarbage(ctx, opts); err != nil {
			return evicted, err
		}
	}
}

// lastUse is when t was last pulled, or cached. m.mu is held.
func (m *Mirror) lastUse(t store.CachedTag) time.Time {
	if at, ok := m.lastPull[t.Repo+":"+t.Tag]; ok && at.After(t.Created) {
		return at
	}
	return t.Created
}
