package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// Options tune delivery. The zero value of each field means its default.
type Options struct {
	Logger *slog.Logger
	// Source names this registry in every event (registry:2's source).
	Source Source
	// MinBackoff and MaxBackoff bound the wait between attempts of one
	// event: it doubles from the first to the second. Defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// PageSize is how many events a sender reads at a time (default 100).
	PageSize int
	// BatchSize is how many events one registry:2 envelope carries at
	// most (default 64). CloudEvents endpoints get one event per request.
	BatchSize int
	// Linger is how long a registry:2 sender waits, once woken from idle by
	// a new event, for more to share the request (default 20ms). It is
	// what a quiet queue adds to a delivery's latency; a busy queue never
	// idles, so it pays nothing.
	Linger time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
}

// Run starts one sender per webhook of st and keeps the set in step with
// the webhooks as they are added, changed and deleted. It returns when ctx
// ends, after the senders stop.
func Run(ctx context.Context, st *store.Store, opts Options) {
	opts.defaults()
	type running struct {
		fingerprint string
		stop        context.CancelFunc
		done        chan struct{}
	}
	senders := map[string]running{}
	var wg sync.WaitGroup
	defer func() {
		for _, r := range senders {
			r.stop()
		}
		wg.Wait()
	}()
	seen := ^uint64(0)
	for {
		wake := st.OutboxChanged()
		if v := st.WebhooksVersion(); v != seen {
			hooks, err := st.Webhooks()
			if err != nil {
				opts.Logger.Error("webhook: read endpoints", "err", err)
				sleep(ctx, time.Second)
				continue
			}
			seen = v
			current := map[string]bool{}
			for _, w := range hooks {
				current[w.Name] = true
				fp := fingerprint(w)
				if r, ok := senders[w.Name]; ok && r.fingerprint == fp {
					continue
				} else if ok {
					// The old sender finishes before the new one starts, so
					// two never post the same queue at once.
					r.stop()
					<-r.done
				}
				sctx, stop := context.WithCancel(ctx)
				r := running{fp, stop, make(chan struct{})}
				senders[w.Name] = r
				s := &sender{st: st, hook: w, opts: &opts, client: NewClient(), log: opts.Logger}
				wg.Add(1)
				go func() { defer wg.Done(); defer close(r.done); s.run(sctx) }()
			}
			for name, r := range senders {
				if !current[name] {
					r.stop()
					delete(senders, name)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// fingerprint tells a changed endpoint from an unchanged one.
func fingerprint(w store.Webhook) string {
	b, _ := json.Marshal(w)
	return string(b)
}
