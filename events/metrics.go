package events

import (
	"time"

	"github.com/berth-registry/berth/internal/metrics"
	"github.com/berth-registry/berth/store"
)

// Delivery counts go on metrics.Default, which the server's
// /metrics serves beside its own (as admin's maintenance counts do). The
// queue gauges are read from the store at each scrape by QueueCollector.

var (
	deliveries = metrics.Default.NewCounterVec(metrics.Opts{
		Name: "berth_webhook_deliveries_total",
		Help: "Webhook delivery attempts in this process, by webhook and result (ok or failed).",
	}, []string{"webhook", "result"})
	pullsDropped = metrics.Default.NewCounter(metrics.Opts{
		Name: "berth_webhook_pull_events_dropped_total",
		Help: "Pull events dropped because pulls came faster than the batch writer could record them.",
	})
)

// QueueCollector reports each webhook's queue from the store at scrape
// time: its length, the age of its oldest event and its dead letters.
type QueueCollector struct{ Store *store.Store }

// Collect implements metrics.Collector.
func (c QueueCollector) Collect(add func(metrics.Family)) {
	length := metrics.Family{Name: "berth_webhook_queue_length", Kind: metrics.KindGauge,
		Help: "Events in the outbox after the webhook's cursor (including events for other webhooks, which it skips)."}
	queues, err := c.Store.Queues()
	if err != nil {
		length.Err = err
		add(length)
		return
	}
	oldest := metrics.Family{Name: "berth_webhook_oldest_event_age_seconds", Kind: metrics.KindGauge,
		Help: "Age of the oldest event the webhook has not passed; 0 when its queue is empty."}
	dead := metrics.Family{Name: "berth_webhook_dead_letters", Kind: metrics.KindGauge,
		Help: "Events the webhook did not take within its max age, waiting for berth webhook replay."}
	// Queues come sorted by name, the order the series are written in.
	for _, q := range queues {
		age := 0.0
		if !q.Oldest.IsZero() {
			age = time.Since(q.Oldest).Seconds()
		}
		l := []metrics.Label{{Name: "webhook", Value: q.Name}}
		length.Samples = append(length.Samples, metrics.Sample{Labels: l, Value: float64(q.Pending)})
		oldest.Samples = append(oldest.Samples, metrics.Sample{Labels: l, Value: age})
		dead.Samples = append(dead.Samples, metrics.Sample{Labels: l, Value: float64(q.DeadLetters)})
	}
	add(length)
	add(oldest)
	add(dead)
}
