package store

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestStore_ConfirmTag: confirmations stay in memory until a flush, which
// writes those of existing tags only, and outlive a reopen.
func TestStore_ConfirmTag(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := useClock(s)
	pushImage(t, s, "up/app", "img", "v1", "", "l")
	before := dumpState(t, s)
	s.ConfirmTag("up/app", "v1")
	s.ConfirmTag("up/app", "referrers@sha256:00")
	s.ConfirmTag("up/gone", "v1")
	if dumpState(t, s) != before {
		t.Fatal("ConfirmTag wrote to meta.db")
	}
	if got := s.TagConfirmed("up/app", "v1"); !got.Equal(clock.Now()) {
		t.Errorf("TagConfirmed before the flush = %v, want %v", got, clock.Now())
	}
	if err := s.FlushPulls(); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketTagChecks).Stats().KeyN; n != 2 {
			t.Errorf("%d confirmation records, want 2 (none in the absent repository)", n)
		}
		return nil
	})
	s.ConfirmTag("up/app", "v1") // written by Close
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.TagConfirmed("up/app", "v1"); !got.Equal(clock.Now()) {
		t.Errorf("TagConfirmed after a reopen = %v, want %v", got, clock.Now())
	}
	if got := s.TagConfirmed("up/app", "referrers@sha256:00"); !got.Equal(clock.Now()) {
		t.Errorf("referrers confirmation after a reopen = %v, want %v", got, clock.Now())
	}
	if got := s.TagConfirmed("up/gone", "v1"); !got.IsZero() {
		t.Errorf("TagConfirmed in a repository never stored = %v, want zero", got)
	}
}
