package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// mustRule validates r for a run with RetentionOptions.Rules.
func mustRule(t *testing.T, r RetentionRule) RetentionRule {
	t.Helper()
	if r.Name == "" {
		r.Name = "r"
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRetain(t *testing.T, s *Store, opts RetentionOptions) RetentionReport {
	t.Helper()
	r, err := s.ApplyRetention(context.Background(), opts)
	if err != nil {
		t.Fatalf("ApplyRetention: %v", err)
	}
	return r
}

func tagNames(t *testing.T, s *Store, repo string) []string {
	t.Helper()
	tags, _, err := s.Tags(repo, "", 0)
	if err != nil && !errors.Is(err, ErrNameUnknown) {
		t.Fatal(err)
	}
	return tags
}

func removedTags(r RetentionReport) []string {
	var out []string
	for _, t := range r.Tags {
		out = append(out, t.Repo+":"+t.Tag)
	}
	sort.Strings(out)
	return out
}

func TestRetention_KeepLastDryRunThenRun(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	var imgs []image
	for i := range 5 {
		imgs = append(imgs, pushImage(t, s, "apps/web", fmt.Sprint("v", i), fmt.Sprint("v", i), "", fmt.Sprint("layer", i), "shared"))
		clock.Advance(time.Minute)
	}
	pushImage(t, s, "other", "x", "v0", "", "other-layer") // no rule matches
	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/**", KeepLast: 2})}

	before := dumpState(t, s)
	dry := mustRetain(t, s, RetentionOptions{DryRun: true, Rules: rules})
	if got := dumpState(t, s); got != before {
		t.Fatal("dry run changed the store")
	}
	want := []string{"apps/web:v0", "apps/web:v1", "apps/web:v2"}
	if got := removedTags(dry); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dry run removes tags %v, want %v", got, want)
	}
	if len(dry.Manifests) != 3 {
		t.Fatalf("dry run removes %d manifests, want 3", len(dry.Manifests))
	}
	// Each removed image frees its manifest, its config and its own layer;
	// "shared" stays with v3 and v4.
	var wantBytes int64
	for _, img := range imgs[:3] {
		m, _ := s.Manifest("apps/web", Reference{Digest: img.Digest})
		wantBytes += m.Size
		for _, b := range img.Blobs[:2] {
			info, _ := s.StatBlob("apps/web", b)
			wantBytes += info.Size
		}
	}
	if dry.Bytes != wantBytes {
		t.Fatalf("dry run frees %d bytes, want %d", dry.Bytes, wantBytes)
	}

	run := mustRetain(t, s, RetentionOptions{Rules: rules})
	if fmt.Sprint(removedTags(run)) != fmt.Sprint(want) || len(run.Manifests) != 3 {
		t.Fatalf("run removed %v and %d manifests, want %v and 3", removedTags(run), len(run.Manifests), want)
	}
	if got := tagNames(t, s, "apps/web"); fmt.Sprint(got) != "[v3 v4]" {
		t.Fatalf("tags left %v", got)
	}
	for i, img := range imgs {
		if hasManifest(t, s, "apps/web", img.Digest) != (i >= 3) {
			t.Errorf("manifest v%d present %v", i, !(i >= 3))
		}
	}
	if got := tagNames(t, s, "other"); fmt.Sprint(got) != "[v0]" {
		t.Fatalf("a repository no rule matches lost tags: %v", got)
	}
	checkInvariants(t, s)
}

func TestRetention_SeveralTagsOnOneDigestUntags(t *testing.T) {
	s := mustOpen(t)
	img := pushImage(t, s, "apps/a", "img", "latest", "", "l")
	for _, tag := range []string{"build-1", "release-1"} {
		m, _ := s.Manifest("apps/a", Reference{Digest: img.Digest})
		if _, _, err := s.PutManifest("apps/a", Reference{Tag: tag}, nil, m.MediaType, m.Body); err != nil {
			t.Fatal(err)
		}
	}
	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/*", KeepTags: `release-.*`})}
	r := mustRetain(t, s, RetentionOptions{Rules: rules})
	if fmt.Sprint(removedTags(r)) != "[apps/a:build-1 apps/a:latest]" || len(r.Manifests) != 0 {
		t.Fatalf("removed %v and %d manifests, want two tags and no manifest", removedTags(r), len(r.Manifests))
	}
	if !hasManifest(t, s, "apps/a", img.Digest) {
		t.Fatal("the manifest a kept tag points at was deleted")
	}
	checkInvariants(t, s)
}

func TestRetention_IndexesAndReferrers(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	// Old: an index with two children and a referrer, plus a cosign-style
	// fallback tag on the index.
	a := pushImage(t, s, "apps/m", "old-amd64", "", "", "old-a")
	b := pushImage(t, s, "apps/m", "old-arm64", "", "", "old-b")
	oldIdx := pushIndex(t, s, "apps/m", "old", a.Digest, b.Digest)
	oldSig := pushImage(t, s, "apps/m", "old-sig", "sha256-"+oldIdx.Hex()+".sig", oldIdx, "sig-old")
	oldRef := pushImage(t, s, "apps/m", "old-sbom", "", oldIdx, "sbom-old")
	clock.Advance(time.Hour)
	// New: an index sharing a child with the old one, and its referrer.
	c := pushImage(t, s, "apps/m", "new-amd64", "", "", "new-a")
	newIdx := pushIndex(t, s, "apps/m", "new", c.Digest, b.Digest)
	newSig := pushImage(t, s, "apps/m", "new-sig", "sha256-"+newIdx.Hex()+".sig", newIdx, "sig-new")

	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/m", KeepLast: 1})}
	r := mustRetain(t, s, RetentionOptions{Rules: rules})
	if got := tagNames(t, s, "apps/m"); fmt.Sprint(got) != fmt.Sprint([]string{"new", "sha256-" + newIdx.Hex() + ".sig"}) {
		t.Fatalf("tags left %v (removed %v)", got, removedTags(r))
	}
	for _, d := range []Digest{newIdx, c.Digest, b.Digest, newSig.Digest} {
		if !hasManifest(t, s, "apps/m", d) {
			t.Errorf("kept content %s was removed", d)
		}
	}
	for _, d := range []Digest{oldIdx, a.Digest, oldSig.Digest, oldRef.Digest} {
		if hasManifest(t, s, "apps/m", d) {
			t.Errorf("content %s of the removed index is still there", d)
		}
	}
	checkInvariants(t, s)
}

func TestRetention_PullsAndAges(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	start := clock.Now()
	var imgs []image
	for i := range 4 {
		imgs = append(imgs, pushImage(t, s, "ci/app", fmt.Sprint(i), fmt.Sprint("t", i), "", fmt.Sprint("l", i)))
		clock.Advance(time.Minute)
	}
	clock.Advance(48 * time.Hour)
	s.RecordPull("ci/app", imgs[0].Digest) // only in memory: must count
	clock.Advance(time.Hour)
	s.RecordPull("ci/app", imgs[1].Digest)
	if err := s.FlushPulls(); err != nil {
		t.Fatal(err)
	}

	pulled := []RetentionRule{mustRule(t, RetentionRule{Repos: "ci/**", KeepPulled: 1})}
	dry := mustRetain(t, s, RetentionOptions{DryRun: true, Rules: pulled})
	if fmt.Sprint(removedTags(dry)) != "[ci/app:t0 ci/app:t2 ci/app:t3]" {
		t.Fatalf("keep-pulled 1 removes %v", removedTags(dry))
	}
	within := []RetentionRule{mustRule(t, RetentionRule{Repos: "ci/**", KeepWithin: 24 * time.Hour})}
	dry = mustRetain(t, s, RetentionOptions{DryRun: true, Rules: within})
	if fmt.Sprint(removedTags(dry)) != "[ci/app:t2 ci/app:t3]" {
		t.Fatalf("keep-within 24h removes %v", removedTags(dry))
	}
	// The injected time: at the push, everything is young.
	dry = mustRetain(t, s, RetentionOptions{DryRun: true, Rules: within, Now: start})
	if len(dry.Tags) != 0 {
		t.Fatalf("at push time keep-within removes %v", removedTags(dry))
	}
	// Two rules OR: the last pushed (t3) or pulled within a day.
	both := append(within, mustRule(t, RetentionRule{Name: "last", Repos: "ci/app", KeepLast: 1}))
	dry = mustRetain(t, s, RetentionOptions{DryRun: true, Rules: both})
	if fmt.Sprint(removedTags(dry)) != "[ci/app:t2]" {
		t.Fatalf("keep-within OR keep-last removes %v", removedTags(dry))
	}
}

func TestRetention_UntaggedAfter(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	old := pushImage(t, s, "apps/u", "old", "", "", "o")
	pulled := pushImage(t, s, "apps/u", "pulled", "", "", "p")
	clock.Advance(10 * 24 * time.Hour)
	s.RecordPull("apps/u", pulled.Digest)
	young := pushImage(t, s, "apps/u", "young", "", "", "y")
	tagged := pushImage(t, s, "apps/u", "tagged", "latest", "", "t")

	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/u", UntaggedAfter: 7 * 24 * time.Hour})}
	r := mustRetain(t, s, RetentionOptions{Rules: rules})
	if len(r.Tags) != 0 || len(r.Manifests) != 1 || r.Manifests[0].Digest != old.Digest {
		t.Fatalf("removed tags %v, manifests %v; want only the old untagged manifest", removedTags(r), r.Manifests)
	}
	for _, d := range []Digest{pulled.Digest, young.Digest, tagged.Digest} {
		if !hasManifest(t, s, "apps/u", d) {
			t.Errorf("%s was removed", d)
		}
	}
	checkInvariants(t, s)
}

func TestRetention_KeepsImmutableTags(t *testing.T) {
	s := mustOpen(t)
	for i := range 3 {
		pushImage(t, s, "prod/api", fmt.Sprint(i), fmt.Sprint("v", i), "", fmt.Sprint("l", i))
	}
	if err := s.AddImmutableRule(ImmutableRule{Name: "prod", Repos: "prod/**", Tags: "v1"}); err != nil {
		t.Fatal(err)
	}
	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "prod/**", KeepTags: "nothing"})}
	r := mustRetain(t, s, RetentionOptions{Rules: rules})
	if fmt.Sprint(removedTags(r)) != "[prod/api:v0 prod/api:v2]" {
		t.Fatalf("removed %v, want the two mutable tags", removedTags(r))
	}
}

// TestRetention_UnderConcurrentPushes runs retention again and again while
// tags that a rule keeps are pushed: none that a push acknowledged is lost,
// and the store stays consistent.
func TestRetention_UnderConcurrentPushes(t *testing.T) {
	s := mustOpen(t)
	rules := []RetentionRule{mustRule(t, RetentionRule{Repos: "race/**", KeepTags: `keep-.*`})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 60; i++ {
			tag := fmt.Sprint("keep-", i)
			if i%2 == 1 {
				tag = fmt.Sprint("drop-", i)
			}
			// Layers shared with earlier, possibly removed images.
			pushImage(t, s, "race/app", fmt.Sprint("img", i), tag, "", "shared", fmt.Sprint("own", i%5))
			if i%2 == 0 {
				mu.Lock()
				acked = append(acked, tag)
				mu.Unlock()
			}
		}
		close(stop)
	}()
	runs := 0
	for done := false; !done; runs++ {
		select {
		case <-stop:
			done = true
		default:
		}
		mustRetain(t, s, RetentionOptions{Rules: rules})
	}
	wg.Wait()
	mustRetain(t, s, RetentionOptions{Rules: rules})
	have := make(map[string]bool)
	for _, tag := range tagNames(t, s, "race/app") {
		have[tag] = true
	}
	for _, tag := range acked {
		if !have[tag] {
			t.Errorf("acknowledged kept tag %s is lost", tag)
		}
	}
	if len(have) != len(acked) {
		t.Errorf("%d tags left, want %d", len(have), len(acked))
	}
	t.Logf("%d retention runs during 60 pushes", runs)
	checkInvariants(t, s)
}

// TestRetention_SignatureTagOfUntaggedSubject: a fallback tag whose
// subject has no tag of its own is a tag like any other; a rule that keeps
// all tags keeps it, and an immutable one is never removed.
func TestRetention_SignatureTagOfUntaggedSubject(t *testing.T) {
	s := mustOpen(t)
	img := pushImage(t, s, "apps/s", "img", "", "", "l") // pushed by digest
	sigTag := "sha256-" + img.Digest.Hex() + ".sig"
	pushImage(t, s, "apps/s", "sig", sigTag, img.Digest, "sig")
	only := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/s", UntaggedAfter: time.Hour})}
	if r := mustRetain(t, s, RetentionOptions{Rules: only, DryRun: true}); len(r.Tags) != 0 {
		t.Fatalf("a rule that keeps all tags removes %v", removedTags(r))
	}
	if err := s.AddImmutableRule(ImmutableRule{Name: "sigs", Repos: "**", Tags: "**", Signatures: true}); err != nil {
		t.Fatal(err)
	}
	none := []RetentionRule{mustRule(t, RetentionRule{Repos: "apps/s", KeepTags: "nothing"})}
	if r := mustRetain(t, s, RetentionOptions{Rules: none, DryRun: true}); len(r.Tags) != 0 {
		t.Fatalf("an immutable signature tag would go: %v", removedTags(r))
	}
}
