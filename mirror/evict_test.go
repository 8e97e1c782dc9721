package mirror

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

func TestEvictionRound(t *testing.T) {
	tag := func(blobs map[store.Digest]int64) store.CachedTag { return store.CachedTag{Blobs: blobs} }
	shared := map[store.Digest]int64{"sha256:base": 100, "sha256:a": 10}
	tests := []struct {
		name      string
		used, max int64
		tags      []store.CachedTag
		want      int
	}{
		{"the oldest is enough", 300, 200, []store.CachedTag{
			tag(map[store.Digest]int64{"sha256:a": 100}), tag(map[store.Digest]int64{"sha256:b": 100}), tag(map[store.Digest]int64{"sha256:c": 100}),
		}, 1},
		{"two needed", 300, 100, []store.CachedTag{
			tag(map[store.Digest]int64{"sha256:a": 100}), tag(map[store.Digest]int64{"sha256:b": 100}), tag(map[store.Digest]int64{"sha256:c": 100}),
		}, 2},
		{"a shared base frees nothing until its last tag goes", 220, 100, []store.CachedTag{
			tag(shared), tag(map[store.Digest]int64{"sha256:base": 100, "sha256:b": 10}), tag(map[store.Digest]int64{"sha256:c": 100}),
		}, 2},
		{"nothing frees enough: all", 1000, 100, []store.CachedTag{
			tag(map[store.Digest]int64{"sha256:a": 100}), tag(map[store.Digest]int64{"sha256:b": 100}),
		}, 2},
		{"tags without blobs: all", 1000, 100, []store.CachedTag{tag(nil), tag(nil)}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := evictionRound(tc.used, tc.max, tc.tags); got != tc.want {
				t.Errorf("evictionRound(%d, %d, …) = %d, want %d", tc.used, tc.max, got, tc.want)
			}
		})
	}
}

// TestMirror_Evict_OneGCPerRound: a cache over its cap by two images
// loses the two least recently pulled in one round, with one collection.
func TestMirror_Evict_OneGCPerRound(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := store.Mirror{Name: "evict1", URL: "http://127.0.0.1:9", MaxBytes: 4200}
	if err := st.AddMirror(cfg); err != nil {
		t.Fatal(err)
	}
	var first storetest.Desc
	for i := range 4 {
		d := storetest.PushImage(t, st, fmt.Sprintf("evict1/img%d", i), "v1", nil, strings.Repeat(strconv.Itoa(i), 1000))
		if i == 0 {
			first = d
		}
	}
	var log bytes.Buffer
	m := New(st, slog.New(slog.NewTextHandler(&log, nil)))
	// Pulled last, and written as serve's flush writes it: img1 and img2
	// are the oldest.
	st.RecordPull("evict1/img0", first["digest"].(store.Digest))
	if err := st.FlushPulls(); err != nil {
		t.Fatal(err)
	}
	n, err := m.Evict(t.Context(), cfg)
	if err != nil || n != 2 {
		t.Fatalf("Evict: %d tags, %v; want 2\n%s", n, err, log.String())
	}
	if got := strings.Count(log.String(), "mirror eviction round"); got != 1 {
		t.Errorf("%d eviction rounds (collections), want 1:\n%s", got, log.String())
	}
	used, tags, err := st.CacheUsage(cfg.Name)
	if err != nil || used > cfg.MaxBytes {
		t.Errorf("cache after eviction: %d bytes, %v; want at most %d", used, err, cfg.MaxBytes)
	}
	var left []string
	for _, tag := range tags {
		left = append(left, tag.Repo)
	}
	if strings.Join(left, " ") != "evict1/img0 evict1/img3" {
		t.Errorf("tags left: %v, want img0 (pulled last) and img3 (cached last)", left)
	}
}
