package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestStore_SigningKey(t *testing.T) {
	s := mustOpen(t)
	if _, ok, err := s.SigningKey(); err != nil || ok {
		t.Fatalf("SigningKey of new store: ok=%v err=%v", ok, err)
	}

	first, err := s.PutSigningKeyIfAbsent(SigningKey{ID: "kid-1", PrivateDER: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "kid-1" || first.Created.IsZero() {
		t.Fatalf("first key = %+v", first)
	}
	second, err := s.PutSigningKeyIfAbsent(SigningKey{ID: "kid-2", PrivateDER: []byte{4}})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != "kid-1" {
		t.Fatalf("PutSigningKeyIfAbsent replaced the key: got %q, want kid-1", second.ID)
	}
	current, ok, err := s.SigningKey()
	if err != nil || !ok || current.ID != "kid-1" || string(current.PrivateDER) != "\x01\x02\x03" {
		t.Fatalf("SigningKey = %+v, %v, %v", current, ok, err)
	}

	for _, bad := range []SigningKey{{PrivateDER: []byte{1}}, {ID: "x"}} {
		if _, err := s.PutSigningKeyIfAbsent(bad); !errors.Is(err, ErrSigningKeyInvalid) {
			t.Fatalf("PutSigningKeyIfAbsent(%+v) = %v, want ErrSigningKeyInvalid", bad, err)
		}
	}
}

func TestStore_PutSigningKeyIfAbsentConcurrently(t *testing.T) {
	s := mustOpen(t)
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.PutSigningKeyIfAbsent(SigningKey{ID: fmt.Sprintf("kid-%d", i), PrivateDER: []byte{byte(i)}})
			if err != nil {
				t.Error(err)
			}
			got[i] = k.ID
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("starters disagree on the key: %v", got)
		}
	}
}
