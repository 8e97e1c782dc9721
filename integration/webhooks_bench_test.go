package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkPushWebhooks measures manifest pushes with no webhook, one and
// five, each endpoint up and taking every event while the pushes run: the
// cost of recording events in the push's transaction and of the senders
// sharing the database. Sequential pushes (one client) and 32 at once.
func BenchmarkPushWebhooks(b *testing.B) {
	var took atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		took.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rc.Close)
	for _, endpoints := range []int{0, 1, 5} {
		for _, conc := range []string{"serial", "concurrent"} {
			b.Run(fmt.Sprintf("endpoints=%d/%s", endpoints, conc), func(b *testing.B) {
				data := b.TempDir()
				s := launchServer(b, data, "--auth", "none")
				for i := range endpoints {
					addWebhook(b, data, fmt.Sprintf("hook%d", i), rc.URL)
				}
				p := newManifestPusher(b, s, "bench/app")
				push := func(i int) error {
					_, err := p.push(fmt.Sprintf("t%07d", i))
					return err
				}
				if conc == "concurrent" {
					runConcurrently(b, s, "push/s", push)
					return
				}
				b.ResetTimer()
				for i := range b.N {
					if err := push(i); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "push/s")
			})
		}
	}
}
