package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/notifications"
)

const hookSecret = "integration-secret"

// hookReceiver is a webhook endpoint on 127.0.0.1: while down it answers
// 503; while up it checks each delivery's signature independently, decodes
// it with distribution's notification types and keeps it.
type hookReceiver struct {
	*httptest.Server
	t        testing.TB
	down     atomic.Bool
	requests atomic.Int64
	mu       sync.Mutex
	got      []notifications.Event
	bad      []string
}

func newHookReceiver(t testing.TB) *hookReceiver {
	rc := &hookReceiver{t: t}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.requests.Add(1)
	if rc.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var env struct {
		Events []notifications.Event `json:"events"`
	}
	problem := ""
	switch {
	case !signatureValid(r.Header, body):
		problem = "bad signature"
	case r.Header.Get("Content-Type") != notifications.EventsMediaType:
		problem = "content type " + r.Header.Get("Content-Type")
	case json.Unmarshal(body, &env) != nil || len(env.Events) == 0:
		problem = "undecodable envelope: " + string(body)
	case envelopeIDs(env.Events) != r.Header.Get("Berth-Event-Id"):
		problem = "id header differs from the events' ids"
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if problem != "" {
		rc.bad = append(rc.bad, problem)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, env.Events...)
	w.WriteHeader(http.StatusOK)
}

// envelopeIDs is the documented Berth-Event-Id of a batch: its events'
// ids in order, joined by commas.
func envelopeIDs(evs []notifications.Event) string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return strings.Join(ids, ",")
}

// signatureValid checks Berth-Signature from the documented rule: "v1=" and
// the hex HMAC-SHA256 of id "." timestamp "." body.
func signatureValid(h http.Header, body []byte) bool {
	ts := h.Get("Berth-Timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(hookSecret))
	io.WriteString(mac, h.Get("Berth-Event-Id")+"."+ts+".")
	mac.Write(body)
	return hmac.Equal([]byte(h.Get("Berth-Signature")), []byte("v1="+hex.EncodeToString(mac.Sum(nil))))
}

func (rc *hookReceiver) events() []notifications.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		rc.t.Errorf("receiver refused deliveries: %q", rc.bad[:min(3, len(rc.bad))])
		rc.bad = nil
	}
	return append([]notifications.Event(nil), rc.got...)
}

// waitEvents polls until rc holds n events, for up to limit.
func (rc *hookReceiver) waitEvents(t testing.TB, n int, limit time.Duration) []notifications.Event {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		evs := rc.events()
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver holds %d events after %s, want %d", len(evs), limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addWebhook runs `berth webhook add` with the test secret on stdin.
func addWebhook(t testing.TB, data, name, url string, extra ...string) {
	t.Helper()
	args := append([]string{"webhook", "add", name, "--data", data, "--url", url, "--secret-stdin"}, extra...)
	if out, errOut, err := runBerth(t, context.Background(), strings.NewReader(hookSecret+"\n"), args...); err != nil {
		t.Fatalf("webhook add: %v\n%s%s", err, out, errOut)
	}
}

// manifestPusher pushes small images over HTTP: one config and one layer
// uploaded once, then a manifest per tag, each different (an annotation),
// so every push is a new manifest as in CI.
type manifestPusher struct {
	client *http.Client
	s      *server
	repo   string
	config string
	layer  string
}

func newManifestPusher(t testing.TB, s *server, repo string) *manifestPusher {
	t.Helper()
	p := &manifestPusher{client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, s: s, repo: repo}
	p.config = p.blob(t, []byte(`{"architecture":"amd64","os":"linux"}`))
	p.layer = p.blob(t, []byte("a layer that every image shares"))
	return p
}

func (p *manifestPusher) blob(t testing.TB, content []byte) string {
	t.Helper()
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
	resp, err := p.client.Post(p.s.URL("/v2/"+p.repo+"/blobs/uploads/"), "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %v %v", resp, err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, p.s.URL(loc+sep+"digest="+d), bytes.NewReader(content))
	resp, err = p.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish upload: %v %v", resp, err)
	}
	resp.Body.Close()
	return d
}

// push PUTs a manifest under tag and returns its digest.
func (p *manifestPusher) push(tag string) (string, error) {
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":37},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":31}],`+
		`"annotations":{"build":%q}}`, p.config, p.layer, tag)
	req, _ := http.NewRequest(http.MethodPut, p.s.URL("/v2/"+p.repo+"/manifests/"+tag), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	req.Header.Set("User-Agent", "webhook-test/1.0")
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("put manifest %s: %d %s", tag, resp.StatusCode, msg)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body))), nil
}

// checkInOrderOnce checks that evs are the pushes of tags, in order, each
// id once.
func checkInOrderOnce(t testing.TB, evs []notifications.Event, repo string, tags []string) {
	t.Helper()
	seen := map[string]bool{}
	var order []string
	for _, ev := range evs {
		if seen[ev.ID] {
			t.Errorf("event %s (%s) delivered twice", ev.ID, ev.Target.Tag)
			continue
		}
		seen[ev.ID] = true
		order = append(order, ev.Target.Tag)
		if ev.Action != "push" || ev.Target.Repository != repo {
			t.Errorf("event %s: %s %s, want a push of %s", ev.ID, ev.Action, ev.Target.Repository, repo)
		}
	}
	if len(order) != len(tags) {
		t.Fatalf("%d distinct events, want %d", len(order), len(tags))
	}
	for i := range tags {
		if order[i] != tags[i] {
			t.Fatalf("event %d is for tag %s, want %s: out of order", i, order[i], tags[i])
		}
	}
}

// TestWebhooks_KillWithEventsQueued pushes while the receiver is down,
// kills berth with -9, brings the receiver up and restarts berth: every
// event arrives, once, in order, with registry:2's request and actor data.
func TestWebhooks_KillWithEventsQueued(t *testing.T) {
	rc := newHookReceiver(t)
	rc.down.Store(true)
	data := t.TempDir()
	fast := []string{"--webhook-backoff", "20ms", "--webhook-backoff-max", "100ms"}
	s := startServer(t, data, fast...)
	addWebhook(t, data, "ci", rc.URL)

	out, _, err := runBerth(t, context.Background(), nil, "webhook", "list", "--data", data)
	if err != nil || !strings.Contains(out, rc.URL) || strings.Contains(out, hookSecret) {
		t.Fatalf("webhook list (%v) must show the URL and never the secret:\n%s", err, out)
	}

	p := newManifestPusher(t, s, "team/app")
	var tags, digests []string
	for i := range 30 {
		tag := fmt.Sprintf("build-%03d", i)
		d, err := p.push(tag)
		if err != nil {
			t.Fatal(err)
		}
		tags, digests = append(tags, tag), append(digests, d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rc.requests.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // until the sender has met the outage
	}
	status, _, err := runBerth(t, context.Background(), nil, "webhook", "status", "--data", data)
	if err != nil || !strings.Contains(status, "503") || !strings.Contains(status, " 30 ") {
		t.Fatalf("webhook status (%v) should show 30 pending and the 503:\n%s", err, status)
	}
	resp, err := http.Get(s.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`berth_webhook_queue_length{webhook="ci"} 30`, `berth_webhook_oldest_event_age_seconds{webhook="ci"} `, `berth_webhook_deliveries_total{result="failed",webhook="ci"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	s.kill()

	rc.down.Store(false)
	s = startServer(t, data, fast...)
	evs := rc.waitEvents(t, len(tags), 30*time.Second)
	checkInOrderOnce(t, evs, "team/app", tags)
	for i, ev := range evs {
		if string(ev.Target.Digest) != digests[i] || ev.Target.MediaType != "application/vnd.oci.image.manifest.v1+json" || ev.Target.Size == 0 {
			t.Errorf("event %d target %+v, want %s", i, ev.Target.Descriptor, digests[i])
		}
		if ev.Request.Method != http.MethodPut || ev.Request.UserAgent != "webhook-test/1.0" || ev.Request.Addr != "127.0.0.1" ||
			ev.Request.ID == "" || !strings.HasPrefix(ev.Target.URL, "http://") || ev.Source.InstanceID == "" {
			t.Errorf("event %d request %+v url %q source %+v: want registry:2's request record", i, ev.Request, ev.Target.URL, ev.Source)
		}
	}

	out, _, err = runBerth(t, context.Background(), nil, "webhook", "test", "ci", "--data", data)
	if err != nil || !strings.Contains(out, "took test event") {
		t.Fatalf("webhook test: %v\n%s", err, out)
	}
	_, errOut, err := runBerth(t, context.Background(), nil, "webhook", "del", "nope", "--data", data)
	if err == nil || !strings.Contains(errOut, "no webhook nope") {
		t.Fatalf("webhook del of an unknown name: %v %q", err, errOut)
	}
}

// outagePushes is how many pushes TestWebhooks_OutageThenRecovery makes:
// 10,000 (about 17 s on two cores), or BERTH_WEBHOOK_PUSHES.
func outagePushes(t testing.TB) int {
	if v := os.Getenv("BERTH_WEBHOOK_PUSHES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BERTH_WEBHOOK_PUSHES=%q", v)
		}
		return n
	}
	return 10000
}

// TestWebhooks_OutageThenRecovery pushes while the only endpoint is down,
// sampling the server's RSS, then brings it up: every event arrives once
// per id and in order, and the resident memory stays flat meanwhile.
func TestWebhooks_OutageThenRecovery(t *testing.T) {
	rc := newHookReceiver(t)
	rc.down.Store(true)
	data := t.TempDir()
	s := startServer(t, data, "--webhook-backoff", "20ms", "--webhook-backoff-max", "200ms")
	addWebhook(t, data, "ci", rc.URL)
	p := newManifestPusher(t, s, "ci/app")

	n := outagePushes(t)
	tags := make([]string, n)
	// RssAnon is the heap and stacks; VmRSS adds meta.db's mapped pages,
	// which grow with the data pushed whether or not an endpoint is down.
	var rss, anon []int64
	start := time.Now()
	for i := range n {
		tags[i] = fmt.Sprintf("b%05d", i)
		if _, err := p.push(tags[i]); err != nil {
			t.Fatal(err)
		}
		if i%(n/10) == n/10-1 {
			rss = append(rss, procStatusKiB(t, s, "VmRSS"))
			anon = append(anon, procStatusKiB(t, s, "RssAnon"))
		}
	}
	took := time.Since(start)
	t.Logf("%d pushes with the endpoint down in %s (%.0f/s); RSS by tenths (KiB): %v; RssAnon: %v", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), rss, anon)
	if rc.requests.Load() == 0 {
		t.Fatal("the sender never tried the endpoint during the outage")
	}
	// Flat: the last tenth's anonymous memory within 16 MiB of the first's.
	// A queue held in memory would grow with every event.
	if growth := anon[len(anon)-1] - anon[0]; growth > 16<<10 {
		t.Errorf("anonymous RSS grew by %d KiB during the outage: %v", growth, anon)
	}

	rc.down.Store(false)
	start = time.Now()
	evs := rc.waitEvents(t, n, 5*time.Minute)
	took = time.Since(start)
	t.Logf("%d events delivered after the outage in %s (%.0f/s); RSS after: %d KiB", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), procStatusKiB(t, s, "VmRSS"))
	checkInOrderOnce(t, evs, "ci/app", tags)
}

// TestWebhooks_PullEventsBatched turns pull events on for one endpoint and
// checks that manifest GETs reach it, with the pulled tag, while another
// endpoint that wants only pushes gets no pulls.
func TestWebhooks_PullEventsBatched(t *testing.T) {
	pulls, pushes := newHookReceiver(t), newHookReceiver(t)
	data := t.TempDir()
	s := startServer(t, data)
	addWebhook(t, data, "pulls", pulls.URL, "--events", "pull")
	addWebhook(t, data, "pushes", pushes.URL, "--events", "push", "--format", "distribution")
	p := newManifestPusher(t, s, "lib/base")
	if _, err := p.push("v1"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, s.URL("/v2/lib/base/manifests/v1"), nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := p.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("pull: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	evs := pulls.waitEvents(t, 5, 20*time.Second)
	for _, ev := range evs {
		if ev.Action != "pull" || ev.Target.Repository != "lib/base" || ev.Target.Tag != "v1" || ev.Request.Method != http.MethodGet {
			t.Errorf("pull event %+v", ev)
		}
	}
	if got := pushes.waitEvents(t, 1, 20*time.Second); len(got) != 1 || got[0].Action != "push" {
		t.Errorf("the push-only endpoint got %+v, want the one push", got)
	}
}
