package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkPushWebhooks measures manifest pushes with no webhook, one and
// five. "up": each endpoint takes every event while the pushes run, so the
// numbers include the senders' HTTP work (and the receiver's, in this
// process) on the same cores. "down": every endpoint answers 503 and waits
// out a long backoff, so what is left is the write path alone: the outbox
// record in the push's transaction. Sequential pushes (one client) and 32
// at once.
func BenchmarkPushWebhooks(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(up.Close)
	var downHits atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	b.Cleanup(down.Close)
	for _, tc := range []struct {
		endpoints int
		url       string
		state     string
	}{{0, "", "none"}, {1, up.URL, "up"}, {5, up.URL, "up"}, {1, down.URL, "down"}, {5, down.URL, "down"}} {
		for _, conc := range []string{"serial", "concurrent"} {
			b.Run(fmt.Sprintf("endpoints=%d/%s/%s", tc.endpoints, tc.state, conc), func(b *testing.B) {
				data := b.TempDir()
				s := launchServer(b, data, "--auth", "none", "--webhook-backoff", "1h")
				for i := range tc.endpoints {
					addWebhook(b, data, fmt.Sprintf("hook%d", i), tc.url)
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
