package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestStore_Usage(t *testing.T) {
	s := mustOpen(t)
	shared := "shared layer, 27 bytes long"
	a := pushImage(t, s, "a", "a", "v1", "", shared, "a's own layer")
	b := pushImage(t, s, "b", "b", "v1", "", shared)
	blobSize := func(d Digest) int64 {
		info, err := s.StatBlob("a", d)
		if err != nil {
			info, err = s.StatBlob("b", d)
		}
		if err != nil {
			t.Fatal(err)
		}
		return info.Size
	}
	manifestSize := func(repo string, d Digest) int64 {
		m, err := s.Manifest(repo, Reference{Digest: d})
		if err != nil {
			t.Fatal(err)
		}
		return m.Size
	}
	wantA := RepoUsage{
		Repo: "a", Shared: int64(len(shared)),
		Exclusive: blobSize(a.Blobs[0]) + blobSize(a.Blobs[2]) + manifestSize("a", a.Digest),
		Blobs:     3, SharedBlobs: 1, Manifests: 1, ManifestBytes: manifestSize("a", a.Digest),
	}
	wantB := RepoUsage{
		Repo: "b", Shared: int64(len(shared)),
		Exclusive: blobSize(b.Blobs[0]) + manifestSize("b", b.Digest),
		Blobs:     2, SharedBlobs: 1, Manifests: 1, ManifestBytes: manifestSize("b", b.Digest),
	}
	tests := []struct {
		name  string
		repos []string
		want  []RepoUsage
		err   error
	}{
		{"AllLargestExclusiveFirst", nil, []RepoUsage{wantA, wantB}, nil},
		{"Named", []string{"b"}, []RepoUsage{wantB}, nil},
		{"NamedTwice", []string{"b", "b"}, []RepoUsage{wantB}, nil},
		{"ErrNameUnknown", []string{"a", "nope"}, nil, ErrNameUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Usage(tc.repos...)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Usage(%q): error %v, want %v", tc.repos, err, tc.err)
			}
			if err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Usage(%q):\n got %+v\nwant %+v", tc.repos, got, tc.want)
			}
		})
	}
}

func TestStore_DeleteRepository(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	img := pushImage(t, s, "gone", "a", "v1", "", "shared", "own")
	sig := pushImage(t, s, "gone", "sig", "", img.Digest, "signature")
	idx := pushIndex(t, s, "gone", "multi", img.Digest)
	kept := pushImage(t, s, "gone-not", "b", "v1", "", "shared")
	pushImage(t, s, "gone/sub", "c", "v1", "", "sub layer")

	del, err := s.DeleteRepository("gone")
	if err != nil {
		t.Fatal(err)
	}
	if want := (RepoDeletion{Tags: 2, Manifests: 3, Links: 5}); del != want {
		t.Fatalf("deleted %+v, want %+v", del, want)
	}
	checkInvariants(t, s)
	t.Run("Gone", func(t *testing.T) {
		for _, d := range []Digest{img.Digest, sig.Digest, idx} {
			if hasManifest(t, s, "gone", d) {
				t.Errorf("manifest %s is still there", d)
			}
		}
		if _, _, err := s.Tags("gone", "", 0); !errors.Is(err, ErrNameUnknown) {
			t.Errorf("Tags of the deleted repository: %v, want ErrNameUnknown", err)
		}
		if refs, err := s.Referrers("gone", img.Digest, "", "", 100, 1<<20); err != nil || len(refs.Digests) != 0 {
			t.Errorf("referrers of the deleted repository: %v, %v", refs, err)
		}
	})
	t.Run("NeighboursKept", func(t *testing.T) {
		repos, _, err := s.Repositories("", 0, nil)
		if err != nil || !reflect.DeepEqual(repos, []string{"gone-not", "gone/sub"}) {
			t.Fatalf("catalog %v, %v; want [gone-not gone/sub]", repos, err)
		}
		if !hasManifest(t, s, "gone-not", kept.Digest) {
			t.Fatal("a repository whose name starts with the deleted one lost its manifest")
		}
	})
	t.Run("ErrNameUnknown", func(t *testing.T) {
		if _, err := s.DeleteRepository("gone"); !errors.Is(err, ErrNameUnknown) {
			t.Fatalf("second delete: %v, want ErrNameUnknown", err)
		}
	})
	t.Run("GCFreesWhatOnlyItHeld", func(t *testing.T) {
		clk.Advance(2 * time.Hour)
		if _, err := s.CollectGarbage(context.Background(), GCOptions{}); err != nil {
			t.Fatal(err)
		}
		for i, d := range img.Blobs {
			if got, want := hasBlobFile(t, s, d), i == 1; got != want { // Blobs[1] is "shared"
				t.Errorf("blob %d (%s) present %v, want %v", i, d, got, want)
			}
		}
		checkInvariants(t, s)
	})
}

func TestStore_LastPush(t *testing.T) {
	s := mustOpen(t)
	if _, err := s.LastPush("none"); !errors.Is(err, ErrNameUnknown) {
		t.Fatalf("LastPush of a missing repository: %v, want ErrNameUnknown", err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return at }
	pushImage(t, s, "r", "r", "v1", "", "first layer")
	s.now = func() time.Time { return at.Add(time.Hour) }
	pushImage(t, s, "r", "r", "v2", "", "second layer")
	s.now = func() time.Time { return at.Add(2 * time.Hour) }
	pushImage(t, s, "other", "other", "v1", "", "elsewhere")
	got, err := s.LastPush("r")
	if err != nil || !got.Equal(at.Add(time.Hour)) {
		t.Fatalf("LastPush(r) = %v, %v; want %v", got, err, at.Add(time.Hour))
	}
}
