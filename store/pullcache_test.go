package store

import (
	"errors"
	"testing"
)

// TestPulledManifest_CacheFollowsCommits pulls a tag before and after each
// kind of change to what it names: every pull answers as the records stand
// at that moment, never from an entry an earlier commit made stale.
func TestPulledManifest_CacheFollowsCommits(t *testing.T) {
	s := mustOpen(t)
	a := pushImage(t, s, "c/r", "a", "v1", "", "layer a")
	pull := func(ref Reference) (StoredManifest, error) {
		t.Helper()
		m, err := s.PulledManifest("c/r", ref)
		if err == nil && DigestOf(SHA256, m.Body) != m.Digest {
			t.Fatalf("pulled %s with a body that hashes to %s", m.Digest, DigestOf(SHA256, m.Body))
		}
		return m, err
	}
	for range 2 { // the second pull is answered from the cache
		if m, err := pull(Reference{Tag: "v1"}); err != nil || m.Digest != a.Digest {
			t.Fatalf("pull v1: %s, %v; want %s", m.Digest, err, a.Digest)
		}
	}
	if got := len(s.pullCache.entries); got != 1 {
		t.Fatalf("%d cache entries after pulling one tag, want 1", got)
	}

	// The tag moves to another manifest.
	b := pushImage(t, s, "c/r", "b", "v1", "", "layer b")
	if m, err := pull(Reference{Tag: "v1"}); err != nil || m.Digest != b.Digest {
		t.Fatalf("pull v1 after the tag moved: %s, %v; want %s", m.Digest, err, b.Digest)
	}
	// A write elsewhere (another repository) commits too: still right.
	pushImage(t, s, "c/other", "c", "v1", "", "layer c")
	if m, err := pull(Reference{Tag: "v1"}); err != nil || m.Digest != b.Digest {
		t.Fatalf("pull v1 after an unrelated push: %s, %v; want %s", m.Digest, err, b.Digest)
	}
	// The tag is deleted.
	if _, err := s.DeleteTag("c/r", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(Reference{Tag: "v1"}); !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("pull of a deleted tag: %v, want ErrManifestUnknown", err)
	}
	// By digest, then the manifest is deleted.
	if m, err := pull(Reference{Digest: a.Digest}); err != nil || m.Digest != a.Digest {
		t.Fatalf("pull by digest: %s, %v", m.Digest, err)
	}
	if err := s.DeleteManifest("c/r", Reference{Digest: a.Digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(Reference{Digest: a.Digest}); !errors.Is(err, ErrManifestUnknown) {
		t.Fatalf("pull of a deleted manifest: %v, want ErrManifestUnknown", err)
	}
}

// TestPullCache_Bounded fills the cache past its entry bound: it never
// holds more than pullCacheEntries, and its byte count matches its bodies.
func TestPullCache_Bounded(t *testing.T) {
	var c pullCache
	body := make([]byte, 100)
	for i := range 3 * pullCacheEntries {
		k := pullKey(nil, "r", Reference{Tag: "t" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))})
		c.put(k, 1+i/1000, StoredManifest{Body: body})
		if len(c.entries) > pullCacheEntries {
			t.Fatalf("%d entries after %d puts, bound %d", len(c.entries), i+1, pullCacheEntries)
		}
	}
	sum := 0
	for _, e := range c.entries {
		sum += len(e.m.Body)
	}
	if sum != c.bytes {
		t.Fatalf("bytes %d, entries hold %d", c.bytes, sum)
	}
	if _, ok := c.get(pullKey(nil, "r", Reference{Tag: "never"}), 1); ok {
		t.Fatal("a key never put was found")
	}
}
