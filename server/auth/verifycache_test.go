package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The verified-token cache is keyed by a token's last bytes only: a token
// that shares them with a cached one (the same signature over a tampered
// payload) must still be verified in full and refused, and the cached token
// must keep working after that.
func TestVerifiedCache_SharedKeyIsNoHit(t *testing.T) {
	s, _ := newTestSigner(t)
	tok, err := s.Issue("alice", testService, []Access{{Type: TypeRepository, Name: "alice/app", Actions: []string{"pull"}}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Verify(tok.Raw, testService); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	if _, ok := s.verified.get(tok.Raw, testService, s.now()); !ok {
		t.Fatal("a verified token is not in the cache")
	}
	parts := strings.Split(tok.Raw, ".")
	_, payload := decodeSegments(t, tok.Raw)
	payload["access"] = []any{map[string]any{"type": "repository", "name": "alice/app", "actions": []string{"pull", "push"}}}
	widened, _ := json.Marshal(payload)
	tampered := parts[0] + "." + b64(widened) + "." + parts[2]
	if verifiedKeyOf(tampered) != verifiedKeyOf(tok.Raw) {
		t.Fatal("test setup: the tampered token should share the cache key")
	}
	for i := 0; i < 2; i++ { // twice: a refusal must not be cached either
		if account, access, err := s.Verify(tampered, testService); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("tampered token with a cached token's signature: %q, %v, %v; want ErrTokenInvalid", account, access, err)
		}
	}
	if _, _, err := s.Verify(tok.Raw, "another-service"); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("cached token for another service: %v; want ErrTokenInvalid", err)
	}
	account, access, err := s.Verify(tok.Raw, testService)
	if err != nil || account != "alice" || len(access) != 1 || len(access[0].Actions) != 1 {
		t.Fatalf("cached token after the refusals: %q, %v, %v", account, access, err)
	}
}

// A short or empty string has a key too, and is never a hit.
func TestVerifiedCache_ShortTokens(t *testing.T) {
	c := newVerifiedCache()
	now := time.Unix(1000, 0)
	c.add("abc", "svc", verifiedToken{account: "x", expires: now.Add(time.Minute)}, now)
	if _, ok := c.get("\x00abc", "svc", now); ok {
		t.Fatal("a different token with the same padded key was a hit")
	}
	if v, ok := c.get("abc", "svc", now); !ok || v.account != "x" {
		t.Fatalf("get(abc) = %v, %v", v, ok)
	}
	if _, ok := c.get("abc", "svc", now.Add(time.Minute)); ok {
		t.Fatal("an expired entry was a hit")
	}
}
