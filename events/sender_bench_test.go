package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// BenchmarkSender measures one endpoint's sender in process, from a queue
// of b.N push events to the last one taken by a receiver on 127.0.0.1, one
// event per request and in registry:2 batches. Run it with -cpuprofile to
// see where a delivery's CPU goes; the receiver only counts ids.
func BenchmarkSender(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var got atomic.Int64
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Add(int64(strings.Count(r.Header.Get(events.HeaderID), ",") + 1))
				w.WriteHeader(http.StatusNoContent)
			}))
			b.Cleanup(rc.Close)
			st := storetest.Open(b, b.TempDir())
			if err := st.AddWebhook(store.Webhook{
				Name: "bench", URL: rc.URL, Actions: []string{store.ActionPush}, Format: store.FormatDistribution,
				Secret: []byte(testSecret), Timeout: 5 * time.Second, MaxAge: time.Hour, Created: time.Now(),
			}); err != nil {
				b.Fatal(err)
			}
			evs := make([]store.Event, b.N)
			for i := range evs {
				evs[i] = store.Event{
					Time: time.Now(), Action: store.ActionPush, Repo: "bench/app", Tag: fmt.Sprintf("t%07d", i),
					Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", MediaType: store.MediaTypeOCIManifest, Size: 528,
					Origin: store.Origin{Actor: "alice", RequestID: "req", Addr: "10.0.0.7", Host: "registry.example", Method: "PUT", UserAgent: "bench", BaseURL: "https://registry.example"},
				}
			}
			if err := st.AppendEvents(evs); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			go func() {
				defer close(done)
				events.Run(ctx, st, events.Options{Logger: slog.New(slog.DiscardHandler), BatchSize: batch})
			}()
			deadline := time.Now().Add(5 * time.Minute)
			for got.Load() < int64(b.N) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
			if n := got.Load(); n < int64(b.N) {
				b.Fatalf("receiver got %d of %d events", n, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
