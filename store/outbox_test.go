package store

import (
	"errors"
	"testing"
	"time"
)

func testHook(name string, actions ...string) Webhook {
	return Webhook{
		Name: name, URL: "http://127.0.0.1:1/hook", Actions: actions, Format: FormatDistribution,
		Secret: []byte("k"), Timeout: time.Second, MaxAge: time.Hour,
	}
}

// outboxLen counts the outbox's records.
func outboxLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Records(func(bucket string, _, _ []byte) error {
		if bucket == string(bucketOutbox) {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStore_OutboxWrittenWithTheChange(t *testing.T) {
	t.Run("NoWebhookNoEvent", func(t *testing.T) {
		s := mustOpen(t)
		pushImage(t, s, "app", "app", "v1", "")
		if n := outboxLen(t, s); n != 0 {
			t.Fatalf("outbox holds %d events with no webhook", n)
		}
	})
	t.Run("PushTagsAndDeletes", func(t *testing.T) {
		s := mustOpen(t)
		if err := s.AddWebhook(testHook("a", ActionPush, ActionDelete)); err != nil {
			t.Fatal(err)
		}
		img := pushImage(t, s, "app", "app", "v1", "")
		if err := s.DeleteManifest("app", Reference{Tag: "v1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteManifest("app", Reference{Digest: img.Digest}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteRepository("app"); err != nil {
			t.Fatal(err)
		}
		b, err := s.Pending("a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ action, tag string }{{ActionPush, "v1"}, {ActionDelete, "v1"}, {ActionDelete, ""}, {ActionDelete, ""}}
		if len(b.Events) != len(want) {
			t.Fatalf("%d events, want %d: %+v", len(b.Events), len(want), b.Events)
		}
		for i, w := range want {
			ev := b.Events[i]
			if ev.Action != w.action || ev.Tag != w.tag || ev.Repo != "app" || ev.ID == "" || ev.Seq != uint64(i+1) {
				t.Errorf("event %d: %+v, want %s %q", i, ev, w.action, w.tag)
			}
		}
		if b.Events[0].Digest != img.Digest || b.Events[2].Digest != img.Digest || b.Events[0].Size == 0 {
			t.Errorf("push and digest delete must name %s: %+v %+v", img.Digest, b.Events[0], b.Events[2])
		}
	})
	t.Run("TagDeletedByCommand", func(t *testing.T) {
		// berth tag del goes through DeleteTag, not the API's DELETE: its
		// event must be recorded all the same.
		s := mustOpen(t)
		if err := s.AddWebhook(testHook("a", ActionDelete)); err != nil {
			t.Fatal(err)
		}
		pushImage(t, s, "app", "app", "v1", "")
		if _, err := s.DeleteTag("app", "v1"); err != nil {
			t.Fatal(err)
		}
		b, err := s.Pending("a", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Events) != 1 || b.Events[0].Action != ActionDelete || b.Events[0].Tag != "v1" || b.Events[0].Repo != "app" {
			t.Fatalf("events after DeleteTag: %+v, want one delete of app:v1", b.Events)
		}
	})
	t.Run("FailedChangeRecordsNothing", func(t *testing.T) {
		s := mustOpen(t)
		if err := s.AddWebhook(testHook("a", ActionPush, ActionDelete)); err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` +
			"0000000000000000000000000000000000000000000000000000000000000000" + `","size":1},"layers":[]}`)
		var missing *MissingRefError
		if _, _, err := s.PutManifest("app", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body); !errors.As(err, &missing) {
			t.Fatalf("put with a missing config: %v", err)
		}
		if err := s.DeleteManifest("app", Reference{Tag: "nope"}); !errors.Is(err, ErrManifestUnknown) {
			t.Fatalf("delete of an unknown tag: %v", err)
		}
		if n := outboxLen(t, s); n != 0 {
			t.Fatalf("outbox holds %d events of changes that failed", n)
		}
	})
	t.Run("NewWebhookStartsAtTheEnd", func(t *testing.T) {
		s := mustOpen(t)
		if err := s.AddWebhook(testHook("old", ActionPush)); err != nil {
			t.Fatal(err)
		}
		pushImage(t, s, "app", "app", "v1", "")
		if err := s.AddWebhook(testHook("new", ActionPush)); err != nil {
			t.Fatal(err)
		}
		pushImage(t, s, "app", "app", "v2", "")
		b, _ := s.Pending("new", 0, 10)
		if len(b.Events) != 1 || b.Events[0].Tag != "v2" {
			t.Fatalf("new webhook's queue %+v, want only v2", b.Events)
		}
	})
}

func TestStore_AckPrunesTheOutbox(t *testing.T) {
	s := mustOpen(t)
	for _, n := range []string{"a", "b"} {
		if err := s.AddWebhook(testHook(n, ActionPush)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range []string{"1", "2", "3"} {
		pushImage(t, s, "app", "app", tag, "")
	}
	if err := s.Ack("a", 3, 3); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, s); n != 3 {
		t.Fatalf("outbox holds %d events while b still needs 3", n)
	}
	if err := s.Ack("b", 2, 2); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, s); n != 1 {
		t.Fatalf("outbox holds %d events, want the 1 that b still needs", n)
	}
	if err := s.DeleteWebhook("b"); err != nil {
		t.Fatal(err)
	}
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("outbox holds %d events that no webhook needs", n)
	}
	q, err := s.Queues()
	if err != nil || len(q) != 1 || q[0].Name != "a" || q[0].Delivered != 3 || q[0].Pending != 0 {
		t.Fatalf("queues %+v, %v", q, err)
	}
}

func TestWebhook_Validate(t *testing.T) {
	ok := testHook("ok", ActionPush)
	for _, tc := range []struct {
		name string
		mod  func(*Webhook)
	}{
		{"BadName", func(w *Webhook) { w.Name = "Bad Name" }},
		{"NoScheme", func(w *Webhook) { w.URL = "example.com/hook" }},
		{"NoEvents", func(w *Webhook) { w.Actions = nil }},
		{"UnknownEvent", func(w *Webhook) { w.Actions = []string{"mount"} }},
		{"UnknownFormat", func(w *Webhook) { w.Format = "xml" }},
		{"NoSecret", func(w *Webhook) { w.Secret = nil }},
		{"HeaderInjection", func(w *Webhook) { w.Headers = map[string]string{"X": "a\r\nEvil: 1"} }},
		{"EmptyPattern", func(w *Webhook) { w.Repos = "a,,b" }},
		{"ZeroTimeout", func(w *Webhook) { w.Timeout = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := ok
			tc.mod(&w)
			if err := w.Validate(); !errors.Is(err, ErrWebhookInvalid) {
				t.Fatalf("Validate: %v, want ErrWebhookInvalid", err)
			}
		})
	}
	w := ok
	w.Repos = "team/*, lib?"
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]bool{"team/a": true, "team/a/b": true, "team": false, "lib1": true, "lib12": false, "x/team/a": false} {
		if got := w.Wants(ActionPush, repo); got != want {
			t.Errorf("Wants(push, %q) = %v, want %v", repo, got, want)
		}
	}
}
