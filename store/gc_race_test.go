package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCollectGarbage_ChangesDuringRun makes a change between the plan and
// the sweep (from the Progress hook, which runs right after the plan) and
// checks that the sweep notices it: every case is a write the API can make
// while GC runs.
func TestCollectGarbage_ChangesDuringRun(t *testing.T) {
	tests := []struct {
		name string
		// setup pushes old things and returns the change to make mid-run
		// and what must be there afterwards.
		setup func(t *testing.T, s *Store) (change func(), kept []gcThing)
	}{
		{
			name: "TagPushedForDoomedManifest",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				change := func() {
					body := mustManifestBody(t, s, "r", img.Digest)
					if _, _, err := s.PutManifest("r", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body); err != nil {
						t.Errorf("tag push: %v", err)
					}
				}
				return change, append(blobsOf(img), gcThing{"r", img.Digest})
			},
		},
		{
			name: "ManifestPushedOnDoomedLinks",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				old := pushImage(t, s, "r", "old", "", "", "layer")
				change := func() {
					// The client saw the layer with HEAD, so it uploads only
					// a new config and puts a manifest that uses the layer:
					// the link is still there, so the put works.
					cfg := []byte(`{"image":"new"}`)
					m := testManifest{
						SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
						Config: &testDesc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: mustPutBlob(t, s, "r", cfg), Size: int64(len(cfg))},
						Layers: []testDesc{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: old.Blobs[1], Size: int64(len("layer"))}},
					}
					mustPutManifest(t, s, "r", "v1", m)
				}
				return change, []gcThing{{Digest: old.Blobs[1]}}
			},
		},
		{
			name: "BlobUploadedAgain",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				d := mustPutBlob(t, s, "r", []byte("uploaded twice"))
				return func() { mustPutBlob(t, s, "r", []byte("uploaded twice")) }, []gcThing{{Digest: d}}
			},
		},
		{
			name: "BlobMountedIntoAnotherRepo",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				d := mustPutBlob(t, s, "from", []byte("mounted"))
				change := func() {
					if _, err := s.MountBlob("to", "from", d); err != nil {
						t.Errorf("mount: %v", err)
					}
				}
				return change, []gcThing{{Digest: d}}
			},
		},
		{
			name: "ChildPushedAgainBeforeItsIndex",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				child := pushImage(t, s, "r", "child", "", "", "layer")
				pushIndex(t, s, "r", "", child.Digest)
				change := func() {
					body := mustManifestBody(t, s, "r", child.Digest)
					if _, _, err := s.PutManifest("r", Reference{Digest: child.Digest}, nil, MediaTypeOCIManifest, body); err != nil {
						t.Errorf("re-push child: %v", err)
					}
				}
				return change, append(blobsOf(child), gcThing{"r", child.Digest})
			},
		},
		{
			name: "SubjectTaggedKeepsReferrer",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				img := pushImage(t, s, "r", "a", "", "", "layer")
				sig := pushImage(t, s, "r", "sig", "", img.Digest, "signature")
				change := func() {
					body := mustManifestBody(t, s, "r", img.Digest)
					if _, _, err := s.PutManifest("r", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body); err != nil {
						t.Errorf("tag push: %v", err)
					}
				}
				return change, append(blobsOf(img, sig), gcThing{"r", img.Digest}, gcThing{"r", sig.Digest})
			},
		},
		{
			name: "BlobPinned",
			setup: func(t *testing.T, s *Store) (func(), []gcThing) {
				d := mustPutBlob(t, s, "r", []byte("pinned late"))
				return func() { s.Pin([]Digest{d}) }, []gcThing{{Digest: d}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			clk := useClock(s)
			change, kept := tc.setup(t, s)
			clk.Advance(2 * time.Hour)
			report, err := s.CollectGarbage(context.Background(), GCOptions{Progress: afterPlan(change)})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range kept {
				if !g.present(t, s) {
					t.Errorf("%s %s was collected although it changed mid-run", g.Repo, g.Digest)
				}
			}
			if report.Kept == 0 {
				t.Errorf("report.Kept is 0; the sweep kept something the plan chose")
			}
			checkInvariants(t, s)
		})
	}
}

func TestCollectGarbage_UploadResumedDuringRun(t *testing.T) {
	s := mustOpen(t)
	clk := useClock(s)
	u, err := s.StartUpload("r", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	resume := func() {
		if _, err := s.AppendUpload("r", u.ID, 0, strings.NewReader("resumed")); err != nil {
			t.Errorf("resume: %v", err)
		}
	}
	report, err := s.CollectGarbage(context.Background(), GCOptions{Progress: afterPlan(resume)})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Uploads) != 0 {
		t.Fatalf("removed the resumed session: %+v", report.Uploads)
	}
	if st, err := s.UploadStatus("r", u.ID); err != nil || st.Offset != int64(len("resumed")) {
		t.Fatalf("session after gc: %+v, %v", st, err)
	}
}

// afterPlan returns a Progress hook that calls change once, when the plan
// is done and nothing is removed yet.
func afterPlan(change func()) func(string, int, int) {
	var once sync.Once
	return func(phase string, done, total int) {
		if phase == "plan" && done == total {
			once.Do(change)
		}
	}
}

func mustManifestBody(t *testing.T, s *Store, repo string, d Digest) []byte {
	t.Helper()
	m, err := s.Manifest(repo, Reference{Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

// TestCollectGarbage_ConcurrentPushes runs GC with no grace in a loop
// while several writers push images with shared layers, delete tags and
// push again. A push may fail with MissingRefError (GC took a layer between
// upload and manifest, and the client uploads again); what may never
// happen is a stored manifest without its blobs, a record without its file,
// or an acknowledged tag whose image cannot be read.
func TestCollectGarbage_ConcurrentPushes(t *testing.T) {
	s := mustOpen(t)
	const writers, rounds = 4, 15
	// No grace, but the default upload TTL: an upload TTL of zero ends
	// every upload in progress, which is what it says, not a race.
	noAge := GCOptions{Grace: NoAge}

	// GC runs whenever a push attempt ended, at most one run queued, so
	// runs overlap pushes all the time without starving them: with no
	// grace a run between a layer upload and its manifest makes the client
	// upload again, and back-to-back runs could make that happen forever.
	ctx, stop := context.WithCancel(context.Background())
	pushed := make(chan struct{}, 1)
	gcDone := make(chan error, 1)
	// inFlight counts the pushes under way; a run that starts or ends while
	// one is under way overlapped it, which is what the test is about.
	var inFlight atomic.Int32
	var runs, overlapped int
	go func() {
		for {
			select {
			case <-ctx.Done():
				gcDone <- nil
				return
			case <-pushed:
			}
			during := inFlight.Load() > 0
			if _, err := s.CollectGarbage(context.Background(), noAge); err != nil {
				gcDone <- err
				return
			}
			runs++
			if during || inFlight.Load() > 0 {
				overlapped++
			}
		}
	}()
	nudge := func() {
		select {
		case pushed <- struct{}{}:
		default:
		}
	}

	type tagged struct {
		repo, tag string
		img       image
	}
	acked := make([]map[string]tagged, writers)
	var wg sync.WaitGroup
	for w := range writers {
		acked[w] = map[string]tagged{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("w%d", w)
			for i := range rounds {
				tag := fmt.Sprintf("t%d", i%3)
				layers := []string{fmt.Sprintf("shared %d", i%2), fmt.Sprintf("own %d/%d", w, i)}
				inFlight.Add(1)
				img, err := pushRetrying(s, nudge, repo, fmt.Sprintf("%d", i%4), tag, layers...)
				inFlight.Add(-1)
				if err != nil {
					t.Errorf("%s:%s: %v", repo, tag, err)
					return
				}
				acked[w][tag] = tagged{repo, tag, img}
				if i%5 == 4 {
					if err := s.DeleteManifest(repo, Reference{Tag: tag}); err != nil {
						t.Errorf("delete %s:%s: %v", repo, tag, err)
					}
					delete(acked[w], tag)
				}
			}
		}()
	}
	wg.Wait()
	stop()
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d gc runs during the pushes, %d of them overlapping one", runs, overlapped)
	if overlapped == 0 {
		t.Fatalf("no gc run overlapped a push (%d runs): the test showed nothing", runs)
	}
	checkInvariants(t, s)

	want := map[Digest]bool{}
	for _, m := range acked {
		for _, tg := range m {
			got, err := s.Manifest(tg.repo, Reference{Tag: tg.tag})
			if err != nil || got.Digest != tg.img.Digest {
				t.Fatalf("%s:%s: got %s, %v; want %s", tg.repo, tg.tag, got.Digest, err, tg.img.Digest)
			}
			for _, d := range tg.img.Blobs {
				if b := readBlob(t, s, tg.repo, d); DigestOf(SHA256, b) != d {
					t.Fatalf("%s:%s: blob %s reads back as %s", tg.repo, tg.tag, d, DigestOf(SHA256, b))
				}
				want[d] = true
			}
		}
	}
	if _, err := s.CollectGarbage(context.Background(), noAge); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	if n := blobCount(t, s); n != len(want) {
		t.Fatalf("after a final gc %d blobs remain; the tagged images use %d", n, len(want))
	}
}

// pushRetrying pushes an image as a client would: on MissingRefError it
// uploads the blobs again and retries.
// attempted is called after every attempt.
func pushRetrying(s *Store, attempted func(), repo, name, tag string, layers ...string) (image, error) {
	for attempt := 0; attempt < 1000; attempt++ {
		img, err := tryPushImage(s, repo, name, tag, layers...)
		attempted()
		var missing *MissingRefError
		if !errors.As(err, &missing) {
			return img, err
		}
	}
	return image{}, errors.New("manifest refused 1000 times in a row")
}

// tryPushImage is pushImage returning errors instead of failing the test.
func tryPushImage(s *Store, repo, name, tag string, layers ...string) (image, error) {
	contents := append([]string{fmt.Sprintf(`{"image":%q,"repo":%q}`, name, repo)}, layers...)
	m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIManifest}
	var img image
	for i, c := range contents {
		d := DigestOf(SHA256, []byte(c))
		if _, err := s.PutBlob(repo, d, int64(len(c)), strings.NewReader(c)); err != nil {
			return img, err
		}
		img.Blobs = append(img.Blobs, d)
		desc := testDesc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: d, Size: int64(len(c))}
		if i == 0 {
			desc.MediaType = "application/vnd.oci.image.config.v1+json"
			m.Config = &desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return img, err
	}
	stored, _, err := s.PutManifest(repo, Reference{Tag: tag}, nil, m.MediaType, body)
	img.Digest = stored.Digest
	return img, err
}
