package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gcThing is a manifest (Repo set) or a blob (Repo empty) a case expects
// to be kept or gone after the collection.
type gcThing struct {
	Repo   string
	Digest Digest
}

func (g gcThing) present(t *testing.T, s *Store) bool {
	if g.Repo == "" {
		return hasBlobFile(t, s, g.Digest)
	}
	return hasManifest(t, s, g.Repo, g.Digest)
}

func blobsOf(imgs ...image) []gcThing {
	var out []gcThing
	for _, img := range imgs {
		for _, d := range img.Blobs {
			out = append(out, gcThing{Digest: d})
		}
	}
	return out
}

func TestCollectGarbage_Reachability(t *testing.T) {
	tests := []struct {
		name string
		opts GCOptions
		// setup pushes at the clock's start; the collection runs age later.
		age   time.Duration
		setup func(t *testing.T, s *Store, clk *testClock) (kept, gone []gcThing)
	}{
		{
			name: "UntaggedOlderThanGraceGoes", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer a")
				return nil, append(blobsOf(img), gcThing{"r", img.Digest})
			},
		},
		{
			name: "UntaggedWithinGraceStays", age: 30 * time.Minute,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer a")
				return append(blobsOf(img), gcThing{"r", img.Digest}), nil
			},
		},
		{
			name: "ShorterGraceCollectsSooner", age: 30 * time.Minute, opts: GCOptions{Grace: 10 * time.Minute},
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer a")
				return nil, append(blobsOf(img), gcThing{"r", img.Digest})
			},
		},
		{
			name: "TaggedStays", age: 48 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "v1", "", "layer a", "layer b")
				return append(blobsOf(img), gcThing{"r", img.Digest}), nil
			},
		},
		{
			name: "SharedLayerStaysWithTaggedImage", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				tagged := pushImage(t, s, "r", "a", "v1", "", "shared", "only a")
				untagged := pushImage(t, s, "r", "b", "", "", "shared", "only b")
				kept = append(blobsOf(tagged), gcThing{"r", tagged.Digest})
				gone = []gcThing{{"r", untagged.Digest}, {Digest: untagged.Blobs[0]}, {Digest: untagged.Blobs[2]}}
				return kept, gone
			},
		},
		{
			name: "BlobLinkedByAnotherRepoStays", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				tagged := pushImage(t, s, "one", "a", "v1", "", "shared")
				untagged := pushImage(t, s, "two", "b", "", "", "shared")
				kept = append(blobsOf(tagged), gcThing{"one", tagged.Digest})
				return kept, []gcThing{{"two", untagged.Digest}, {Digest: untagged.Blobs[0]}}
			},
		},
		{
			name: "TaggedIndexKeepsUntaggedChildren", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				amd := pushImage(t, s, "r", "amd64", "", "", "amd64 layer")
				arm := pushImage(t, s, "r", "arm64", "", "", "arm64 layer")
				idx := pushIndex(t, s, "r", "latest", amd.Digest, arm.Digest)
				kept = append(blobsOf(amd, arm), gcThing{"r", amd.Digest}, gcThing{"r", arm.Digest}, gcThing{"r", idx})
				return kept, nil
			},
		},
		{
			name: "UntaggedIndexGoesWithChildren", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				amd := pushImage(t, s, "r", "amd64", "", "", "amd64 layer")
				arm := pushImage(t, s, "r", "arm64", "", "", "arm64 layer")
				idx := pushIndex(t, s, "r", "", amd.Digest, arm.Digest)
				gone = append(blobsOf(amd, arm), gcThing{"r", amd.Digest}, gcThing{"r", arm.Digest}, gcThing{"r", idx})
				return nil, gone
			},
		},
		{
			name: "YoungIndexKeepsOldChildren", age: 0,
			setup: func(t *testing.T, s *Store, clk *testClock) (kept, gone []gcThing) {
				amd := pushImage(t, s, "r", "amd64", "", "", "amd64 layer")
				clk.Advance(2 * time.Hour)
				idx := pushIndex(t, s, "r", "", amd.Digest)
				return append(blobsOf(amd), gcThing{"r", amd.Digest}, gcThing{"r", idx}), nil
			},
		},
		{
			name: "NestedIndexKeepsGrandchildren", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				inner := pushIndex(t, s, "r", "", img.Digest)
				outer := pushIndex(t, s, "r", "top", inner)
				return append(blobsOf(img), gcThing{"r", img.Digest}, gcThing{"r", inner}, gcThing{"r", outer}), nil
			},
		},
		{
			name: "ReferrerOfTaggedImageStays", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "v1", "", "layer")
				sig := pushImage(t, s, "r", "sig", "", img.Digest, "signature")
				sigOfSig := pushImage(t, s, "r", "sig2", "", sig.Digest, "countersignature")
				kept = append(blobsOf(img, sig, sigOfSig), gcThing{"r", img.Digest}, gcThing{"r", sig.Digest}, gcThing{"r", sigOfSig.Digest})
				return kept, nil
			},
		},
		{
			name: "ReferrerOfUntaggedImageGoes", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				sig := pushImage(t, s, "r", "sig", "", img.Digest, "signature")
				return nil, append(blobsOf(img, sig), gcThing{"r", img.Digest}, gcThing{"r", sig.Digest})
			},
		},
		{
			name: "ReferrerWithoutSubjectGoes", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				sig := pushImage(t, s, "r", "sig", "", DigestOf(SHA256, []byte("never pushed")), "signature")
				return nil, append(blobsOf(sig), gcThing{"r", sig.Digest})
			},
		},
		{
			name: "TaggedReferrerDoesNotKeepSubject", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				sig := pushImage(t, s, "r", "sig", "sig", img.Digest, "signature")
				return append(blobsOf(sig), gcThing{"r", sig.Digest}), append(blobsOf(img), gcThing{"r", img.Digest})
			},
		},
		{
			name: "KeepUntaggedKeepsManifestsNotLooseBlobs", age: 2 * time.Hour, opts: GCOptions{KeepUntagged: true},
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				loose := mustPutBlob(t, s, "r", []byte("never referenced"))
				return append(blobsOf(img), gcThing{"r", img.Digest}), []gcThing{{Digest: loose}}
			},
		},
		{
			name: "PinnedBlobStays", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				pinned := mustPutBlob(t, s, "r", []byte("pinned"))
				unpinned := mustPutBlob(t, s, "r", []byte("unpinned"))
				s.Pin([]Digest{pinned})
				return []gcThing{{Digest: pinned}}, []gcThing{{Digest: unpinned}}
			},
		},
		{
			name: "PinAllKeepsEveryBlob", age: 2 * time.Hour,
			setup: func(t *testing.T, s *Store, _ *testClock) (kept, gone []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				s.PinAll()
				return blobsOf(img), []gcThing{{"r", img.Digest}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			clk := useClock(s)
			kept, gone := tc.setup(t, s, clk)
			clk.Advance(tc.age)
			if _, err := s.CollectGarbage(context.Background(), tc.opts); err != nil {
				t.Fatal(err)
			}
			for _, g := range kept {
				if !g.present(t, s) {
					t.Errorf("%s %s was collected; want it kept", g.Repo, g.Digest)
				}
			}
			for _, g := range gone {
				if g.present(t, s) {
					t.Errorf("%s %s is still there; want it collected", g.Repo, g.Digest)
				}
			}
			checkInvariants(t, s)
		})
	}
}

// mixedStore fills a store with a bit of everything GC looks at, aged
// past the grace period and the upload TTL.
func mixedStore(t *testing.T) (*Store, *testClock) {
	s := mustOpen(t)
	clk := useClock(s)
	pushImage(t, s, "keep", "a", "v1", "", "shared", "kept layer")
	img := pushImage(t, s, "drop", "b", "", "", "shared", "dropped layer")
	pushImage(t, s, "drop", "sig", "", img.Digest, "signature")
	mustPutBlob(t, s, "loose", []byte("loose blob"))
	u, err := s.StartUpload("keep", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendUpload("keep", u.ID, 0, strings.NewReader("partial")); err != nil {
		t.Fatal(err)
	}
	orphan := s.BlobPath(DigestOf(SHA256, []byte("orphan")))
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	if err := os.WriteFile(orphan, []byte("orphan"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(48 * time.Hour)
	return s, clk
}

func TestCollectGarbage_DryRunChangesNothing(t *testing.T) {
	s, _ := mixedStore(t)
	before := dumpState(t, s)
	planned, err := s.CollectGarbage(context.Background(), GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := dumpState(t, s); after != before {
		t.Fatalf("dry run changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if len(planned.Manifests) != 2 || len(planned.Blobs) != 5 || len(planned.Uploads) != 1 || len(planned.Files) != 1 || len(planned.Repositories) != 2 {
		t.Fatalf("dry run planned %+v; want 2 manifests, 5 blobs, 1 upload, 1 file, 2 repositories", planned)
	}
	done, err := s.CollectGarbage(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	planned.DryRun = false
	if !reflect.DeepEqual(planned, done) {
		t.Fatalf("the run did other than the dry run said:\ndry run: %+v\nrun:     %+v", planned, done)
	}
	if done.Bytes() == 0 {
		t.Fatal("report accounts for no bytes")
	}
	repos, _, err := s.Repositories("", 0, nil)
	if err != nil || !reflect.DeepEqual(repos, []string{"keep"}) {
		t.Fatalf("catalog after gc: %v, %v; want [keep]", repos, err)
	}
	checkInvariants(t, s)
}

func TestCollectGarbage_UploadTTL(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	idle, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(23 * time.Hour)
	active, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	report, err := s.CollectGarbage(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Uploads) != 1 || report.Uploads[0].ID != idle.ID {
		t.Fatalf("removed uploads %+v; want only %s", report.Uploads, idle.ID)
	}
	if _, err := s.AppendUpload("r", idle.ID, 0, strings.NewReader("late")); !errors.Is(err, ErrUploadUnknown) {
		t.Fatalf("append to a collected session: got %v, want ErrUploadUnknown", err)
	}
	if _, err := os.Stat(s.uploadPath(idle.ID)); !os.IsNotExist(err) {
		t.Fatalf("collected session's file: %v", err)
	}
	if _, err := s.AppendUpload("r", active.ID, 0, strings.NewReader("on time")); err != nil {
		t.Fatalf("append to a session within the TTL: %v", err)
	}
}

func TestCollectGarbage_OrphanFiles(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	write := func(path string, age time.Duration) string {
		t.Helper()
		if _, err := os.Stat(path); err != nil {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(filepath.Base(path)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		mtime := clk.Now().Add(-age)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return path
	}
	blob := func(s string) string { return mustBlobPath(t, DigestOf(SHA256, []byte(s))) }
	upload := func() string { id, _ := newUploadID(); return filepath.Join(s.Dir(), "uploads", id) }
	recorded := mustPutBlob(t, s, "r", []byte("recorded"))
	tests := []struct {
		name string
		path string
		gone bool
	}{
		{"OldBlobFileGoes", write(filepath.Join(s.Dir(), blob("old")), 2*time.Hour), true},
		{"YoungBlobFileStays", write(filepath.Join(s.Dir(), blob("young")), 10*time.Minute), false},
		{"RecordedBlobFileStays", write(s.BlobPath(recorded), 2*time.Hour), false},
		{"ForeignFileStays", write(filepath.Join(s.Dir(), "blobs", "sha256", "ab", "notes.txt"), 48*time.Hour), false},
		{"MisplacedBlobFileStays", write(filepath.Join(s.Dir(), "blobs", "sha256", "00", DigestOf(SHA256, []byte("x")).Hex()), 48*time.Hour), false},
		{"OldUploadFileGoes", write(upload(), 25*time.Hour), true},
		{"UploadFileWithinTTLStays", write(upload(), 2*time.Hour), false},
		{"ForeignUploadFileStays", write(filepath.Join(s.Dir(), "uploads", "notes.txt"), 48*time.Hour), false},
	}
	report, err := s.CollectGarbage(context.Background(), GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for _, f := range report.Files {
		removed[filepath.Join(s.Dir(), filepath.FromSlash(f.Path))] = true
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := os.Stat(tc.path)
			if gone := os.IsNotExist(err); gone != tc.gone {
				t.Fatalf("%s: removed %v, want %v", tc.path, gone, tc.gone)
			}
			if removed[tc.path] != tc.gone {
				t.Fatalf("%s: reported %v, want %v", tc.path, removed[tc.path], tc.gone)
			}
		})
	}
}

// mustBlobPath is BlobPath relative to the data directory.
func mustBlobPath(t *testing.T, d Digest) string {
	t.Helper()
	return filepath.Join("blobs", d.Algorithm(), d.Hex()[:2], d.Hex())
}

func TestStore_Pin(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	d := mustPutBlob(t, s, "r", []byte("pinned twice"))
	s.DeleteBlob("r", d)
	clk.Advance(2 * time.Hour)
	first := s.Pin([]Digest{d})
	second := s.Pin([]Digest{d})
	steps := []struct {
		name  string
		do    func()
		wantd bool
	}{
		{"PinnedTwice", func() {}, true},
		{"OneUnpinLeft", first, true},
		{"UnpinAgainDoesNothing", first, true},
		{"AllUnpinned", second, false},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.do()
			if _, err := s.CollectGarbage(context.Background(), GCOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := hasBlobFile(t, s, d); got != step.wantd {
				t.Fatalf("blob present %v, want %v", got, step.wantd)
			}
		})
	}
}

func TestCollectGarbage_Cancelled(t *testing.T) {
	s, _ := mixedStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	opts := GCOptions{Progress: func(phase string, done, total int) {
		if phase == "manifests" {
			cancel()
		}
	}}
	report, err := s.CollectGarbage(ctx, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if len(report.Blobs) != 0 {
		t.Fatalf("a cancelled run went on to remove blobs: %+v", report.Blobs)
	}
	checkInvariants(t, s)
	if _, err := s.CollectGarbage(context.Background(), GCOptions{}); err != nil {
		t.Fatalf("gc after a cancelled one: %v", err)
	}
	checkInvariants(t, s)
}

func TestGCOptions_AgeLimits(t *testing.T) {
	tests := []struct {
		name           string
		opts           GCOptions
		grace, uploads time.Duration
	}{
		{"ZeroMeansDefault", GCOptions{}, DefaultGrace, DefaultUploadTTL},
		{"NoAgeMeansNone", GCOptions{Grace: NoAge, UploadTTL: NoAge}, 0, 0},
		{"Explicit", GCOptions{Grace: time.Minute, UploadTTL: time.Hour}, time.Minute, time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g, u := tc.opts.grace(), tc.opts.uploadTTL(); g != tc.grace || u != tc.uploads {
				t.Fatalf("%+v: grace %v, upload TTL %v; want %v, %v", tc.opts, g, u, tc.grace, tc.uploads)
			}
		})
	}
}
