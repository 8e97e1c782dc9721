package events

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/berth-registry/berth/store"
)

// Delivery counts go on prometheus.DefaultRegisterer, which the server's
// /metrics serves beside its own (as admin's maintenance counts do). The
// queue gauges are read from the store at each scrape by QueueCollector.

var (
	deliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_webhook_deliveries_total",
		Help: "Webhook delivery attempts in this process, by webhook and result (ok or failed).",
	}, []string{"webhook", "result"})
	pullsDropped = promauto.NewCounter(prometheus.CounterOpts{
		Name: "berth_webhook_pull_events_dropped_total",
		Help: "Pull events dropped because pulls came faster than the batch writer could record them.",
	})
)

// QueueCollector reports each webhook's queue from the store at scrape
// time: its length, the age of its oldest event and its dead letters.
type QueueCollector struct{ Store *store.Store }

var (
	descQueueLength = prometheus.NewDesc("berth_webhook_queue_length", "Events in the outbox after the webhook's cursor (including events for other webhooks, which it skips).", []string{"webhook"}, nil)
	descOldestAge   = prometheus.NewDesc("berth_webhook_oldest_event_age_seconds", "Age of the oldest event the webhook has not passed; 0 when its queue is empty.", []string{"webhook"}, nil)
	descDead        = prometheus.NewDesc("berth_webhook_dead_letters", "Events the webhook did not take within its max age, waiting for berth webhook replay.", []string{"webhook"}, nil)
)

// Describe implements prometheus.Collector.
func (c QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueueLength
	ch <- descOldestAge
	ch <- descDead
}

// Collect implements prometheus.Collector.
func (c QueueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.Store.Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descQueueLength, err)
		return
	}
	for _, q := range queues {
		age := 0.0
		if !q.Oldest.IsZero() {
			age = time.Since(q.Oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descQueueLength, prometheus.GaugeValue, float64(q.Pending), q.Name)
		ch <- prometheus.MustNewConstMetric(descOldestAge, prometheus.GaugeValue, age, q.Name)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(q.DeadLetters), q.Name)
	}
}
