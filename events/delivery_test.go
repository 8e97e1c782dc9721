package events_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/notifications"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// envelope decodes a registry:2 body with distribution's own event type
// (its Envelope holds an interface, so the list is declared here).
func envelope(t *testing.T, d delivery) notifications.Event {
	t.Helper()
	if ct := d.Header.Get("Content-Type"); ct != notifications.EventsMediaType {
		t.Fatalf("delivery %s: Content-Type %q, want %q", d.ID, ct, notifications.EventsMediaType)
	}
	var env struct {
		Events []notifications.Event `json:"events"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatalf("delivery %s: decode registry:2 envelope: %v\n%s", d.ID, err, d.Body)
	}
	if len(env.Events) != 1 {
		t.Fatalf("delivery %s: %d events in the envelope, want 1", d.ID, len(env.Events))
	}
	return env.Events[0]
}

// pushTags pushes one image per tag into repo and returns their digests.
func pushTags(t *testing.T, st *store.Store, repo string, tags ...string) []store.Digest {
	var out []store.Digest
	for _, tag := range tags {
		out = append(out, storetest.Digest(storetest.PushImage(t, st, repo, tag, nil, "layer of "+tag)))
	}
	return out
}

func tagsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("v%d", i)
	}
	return out
}

func TestDelivery_RetriesAfterFailures(t *testing.T) {
	const failures = 3
	rc := newReceiver(t, failFirst(failures))
	st := openStore(t)
	addHook(t, st, "ci", rc.URL, nil)
	tags := tagsN(20)
	digests := pushTags(t, st, "team/app", tags...)
	runSenders(t, st)

	waitFor(t, "20 accepted deliveries", func() bool { return len(rc.accepted()) >= len(tags) })
	all := rc.deliveries()
	for i := 0; i <= failures; i++ {
		if all[i].ID != all[0].ID {
			t.Fatalf("attempt %d carried event %s, want the retried head %s", i+1, all[i].ID, all[0].ID)
		}
	}
	ids, count := distinctIDs(rc.accepted())
	if len(ids) != len(tags) {
		t.Fatalf("%d distinct events accepted, want %d", len(ids), len(tags))
	}
	for i, d := range rc.accepted() {
		verify(t, d, testSecret)
		ev := envelope(t, d)
		if count[d.ID] != 1 {
			t.Errorf("event %s accepted %d times", d.ID, count[d.ID])
		}
		if ev.ID != d.ID || ev.Action != "push" || ev.Target.Repository != "team/app" || ev.Target.Tag != tags[i] || string(ev.Target.Digest) != string(digests[i]) {
			t.Errorf("delivery %d: %+v, want push of team/app:%s %s", i, ev, tags[i], digests[i])
		}
		if ev.Target.MediaType != store.MediaTypeOCIManifest || ev.Target.Size == 0 || ev.Target.Length != ev.Target.Size {
			t.Errorf("delivery %d: target %+v lacks media type or size", i, ev.Target)
		}
	}
	waitFor(t, "the cursor to pass every event", func() bool {
		q, _ := st.Queues()
		return len(q) == 1 && q[0].Pending == 0 && q[0].Delivered == uint64(len(tags))
	})
}

func TestDelivery_HangPastTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return false
		}
		return true
	})
	defer close(release)
	st := openStore(t)
	addHook(t, st, "slow", rc.URL, func(w *store.Webhook) { w.Timeout = 200 * time.Millisecond })
	pushTags(t, st, "app", "a", "b")
	runSenders(t, st)

	waitFor(t, "both events accepted", func() bool { return len(rc.accepted()) == 2 })
	if d := rc.deliveries(); d[0].ID != d[1].ID {
		t.Errorf("the event after the hung attempt is %s, want a retry of %s", d[1].ID, d[0].ID)
	}
	waitFor(t, "2 deliveries recorded", func() bool { q, _ := st.Queues(); return q[0].Delivered == 2 })
}

func TestDelivery_ConnectionClosed(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return false
		}
		return true
	})
	st := openStore(t)
	addHook(t, st, "flaky", rc.URL, nil)
	pushTags(t, st, "app", "a")
	runSenders(t, st)
	waitFor(t, "the event accepted", func() bool { return len(rc.accepted()) == 1 })
	if rc.requests() != 3 {
		t.Errorf("%d requests, want 2 closed and 1 accepted", rc.requests())
	}
	waitFor(t, "the delivery recorded and the error cleared", func() bool {
		q, _ := st.Queues()
		return q[0].Delivered == 1 && q[0].LastError == "" && q[0].Failures == 0
	})
}

func TestDelivery_RedirectIsNotFollowedThenDeadLetterAndReplay(t *testing.T) {
	elsewhere := newReceiver(t, nil)
	var redirect atomic.Bool
	redirect.Store(true)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if redirect.Load() {
			http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
			return false
		}
		return true
	})
	st := openStore(t)
	addHook(t, st, "moved", rc.URL, func(w *store.Webhook) { w.MaxAge = 300 * time.Millisecond })
	pushTags(t, st, "app", "a", "b")
	runSenders(t, st)

	waitFor(t, "both events dead-lettered", func() bool {
		d, _ := st.DeadLetters("moved")
		return len(d) == 2
	})
	if n := elsewhere.requests(); n != 0 {
		t.Fatalf("the redirect target got %d requests: redirects must not be followed", n)
	}
	dead, _ := st.DeadLetters("moved")
	if !strings.Contains(dead[0].Reason, "307") || !strings.Contains(dead[0].Reason, "not followed") {
		t.Errorf("dead letter reason %q does not name the redirect", dead[0].Reason)
	}
	q, _ := st.Queues()
	if q[0].DeadLetters != 2 || q[0].Pending != 0 {
		t.Errorf("queue %+v: want 2 dead letters and nothing pending", q[0])
	}

	redirect.Store(false)
	n, err := st.Replay("moved", nil)
	if err != nil || n != 2 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	waitFor(t, "the replayed events accepted", func() bool { return len(rc.accepted()) == 2 })
	acc := rc.accepted()
	if acc[0].ID != dead[0].Event.ID || acc[1].ID != dead[1].Event.ID {
		t.Errorf("replayed ids %s %s, want the dead letters' %s %s", acc[0].ID, acc[1].ID, dead[0].Event.ID, dead[1].Event.ID)
	}
	if d, _ := st.DeadLetters("moved"); len(d) != 0 {
		t.Errorf("%d dead letters left after replay", len(d))
	}
}

func TestDelivery_CloudEventsBinaryMode(t *testing.T) {
	rc := newReceiver(t, nil)
	st := openStore(t)
	addHook(t, st, "ce", rc.URL, func(w *store.Webhook) { w.Format = store.FormatCloudEvents })
	d := pushTags(t, st, "app", "v1")[0]
	if err := st.DeleteManifest("app", store.Reference{Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	// Batching on: binary mode still sends one event per request.
	runSendersBatched(t, st, 64)
	waitFor(t, "two events", func() bool { return len(rc.accepted()) == 2 })
	for i, want := range []struct{ typ, subject string }{
		{"io.berth.registry.push", "app:v1"},
		{"io.berth.registry.delete", "app:v1"},
	} {
		got := rc.accepted()[i]
		verify(t, got, testSecret)
		h := got.Header
		if h.Get("Ce-Specversion") != "1.0" || h.Get("Ce-Id") != got.ID || h.Get("Ce-Type") != want.typ ||
			h.Get("Ce-Subject") != want.subject || h.Get("Ce-Source") == "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("event %d headers %v, want binary-mode CloudEvent %s of %s", i, h, want.typ, want.subject)
		}
		if _, err := time.Parse(time.RFC3339Nano, h.Get("Ce-Time")); err != nil {
			t.Errorf("ce-time %q: %v", h.Get("Ce-Time"), err)
		}
		var data events.Record
		if err := json.Unmarshal(got.Body, &data); err != nil || data.ID != got.ID || data.Target.Repository != "app" {
			t.Errorf("event %d data %s: %v", i, got.Body, err)
		}
		if i == 0 && data.Target.Digest != string(d) {
			t.Errorf("push data digest %s, want %s", data.Target.Digest, d)
		}
	}
}

func TestDelivery_FiltersByActionAndRepository(t *testing.T) {
	rc := newReceiver(t, nil)
	st := openStore(t)
	addHook(t, st, "team", rc.URL, func(w *store.Webhook) {
		w.Actions, w.Repos = []string{store.ActionDelete}, "team/*"
	})
	pushTags(t, st, "team/a/b", "x")
	pushTags(t, st, "other", "y")
	if err := st.DeleteManifest("other", store.Reference{Tag: "y"}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteManifest("team/a/b", store.Reference{Tag: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteRepository("team/a/b"); err != nil {
		t.Fatal(err)
	}
	runSenders(t, st)
	waitFor(t, "two deletes", func() bool { return len(rc.accepted()) == 2 })
	waitFor(t, "the queue passed", func() bool { q, _ := st.Queues(); return q[0].Pending == 0 })
	acc := rc.accepted()
	if len(acc) != 2 {
		t.Fatalf("%d deliveries, want the 2 deletes under team/", len(acc))
	}
	tag, repoDel := envelope(t, acc[0]), envelope(t, acc[1])
	if tag.Action != "delete" || tag.Target.Tag != "x" || repoDel.Action != "delete" || repoDel.Target.Tag != "" || repoDel.Target.Repository != "team/a/b" {
		t.Errorf("got %+v and %+v, want the tag delete then the repository delete", tag, repoDel)
	}
}

func TestPullRecorder_BatchesPullEvents(t *testing.T) {
	rc := newReceiver(t, nil)
	st := openStore(t)
	pushTags(t, st, "app", "v1")
	addHook(t, st, "pulls", rc.URL, func(w *store.Webhook) { w.Actions = []string{store.ActionPull} })
	if !st.WantsAny(store.ActionPull) || st.WantsAny("nothing") {
		t.Fatal("WantsAny does not reflect the webhook")
	}
	pr := events.NewPullRecorder(st, nil)
	for range 50 {
		pr.Record(store.Event{Time: time.Now(), Action: store.ActionPull, Repo: "app", Tag: "v1"})
	}
	ctx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { pr.Run(ctx); close(done) }()
	runSenders(t, st)
	waitFor(t, "50 pull events", func() bool { return len(rc.accepted()) == 50 })
	cancel()
	<-done
	if ev := envelope(t, rc.accepted()[0]); ev.Action != "pull" || ev.Target.Tag != "v1" {
		t.Errorf("pull event %+v", ev)
	}
}

// TestPullRecorder_BoundsWaitingEvents: events beyond the bound that wait
// for the batch writer are dropped, and the ones kept all reach the
// outbox, in two rounds (the recorder's two queues alternate).
func TestPullRecorder_BoundsWaitingEvents(t *testing.T) {
	st := openStore(t)
	addHook(t, st, "pulls", "http://127.0.0.1:1/never-called", func(w *store.Webhook) { w.Actions = []string{store.ActionPull} })
	pr := events.NewPullRecorder(st, nil)
	const bound = 8192
	for i := range bound + 100 {
		pr.Record(store.Event{Time: time.Now(), Action: store.ActionPull, Repo: "app", Tag: fmt.Sprint(i)})
	}
	pending := func() uint64 {
		qs, err := st.Queues()
		if err != nil || len(qs) != 1 {
			t.Fatalf("queues %+v, %v", qs, err)
		}
		return qs[0].Pending
	}
	ctx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { pr.Run(ctx); close(done) }()
	waitFor(t, "the kept events in the outbox", func() bool { return pending() == bound })
	for range 10 {
		pr.Record(store.Event{Time: time.Now(), Action: store.ActionPull, Repo: "app", Tag: "late"})
	}
	cancel()
	<-done
	if got := pending(); got != bound+10 {
		t.Errorf("outbox holds %d events, want %d (the bound, then 10 more)", got, bound+10)
	}
}
