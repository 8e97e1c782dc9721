package events_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/notifications"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/store"
)

// batch decodes a registry:2 body the way a registry:2 consumer does, into
// distribution's notifications.Envelope, then each of its events into
// notifications.Event (the envelope's list is of an interface type).
func batch(t *testing.T, d delivery) []notifications.Event {
	t.Helper()
	if ct := d.Header.Get("Content-Type"); ct != notifications.EventsMediaType {
		t.Fatalf("delivery %s: Content-Type %q, want %q", d.ID, ct, notifications.EventsMediaType)
	}
	var env notifications.Envelope
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatalf("delivery %s: decode notifications.Envelope: %v\n%s", d.ID, err, d.Body)
	}
	out := make([]notifications.Event, len(env.Events))
	for i, raw := range env.Events {
		b, err := json.Marshal(raw)
		if err == nil {
			err = json.Unmarshal(b, &out[i])
		}
		if err != nil {
			t.Fatalf("delivery %s: event %d: %v", d.ID, i, err)
		}
	}
	return out
}

// ids is the Berth-Event-Id a batch of evs must carry: their ids, in order,
// joined by commas.
func ids(evs []notifications.Event) string {
	s := make([]string, len(evs))
	for i, ev := range evs {
		s[i] = ev.ID
	}
	return strings.Join(s, ",")
}

func TestDelivery_BatchesInOrderWithSignedIDs(t *testing.T) {
	rc := newReceiver(t, nil)
	st := openStore(t)
	addHook(t, st, "ci", rc.URL, nil)
	tags := tagsN(40)
	digests := pushTags(t, st, "team/app", tags...)
	runSendersBatched(t, st, 10)

	waitFor(t, "the cursor to pass every event", func() bool {
		q, _ := st.Queues()
		return len(q) == 1 && q[0].Pending == 0 && q[0].Delivered == uint64(len(tags))
	})
	acc := rc.accepted()
	if len(acc) != 4 {
		t.Fatalf("%d requests for 40 queued events in batches of 10, want 4", len(acc))
	}
	var got []notifications.Event
	for _, d := range acc {
		verify(t, d, testSecret) // the signature covers the whole batch's body
		evs := batch(t, d)
		if len(evs) != 10 {
			t.Errorf("request carried %d events, want 10", len(evs))
		}
		if d.ID != ids(evs) {
			t.Errorf("Berth-Event-Id %q, want the batch's ids %q", d.ID, ids(evs))
		}
		got = append(got, evs...)
	}
	seen := map[string]bool{}
	for i, ev := range got {
		if seen[ev.ID] || len(ev.ID) != 32 {
			t.Errorf("event %d: id %q repeated or malformed", i, ev.ID)
		}
		seen[ev.ID] = true
		if i >= len(tags) || ev.Action != "push" || ev.Target.Tag != tags[i] || string(ev.Target.Digest) != string(digests[i]) {
			t.Errorf("event %d: %s %s %s, want push of %s %s, in push order", i, ev.Action, ev.Target.Tag, ev.Target.Digest, tags[min(i, len(tags)-1)], digests[min(i, len(tags)-1)])
		}
	}
}

func TestDelivery_FailedBatchRetriedWhole(t *testing.T) {
	const failures = 2
	rc := newReceiver(t, failFirst(failures))
	st := openStore(t)
	addHook(t, st, "ci", rc.URL, nil)
	tags := tagsN(25)
	pushTags(t, st, "app", tags...)
	runSendersBatched(t, st, 10)

	waitFor(t, "25 events accepted", func() bool {
		n := 0
		for _, d := range rc.accepted() {
			n += len(batch(t, d))
		}
		return n >= len(tags)
	})
	all := rc.deliveries()
	for i := 1; i <= failures; i++ {
		if all[i].ID != all[0].ID || !bytes.Equal(all[i].Body, all[0].Body) {
			t.Fatalf("attempt %d carried %q, want the failed batch %q again, byte for byte", i+1, all[i].ID, all[0].ID)
		}
	}
	if n := len(batch(t, all[0])); n != 10 {
		t.Errorf("the retried batch held %d events, want 10", n)
	}
	var got []string
	for _, d := range rc.accepted() {
		verify(t, d, testSecret)
		for _, ev := range batch(t, d) {
			got = append(got, ev.Target.Tag)
		}
	}
	if strings.Join(got, " ") != strings.Join(tags, " ") {
		t.Errorf("accepted tags %v, want each once in push order %v", got, tags)
	}
}

func TestDelivery_BatchDeadLetteredByOldestAge(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return false
	})
	st := openStore(t)
	addHook(t, st, "down", rc.URL, func(w *store.Webhook) { w.MaxAge = 300 * time.Millisecond })
	tags := tagsN(5)
	pushTags(t, st, "app", tags...)
	runSendersBatched(t, st, 10)

	waitFor(t, "the batch dead-lettered", func() bool {
		d, _ := st.DeadLetters("down")
		return len(d) == len(tags)
	})
	for _, d := range rc.deliveries() {
		if n := len(batch(t, d)); n != len(tags) {
			t.Fatalf("an attempt carried %d events, want the whole batch of %d", n, len(tags))
		}
	}
	dead, _ := st.DeadLetters("down")
	for i, d := range dead {
		if d.Event.Tag != tags[i] || !strings.Contains(d.Reason, "503") {
			t.Errorf("dead letter %d: %s (%s), want %s in order with the failure", i, d.Event.Tag, d.Reason, tags[i])
		}
	}
	if q, _ := st.Queues(); q[0].Pending != 0 || q[0].DeadLetters != len(tags) {
		t.Errorf("queue %+v: want %d dead letters and nothing pending", q[0], len(tags))
	}
}

func TestDelivery_LingerGroupsEventsCommittedOneByOne(t *testing.T) {
	rc := newReceiver(t, nil)
	st := openStore(t)
	addHook(t, st, "ci", rc.URL, nil)
	// A long linger, so that the test does not depend on how fast this
	// machine pushes: the pushes below take far less than 5s.
	runSendersWith(t, st, events.Options{Linger: 5 * time.Second})
	tags := tagsN(5)
	pushTags(t, st, "app", tags...)

	waitFor(t, "5 events accepted", func() bool {
		n := 0
		for _, d := range rc.accepted() {
			n += len(batch(t, d))
		}
		return n == len(tags)
	})
	acc := rc.accepted()
	if len(acc) >= len(tags) {
		t.Errorf("%d requests for %d events committed within the linger, want fewer", len(acc), len(tags))
	}
	var got []string
	for _, d := range acc {
		verify(t, d, testSecret)
		for _, ev := range batch(t, d) {
			got = append(got, ev.Target.Tag)
		}
	}
	if strings.Join(got, " ") != strings.Join(tags, " ") {
		t.Errorf("accepted tags %v, want %v in order", got, tags)
	}
}
