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

// idle waits for new events; progress not yet stored is stored once it is
// ackInterval old.
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
	case <-due:
		s.flush()
	}
}

// deliverPage sends b's events in order. It returns false when ctx ended.
func (s *sender) deliverPage(ctx context.Context, b store.Batch) bool {
	for _, ev := range b.Events {
		switch s.deliver(ctx, ev) {
		case outcomeStopped:
			return false
		case outcomeDelivered:
			s.unacked++
		}
		s.cursor = ev.Seq
		s.maybeFlush()
	}
	return true
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

// deliver posts ev until the endpoint takes it, its max age passes (then
// it is buried), or ctx ends. Waits double from MinBackoff up to
// MaxBackoff.
func (s *sender) deliver(ctx context.Context, ev store.Event) outcome {
	wait := s.opts.MinBackoff
	for {
		err := Post(ctx, s.client, &s.hook, ev, s.opts.Source)
		if err == nil {
			return outcomeDelivered
		}
		if ctx.Err() != nil {
			return outcomeStopped
		}
		// Progress made before a failure is stored now: the outage may last.
		s.flush()
		deliveries.WithLabelValues(s.hook.Name, "failed").Inc()
		s.log.Warn("webhook: delivery failed", "webhook", s.hook.Name, "event", ev.ID, "err", err)
		if err := s.st.RecordFailure(s.hook.Name, err.Error()); err != nil && !errors.Is(err, store.ErrWebhookUnknown) {
			s.log.Error("webhook: record failure", "webhook", s.hook.Name, "err", err)
		}
		if age := time.Since(ev.Queued); age > s.hook.MaxAge {
			reason := fmt.Sprintf("undelivered after %s: %v", age.Round(time.Second), err)
			if err := s.st.Bury(s.hook.Name, ev, reason, s.unacked); err != nil {
				s.log.Error("webhook: dead-letter", "webhook", s.hook.Name, "event", ev.ID, "err", err)
				if !sleep(ctx, wait) {
					return outcomeStopped
				}
				continue
			}
			deliveries.WithLabelValues(s.hook.Name, "ok").Add(float64(s.unacked))
			s.stored, s.unacked = ev.Seq, 0
			s.log.Warn("webhook: event moved to dead letters", "webhook", s.hook.Name, "event", ev.ID)
			return outcomeBuried
		}
		if !sleep(ctx, wait) {
			return outcomeStopped
		}
		wait = min(2*wait, s.opts.MaxBackoff)
	}
}

// Post sends ev to w once: nil when the endpoint answered 2xx. A redirect
// is an error, not followed: the endpoint's URL is what the admin
// configured, and following a Location could send signed events elsewhere.
// The attempt is bounded by w.Timeout, the response body read up to 64 KiB.
func Post(ctx context.Context, client *http.Client, w *store.Webhook, ev store.Event, src Source) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := newRequest(ctx, w, ev, src, time.Now())
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

// NewClient returns the HTTP client senders use: no redirects followed, no
// cookies, connections reused.
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
