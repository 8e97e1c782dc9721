package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

const testSecret = "s3cret-for-tests"

// delivery is one request a receiver got.
type delivery struct {
	ID       string
	Header   http.Header
	Body     []byte
	Accepted bool
}

// receiver is an httptest server on 127.0.0.1 that records what it gets.
// Its answer to the n-th request (from 1) is decided by answer, which may
// also hang or close the connection.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	n      int
	got    []delivery
	answer func(n int, w http.ResponseWriter, r *http.Request) bool // true: accepted
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) bool) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		ok := rc.answer == nil || rc.answer(n, w, r)
		if ok {
			w.WriteHeader(http.StatusAccepted)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{ID: r.Header.Get(events.HeaderID), Header: r.Header.Clone(), Body: body, Accepted: ok})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

// failFirst is an answer that refuses the first n requests with 503 and
// accepts the rest.
func failFirst(n int) func(int, http.ResponseWriter, *http.Request) bool {
	return func(i int, w http.ResponseWriter, _ *http.Request) bool {
		if i <= n {
			w.WriteHeader(http.StatusServiceUnavailable)
			return false
		}
		return true
	}
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// accepted returns the deliveries rc answered 2xx, in order.
func (rc *receiver) accepted() []delivery {
	var out []delivery
	for _, d := range rc.deliveries() {
		if d.Accepted {
			out = append(out, d)
		}
	}
	return out
}

// requests is how many requests rc has seen.
func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// verify checks a delivery's signature the way a receiver would, written
// here from the documented rule rather than with events.Sign: hex
// HMAC-SHA256 keyed with the secret over id "." timestamp "." body.
func verify(t *testing.T, d delivery, secret string) {
	t.Helper()
	ts := d.Header.Get("Berth-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Fatalf("delivery %s: timestamp %q is not a recent unix time", d.ID, ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, d.Header.Get("Berth-Event-Id")+"."+ts+".")
	mac.Write(d.Body)
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(d.Header.Get("Berth-Signature")), []byte(want)) {
		t.Fatalf("delivery %s: signature %q does not verify", d.ID, d.Header.Get("Berth-Signature"))
	}
}

// addHook adds a webhook to url with short limits for tests.
func addHook(t *testing.T, st *store.Store, name, url string, mod func(*store.Webhook)) {
	t.Helper()
	w := store.Webhook{
		Name: name, URL: url, Actions: []string{store.ActionPush, store.ActionDelete}, Format: store.FormatDistribution,
		Secret: []byte(testSecret), Timeout: 2 * time.Second, MaxAge: time.Hour, Created: time.Now(),
	}
	if mod != nil {
		mod(&w)
	}
	if err := st.AddWebhook(w); err != nil {
		t.Fatal(err)
	}
}

// runSenders runs events.Run with fast backoff until the test ends, one
// event per registry:2 request, so that tests of per-event retries, order
// and dead letters see each event on its own.
func runSenders(t *testing.T, st *store.Store) { runSendersBatched(t, st, 1) }

// runSendersBatched is runSenders with up to batch events per request.
func runSendersBatched(t *testing.T, st *store.Store, batch int) {
	runSendersWith(t, st, events.Options{PageSize: max(7, 4*batch), BatchSize: batch})
}

// runSendersWith runs events.Run with opts and fast backoff until the test
// ends.
func runSendersWith(t *testing.T, st *store.Store, opts events.Options) {
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 80*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		events.Run(ctx, st, opts)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond every 10ms for up to 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// distinctIDs returns the distinct event ids of ds in order of first
// appearance, and how often each appears.
func distinctIDs(ds []delivery) (ids []string, count map[string]int) {
	count = map[string]int{}
	for _, d := range ds {
		if count[d.ID] == 0 {
			ids = append(ids, d.ID)
		}
		count[d.ID]++
	}
	return ids, count
}

func openStore(t *testing.T) *store.Store { return storetest.Open(t, t.TempDir()) }

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
