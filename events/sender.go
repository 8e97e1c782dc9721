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
}

// ackInterval is the longest a sender goes without recording progress
// while it delivers: what a crash can make it send again.
const ackInterval = time.Second

// run delivers until ctx ends or the endpoint is deleted.
func (s *sender) run(ctx context.Context) {
	for ctx.Err() == nil {
		wake := s.st.OutboxChanged()
		b, err := s.st.Pending(s.hook.Name, s.opts.PageSize)
		if errors.Is(err, store.ErrWebhookUnknown) {
			return
		}
		if err != nil {
			s.log.Error("webhook: read outbox", "webhook", s.hook.Name, "err", err)
			sleep(ctx, s.opts.MaxBackoff)
			continue
		}
		if len(b.Events) == 0 {
			if b.Through > b.From {
				s.ack(b.Through, 0) // only events the endpoint does not want
				continue
			}
			select {
			case <-ctx.Done():
			case <-wake:
			}
			continue
		}
		s.deliverPage(ctx, b)
	}
}

// deliverPage sends b's events in order and moves the cursor: at least once
// a second, and past the whole page when it is through.
func (s *sender) deliverPage(ctx context.Context, b store.Batch) {
	delivered, lastAck := 0, time.Now()
	var done uint64 // the last event handled, delivered or buried
	for _, ev := range b.Events {
		switch s.deliver(ctx, ev) {
		case outcomeStopped:
			if delivered > 0 {
				s.ack(done, delivered)
			}
			return
		case outcomeBuried:
			if delivered > 0 {
				s.ack(done, delivered)
			}
			delivered, lastAck = 0, time.Now()
		case outcomeDelivered:
			delivered++
			if time.Since(lastAck) > ackInterval {
				s.ack(ev.Seq, delivered)
				delivered, lastAck = 0, time.Now()
			}
		}
		done = ev.Seq
	}
	s.ack(b.Through, delivered)
}

func (s *sender) ack(through uint64, delivered int) {
	if err := s.st.Ack(s.hook.Name, through, delivered); err != nil && !errors.Is(err, store.ErrWebhookUnknown) {
		s.log.Error("webhook: record progress", "webhook", s.hook.Name, "err", err)
	}
	deliveries.WithLabelValues(s.hook.Name, "ok").Add(float64(delivered))
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
		deliveries.WithLabelValues(s.hook.Name, "failed").Inc()
		s.log.Warn("webhook: delivery failed", "webhook", s.hook.Name, "event", ev.ID, "err", err)
		if err := s.st.RecordFailure(s.hook.Name, err.Error()); err != nil && !errors.Is(err, store.ErrWebhookUnknown) {
			s.log.Error("webhook: record failure", "webhook", s.hook.Name, "err", err)
		}
		if age := time.Since(ev.Queued); age > s.hook.MaxAge {
			reason := fmt.Sprintf("undelivered after %s: %v", age.Round(time.Second), err)
			if err := s.st.Bury(s.hook.Name, ev, reason); err != nil {
				s.log.Error("webhook: dead-letter", "webhook", s.hook.Name, "event", ev.ID, "err", err)
				sleep(ctx, wait)
				continue
			}
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
