package ui

import (
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
)

// Expensive summaries (here: all of them) serve the old snapshot while a
// change is younger than minAge, then pick the change up in the
// background; a store that has not changed is never read again.
func TestSummaries_RefreshAfterChange(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	storetest.PushImage(t, st, "a", "v1", nil, "layer of a")
	s := &summaries{st: st, log: t.Logf, minAge: time.Hour, syncBelow: 0}
	first, err := s.get()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.byName) != 1 || first.byName[0].Tags != 1 || first.byName[0].LastPush.IsZero() {
		t.Fatalf("first snapshot: %+v", first.byName)
	}

	storetest.PushImage(t, st, "b", "v1", nil, "a bigger layer of b")
	if snap, _ := s.get(); snap != first {
		t.Fatal("a snapshot younger than minAge was replaced")
	}

	s.minAge = 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap, err := s.get()
		if err != nil {
			t.Fatal(err)
		}
		if snap != first {
			if len(snap.byName) != 2 || snap.bySize[0].Repo != "b" || snap.byPush[0].Repo != "b" || snap.byUse[0].Repo != "b" {
				t.Fatalf("refreshed snapshot: by name %v, by size %v", snap.byName, snap.bySize)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change was not picked up within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Unchanged since: get answers with what is kept and starts nothing.
	kept, _ := s.get()
	for range 10 {
		if snap, _ := s.get(); snap != kept {
			t.Fatal("an unchanged store was read again")
		}
	}
	s.mu.Lock()
	refreshing := s.refreshing
	s.mu.Unlock()
	if refreshing {
		t.Error("a refresh runs though nothing changed")
	}
}

// Cheap summaries are recomputed by the request that finds them stale, so
// a change shows at once; unchanged, they are not recomputed.
func TestSummaries_CheapAreCurrent(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	s := &summaries{st: st, log: t.Logf, minAge: time.Hour, syncBelow: time.Hour}
	empty, err := s.get()
	if err != nil || len(empty.byName) != 0 {
		t.Fatalf("an empty store: %v, %v", empty, err)
	}
	if again, _ := s.get(); again != empty {
		t.Fatal("an unchanged store was read again")
	}
	storetest.PushImage(t, st, "a", "v1", nil, "layer of a")
	snap, err := s.get()
	if err != nil || len(snap.byName) != 1 || snap.byName[0].Repo != "a" {
		t.Fatalf("right after a push: %v, %v", snap, err)
	}
}
