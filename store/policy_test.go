package store

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, input string
		want                 bool
	}{
		{"double star crosses slashes", "apps/**", "apps/web/api", true},
		{"double star needs the prefix", "apps/**", "other/web", false},
		{"star stays in a component", "apps/*", "apps/web/api", false},
		{"star in a component", "apps/*", "apps/web", true},
		{"question mark", "v?", "v1", true},
		{"literal dot", "v1.0", "v1x0", false},
		{"alternatives", "prod/**, stage/*", "stage/x", true},
		{"tag glob", "v*", "v1.2.3", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePattern(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tc.input); got != tc.want {
				t.Fatalf("%q matches %q: %v, want %v", tc.pattern, tc.input, got, tc.want)
			}
		})
	}
	if _, err := ParsePattern("a,,b"); err == nil {
		t.Fatal("an empty glob was accepted")
	}
}

func TestRetentionRule_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule RetentionRule
	}{
		{"no criterion", RetentionRule{Name: "a", Repos: "x"}},
		{"bad name", RetentionRule{Name: "A B", Repos: "x", KeepLast: 1}},
		{"bad regexp", RetentionRule{Name: "a", Repos: "x", KeepTags: "("}},
		{"negative", RetentionRule{Name: "a", Repos: "x", KeepLast: -1}},
		{"empty repos", RetentionRule{Name: "a", KeepLast: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rule.Validate(); !errors.Is(err, ErrPolicyInvalid) {
				t.Fatalf("Validate = %v, want ErrPolicyInvalid", err)
			}
		})
	}
}

func TestStore_RetentionRules(t *testing.T) {
	s := mustOpen(t)
	if err := s.AddRetentionRule(RetentionRule{Name: "ci", Repos: "ci/**", KeepLast: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRetentionRule(RetentionRule{Name: "ci", Repos: "x", KeepLast: 1}); !errors.Is(err, ErrPolicyExists) {
		t.Fatalf("second rule of the same name: %v", err)
	}
	rs, err := s.RetentionRules()
	if err != nil || len(rs) != 1 || rs[0].KeepLast != 3 || !rs[0].repos.Match("ci/a/b") {
		t.Fatalf("RetentionRules = %+v, %v", rs, err)
	}
	if err := s.DeleteRetentionRule("ci"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRetentionRule("ci"); !errors.Is(err, ErrPolicyUnknown) {
		t.Fatalf("deleting a missing rule: %v", err)
	}
}

func TestImmutable(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	v1 := pushImage(t, s, "prod/api", "one", "v1", "", "a")
	if err := s.AddImmutableRule(ImmutableRule{Name: "releases", Repos: "prod/**", Tags: "v*"}); err != nil {
		t.Fatal(err)
	}
	other := pushImage(t, s, "prod/api", "two", "", "", "b")
	body := mustManifestBody(t, s, "prod/api", other.Digest)
	same := mustManifestBody(t, s, "prod/api", v1.Digest)
	var ie *ImmutableError

	t.Run("overwrite refused naming the rule", func(t *testing.T) {
		_, _, err := s.PutManifest("prod/api", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body)
		if !errors.As(err, &ie) || ie.Rule != "releases" || ie.Tag != "v1" {
			t.Fatalf("overwrite: %v", err)
		}
	})
	t.Run("overwrite through ?tag= refused", func(t *testing.T) {
		_, _, err := s.PutManifest("prod/api", Reference{Digest: other.Digest}, []string{"v1"}, MediaTypeOCIManifest, body)
		if !errors.As(err, &ie) {
			t.Fatalf("overwrite by ?tag=: %v", err)
		}
	})
	t.Run("same digest again allowed", func(t *testing.T) {
		if _, _, err := s.PutManifest("prod/api", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, same); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("new tag allowed", func(t *testing.T) {
		if _, _, err := s.PutManifest("prod/api", Reference{Tag: "v2"}, nil, MediaTypeOCIManifest, body); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("deletes refused", func(t *testing.T) {
		if err := s.DeleteManifest("prod/api", Reference{Tag: "v1"}); !errors.As(err, &ie) {
			t.Fatalf("tag delete: %v", err)
		}
		if _, err := s.DeleteTag("prod/api", "v1"); !errors.As(err, &ie) {
			t.Fatalf("DeleteTag: %v", err)
		}
		if err := s.DeleteManifest("prod/api", Reference{Digest: v1.Digest}); !errors.As(err, &ie) {
			t.Fatalf("delete by digest: %v", err)
		}
		if _, err := s.DeleteRepository("prod/api"); !errors.As(err, &ie) {
			t.Fatalf("repository delete: %v", err)
		}
	})
	t.Run("signature fallback tags not caught", func(t *testing.T) {
		sig := "sha256-" + v1.Digest.Hex() + ".sig"
		r := ImmutableRule{Name: "all", Repos: "**", Tags: "**"}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if r.Catches("prod/api", sig) || r.Catches("prod/api", "sha256-"+v1.Digest.Hex()) || !r.Catches("prod/api", "v9") {
			t.Fatal("a catch-all rule caught a signature tag, or missed a plain one")
		}
		r.Signatures = true
		if !r.Catches("prod/api", sig) {
			t.Fatal("a rule with Signatures set missed a signature tag")
		}
	})
	t.Run("a lift lets one change through", func(t *testing.T) {
		if err := s.LiftImmutable("prod/api", "v1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutManifest("prod/api", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body); err != nil {
			t.Fatalf("overwrite after a lift: %v", err)
		}
		if _, _, err := s.PutManifest("prod/api", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, same); !errors.As(err, &ie) {
			t.Fatalf("second overwrite after one lift: %v", err)
		}
		if err := s.LiftImmutable("prod/api", "v1", time.Minute); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := s.DeleteTag("prod/api", "v1"); !errors.As(err, &ie) {
			t.Fatalf("delete after the lift expired: %v", err)
		}
	})
	t.Run("rules survive a reopen", func(t *testing.T) {
		if err := s.loadImmutable(); err != nil || len(s.ImmutableRules()) != 1 {
			t.Fatalf("reload: %d rules, %v", len(s.ImmutableRules()), err)
		}
	})
	checkInvariants(t, s)
}

func TestPulls_BatchedInMemory(t *testing.T) {
	s := mustOpen(t)
	clock := useClock(s)
	img := pushImage(t, s, "a", "img", "latest", "", "l")
	gone := pushImage(t, s, "a", "gone", "", "", "g")
	before := dumpState(t, s)
	for range 1000 {
		s.RecordPull("a", img.Digest)
	}
	s.RecordPull("a", gone.Digest)
	if dumpState(t, s) != before {
		t.Fatal("RecordPull wrote to meta.db")
	}
	infos, err := s.TagInfos("a")
	if err != nil || len(infos) != 1 || !infos[0].Pulled.Equal(clock.Now()) {
		t.Fatalf("TagInfos before the flush = %+v, %v", infos, err)
	}
	if err := s.DeleteManifest("a", Reference{Digest: gone.Digest}); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushPulls(); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketPulls).Stats().KeyN; n != 1 {
			t.Errorf("%d last-pull records, want 1 (none for the deleted manifest)", n)
		}
		return nil
	})
	s.pulls.mu.Lock()
	left := len(s.pulls.pending)
	s.pulls.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d pulls left in memory after the flush", left)
	}
	infos, err = s.TagInfos("a")
	if err != nil || !infos[0].Pulled.Equal(clock.Now()) {
		t.Fatalf("TagInfos after the flush = %+v, %v", infos, err)
	}
	checkInvariants(t, s)
}
