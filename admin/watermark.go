package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/berth-registry/berth/store"
)

// Watermark is the free-space watermark of the data directory's
// filesystem (docs/retention.md): below Low (a fraction of its size
// free), the stricter retention prunes the least recently used eligible
// tags, a few at a time with a gc after each round, until High is free;
// when nothing more can go, pushes are refused early (store.ErrSpaceLow)
// until space is back above Low. Pulls never stop.
type Watermark struct {
	Low, High float64
	// Interval is how often free space is measured.
	Interval time.Duration
	// Grace is the gc grace of the rounds: content pushed more recently is
	// not freed.
	Grace time.Duration
}

var (
	freeBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "berth_storage_free_bytes",
		Help: "Bytes free on the data directory's filesystem, as the free-space watermark last measured them.",
	})
	sizeBytes = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "berth_storage_size_bytes",
		Help: "Size of the data directory's filesystem.",
	})
	pushesRefused = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "berth_storage_pushes_refused",
		Help: "1 while pushes are refused because the disk is below the low free-space mark and nothing more can be pruned.",
	})
	prunedTags = promauto.NewCounter(prometheus.CounterOpts{
		Name: "berth_watermark_pruned_tags_total",
		Help: "Tags the free-space watermark pruned.",
	})
	prunedManifests = promauto.NewCounter(prometheus.CounterOpts{
		Name: "berth_watermark_pruned_manifests_total",
		Help: "Manifests the free-space watermark pruned.",
	})
)

// ParseFraction reads a free-space mark: "10%" or "0.1".
func ParseFraction(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f >= 1 {
		return 0, fmt.Errorf("%q is not a share of the disk such as 10%%", s)
	}
	return f, nil
}

// pruneRound is how many tags one round removes at most: rounds are small
// so the watermark stops soon after the high mark, with a gc between them
// to learn what the removals freed.
const pruneRound = 20

// RunWatermark keeps the data directory's filesystem above w.Low free
// until ctx is done. Run it in its own goroutine; a zero Low returns at
// once.
func RunWatermark(ctx context.Context, s *store.Store, w Watermark, logger *slog.Logger) {
	if w.Low <= 0 {
		return
	}
	if w.High < w.Low {
		w.High = w.Low
	}
	logger.Info("free-space watermark", "low", fmt.Sprintf("%.0f%%", w.Low*100), "high", fmt.Sprintf("%.0f%%", w.High*100), "interval", w.Interval)
	check := func() { checkSpace(ctx, s, w, logger) }
	check()
	every(ctx, w.Interval, check)
}

func checkSpace(ctx context.Context, s *store.Store, w Watermark, logger *slog.Logger) {
	disk, err := s.DiskSpace()
	if err != nil {
		logger.Error("free-space watermark", "err", err)
		return
	}
	free, total := disk.Free, disk.Total
	freeBytes.Set(float64(free))
	sizeBytes.Set(float64(total))
	low, high := int64(w.Low*float64(total)), int64(w.High*float64(total))
	if free >= low {
		if s.PushesRefused() {
			s.RefusePushes(false)
			pushesRefused.Set(0)
			logger.Info("free space is back above the low mark: pushes are accepted again", "free", free, "low", low)
		}
		return
	}
	if !s.PushesRefused() { // once refused, each check would say it again
		logger.Warn("free space below the low mark: pruning the least recently used eligible tags", "free", free, "low", low, "high", high)
	}
	for free < high && ctx.Err() == nil {
		r, err := s.PruneOldest(ctx, pruneRound)
		if err != nil {
			logger.Error("watermark prune failed", "err", err)
			break
		}
		if len(r.Tags) == 0 && len(r.Manifests) == 0 {
			break // nothing more is eligible
		}
		prunedTags.Add(float64(len(r.Tags)))
		prunedManifests.Add(float64(len(r.Manifests)))
		gc, err := s.CollectGarbage(ctx, store.GCOptions{Grace: w.Grace})
		if err != nil {
			logger.Error("watermark gc failed", "err", err)
			break
		}
		if disk, err = s.DiskSpace(); err != nil {
			break
		}
		free = disk.Free
		freeBytes.Set(float64(free))
		logger.Info("watermark pruned", "tags", len(r.Tags), "manifests", len(r.Manifests), "gc_freed", gc.Bytes(), "free", free)
	}
	if free < low && !s.PushesRefused() {
		s.RefusePushes(true)
		pushesRefused.Set(1)
		logger.Error("free space stays below the low mark and nothing more can be pruned: pushes are refused until space is freed",
			"free", free, "low", low)
	}
}
