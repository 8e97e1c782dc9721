package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-registry/berth/store"
)

// sender delivers one endpoint's queue. It holds one page of events at a
// time, whatever the length of the queue on disk.
type sender struct {
	st     *store.Store
	hook   store.Webhook
	opts   *Options
	client *http.Client
	log    *slog.Logger

	// cursor is the last outbox position handled; the store learns it at
	// most once per ackInterval (and when the sender stops), so that a busy
	// endpoint costs about one commit a second, not one per event.
	cursor    uint64
	unacked   int // events delivered since the last Ack
	stored    uint64
	lastStore time.Time
}

// ackInterval is the longest a sender keeps its progress to itself: what a
// crash can make it deliver again.
const ackInterval = time.Second

// run delivers until ctx ends or the endpoint is deleted.
func (s *sender) run(ctx context.Context) {
	defer s.client.CloseIdleConnections()
	defer s.flush()
	for ctx.Err() == nil {
		wake := s.st.OutboxChanged()
		b, err := s.st.Pending(s.hook.Name, s.cursor, s.opts.PageSize)
		if errors.Is(err, store.ErrWebhookUnknown) {
			return
		}
		if err != nil {
			s.log.Error("webhook: read outbox", "webhook", s.hook.Name, "err", err)
			sleep(ctx, s.opts.MaxBackoff)
			continue
		}
		s.cursor = b.From
		if len(b.Events) > 0 && !s.deliverPage(ctx, b) {
			return
		}
		s.cursor = b.Through
		if len(b.Events) > 0 || b.Through > b.From {
			s.maybeFlush()
			continue
		}
		s.idle(ctx, wake)
	}
}

// idle waits for new events, then Linger more for a registry:2 endpoint;
// progress not yet stored is stored once it is ackInterval old.
func (s *sender) idle(ctx context.Context, wake <-chan struct{}) {
	var due <-chan time.Time
	if s.cursor > s.stored {
		t := time.NewTimer(ackInterval - time.Since(s.lastStore))
		defer t.Stop()
		due = t.C
	}
	select {
	case <-ctx.Done():
	case <-wake:
		// New events arrive one commit at a time; lingering lets those of
		// the next few milliseconds share one request instead of one each.
		if s.batchSize() > 1 {
			sleep(ctx, s.opts.Linger)
		}
	case <-due:
		s.flush()
	}
}

// deliverPage sends b's events in order, up to batchSize per request. It
// returns false when ctx ended.
func (s *sender) deliverPage(ctx context.Context, b store.Batch) bool {
	n := s.batchSize()
	for evs := b.Events; len(evs) > 0; {
		batch := evs[:min(n, len(evs))]
		evs = evs[len(batch):]
		switch s.deliver(ctx, batch) {
		case outcomeStopped:
			return false
		case outcomeDelivered:
			s.unacked += len(batch)
		}
		s.cursor = batch[len(batch)-1].Seq
		s.maybeFlush()
	}
	return true
}

// batchSize is how many events one request carries: Options.BatchSize for
// registry:2's envelope, which is a list; one for CloudEvents binary mode,
// whose body is a single event.
func (s *sender) batchSize() int {
	if s.hook.Format == store.FormatCloudEvents {
		return 1
	}
	return s.opts.BatchSize
}

func (s *sender) maybeFlush() {
	if time.Since(s.lastStore) >= ackInterval {
		s.flush()
	}
}

// flush stores the sender's position.
func (s *sender) flush() {
	s.lastStore = time.Now()
	if s.cursor <= s.stored {
		return
	}
	if err := s.st.Ack(s.hook.Name, s.cursor, s.unacked); err != nil {
		if !errors.Is(err, store.ErrWebhookUnknown) {
			s.log.Error("webhook: record progress", "webhook", s.hook.Name, "err", err)
		}
		return
	}
	deliveries.WithLabelValues(s.hook.Name, "ok").Add(float64(s.unacked))
	s.stored, s.unacked = s.cursor, 0
}

type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeBuried            // moved to the dead letters
	outcomeStopped           // ctx ended
)

// deliver posts evs, as one request, until the endpoint takes them, the
// max age of the oldest passes (then all of them are buried), or ctx ends.
// A failed request is retried whole, with the same ids and body. Waits
// double from MinBackoff up to MaxBackoff.
func (s *sender) deliver(ctx context.Context, evs []store.Event) outcome {
	wait := s.opts.MinBackoff
	for {
		err := Post(ctx, s.client, &s.hook, evs, s.opts.Source)
		if err == nil {
			return outcomeDelivered
		}
		if ctx.Err() != nil {
			return outcomeStopped
		}
		// Progress made before a failure is stored now: the outage may last.
		s.flush()
		deliveries.WithLabelValues(s.hook.Name, "failed").Inc()
		s.log.Warn("webhook: delivery failed", "webhook", s.hook.Name, "event", evs[0].ID, "events", len(evs), "err", err)
		if err := s.st.RecordFailure(s.hook.Name, err.Error()); err != nil && !errors.Is(err, store.ErrWebhookUnknown) {
			s.log.Error("webhook: record failure", "webhook", s.hook.Name, "err", err)
		}
		if age := time.Since(oldest(evs)); age > s.hook.MaxAge {
			reason := fmt.Sprintf("undelivered after %s: %v", age.Round(time.Second), err)
			if err := s.st.Bury(s.hook.Name, evs, reason, s.unacked); err != nil {
				s.log.Error("webhook: dead-letter", "webhook", s.hook.Name, "event", evs[0].ID, "err", err)
				if !sleep(ctx, wait) {
					return outcomeStopped
				}
				continue
			}
			deliveries.WithLabelValues(s.hook.Name, "ok").Add(float64(s.unacked))
			s.stored, s.unacked = evs[len(evs)-1].Seq, 0
			s.log.Warn("webhook: events moved to dead letters", "webhook", s.hook.Name, "event", evs[0].ID, "events", len(evs))
			return outcomeBuried
		}
		if !sleep(ctx, wait) {
			return outcomeStopped
		}
		wait = min(2*wait, s.opts.MaxBackoff)
	}
}

// oldest is the earliest time one of evs was queued: a batch's max age
// counts from it.
func oldest(evs []store.Event) time.Time {
	t := evs[0].Queued
	for _, ev := range evs[1:] {
		if ev.Queued.Before(t) {
			t = ev.Queued
		}
	}
	return t
}

// Post sends evs to w once, as one request: nil when the endpoint answered
// 2xx. A CloudEvents endpoint takes exactly one event per request. A redirect
// is an error, not followed: the endpoint's URL is what the admin
// configured, and following a Location could send signed events elsewhere.
// The attempt is bounded by w.Timeout, the response body read up to 64 KiB.
func Post(ctx context.Context, client *http.Client, w *store.Webhook, evs []store.Event, src Source) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := newRequest(ctx, w, evs, src, time.Now())
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("answered %s, redirect to %q not followed: configure the final URL", resp.Status, resp.Header.Get("Location"))
	default:
		return fmt.Errorf("answered %s", resp.Status)
	}
}

// NewClient returns an HTTP client for one endpoint: no redirects
// followed, no cookies, its own Transport so that its kept-alive
// connection is not evicted by other endpoints' (the default keeps two idle
// connections per host, and endpoints often share one host).
func NewClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// sleep waits d or until ctx ends; it reports whether the wait was whole.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
