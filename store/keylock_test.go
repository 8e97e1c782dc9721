package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDigestLocks_GCBatchHoldsOnlyItsDigests holds the digest locks of a
// sweep batch (128 digests, as GC does while it deletes their records and
// files) and checks that pushes of other digests commit meanwhile, while a
// push of a held digest waits until the batch lets go.
func TestDigestLocks_GCBatchHoldsOnlyItsDigests(t *testing.T) {
	s := mustOpen(t)
	var held []string
	for i := range gcBatch {
		held = append(held, string(DigestOf(SHA256, fmt.Appendf(nil, "doomed %d", i))))
	}
	unlock := s.digestLocks.lockAll(held)

	// With 64 stripes, 128 held digests covered nearly all of them and each
	// of these pushes would have waited for the batch.
	for i := range 100 {
		body := fmt.Sprintf("other %d", i)
		done := make(chan error, 1)
		go func() {
			_, err := s.PutBlob("r", DigestOf(SHA256, []byte(body)), int64(len(body)), strings.NewReader(body))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("push beside a held batch: %v", err)
			}
		case <-time.After(5 * time.Second):
			unlock()
			t.Fatalf("push %d of a digest outside the batch waits for the batch's locks", i)
		}
	}

	body := "doomed 7"
	d := DigestOf(SHA256, []byte(body))
	done := make(chan error, 1)
	go func() {
		_, err := s.PutBlob("r", d, int64(len(body)), strings.NewReader(body))
		done <- err
	}()
	// The push must not record the digest while the batch holds it; it is
	// not visible until the batch lets go (the body is tiny, so a push that
	// did not wait would have committed within this bound).
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if s.HasBlob(d) {
			unlock()
			t.Fatal("a push recorded a digest whose lock a sweep batch holds")
		}
		select {
		case err := <-done:
			unlock()
			t.Fatalf("a push of a held digest finished while the batch held it: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("push after the batch let go: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a push of a held digest still waits after the batch let go")
	}
	if !s.HasBlob(d) {
		t.Fatal("the push of the once-held digest left no record")
	}
	s.digestLocks.mu.Lock()
	left := len(s.digestLocks.m)
	s.digestLocks.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d digest lock entries left after every holder let go", left)
	}
}

// TestKeyLocks_LockAllNoDeadlock has many goroutines take overlapping key
// sets, given in different orders and with duplicates, while others take
// single keys; all must finish.
func TestKeyLocks_LockAllNoDeadlock(t *testing.T) {
	var l keyLocks
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g%4 == 0 {
					l.lock(keys[(g+i)%len(keys)])()
					continue
				}
				var set []string
				for j := range 4 {
					set = append(set, keys[(g*7+i*(j+1))%len(keys)])
				}
				set = append(set, set[0]) // a duplicate must not self-deadlock
				l.lockAll(set)()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("lockAll deadlocked")
	}
	if len(l.m) != 0 {
		t.Fatalf("%d entries left after every holder let go", len(l.m))
	}
}
