// Package events delivers the registry's events to webhook endpoints.
//
// The store writes each event into its outbox in the same bbolt transaction
// as the change it reports (store/outbox.go), so an event exists exactly
// when its change does, crash or not. This package reads that outbox: one
// sender per endpoint takes a page of the events the endpoint wants, posts
// them in order (up to 64 per registry:2 envelope, after a short linger
// that lets events committed one by one share a request; one per
// CloudEvents request), and moves the endpoint's cursor past them once they
// are acknowledged (a 2xx answer). A failed request is retried whole with
// exponential backoff up to a cap; a request whose oldest event keeps
// failing past the endpoint's max age moves its events to the dead-letter
// list (`berth webhook status`
// shows it, `berth webhook replay` queues it again). Delivery is at least
// once: a crash between a delivery and the cursor's move repeats it, with
// the same event id, for the receiver to de-duplicate.
//
// Memory does not grow with an outage: a sender holds one page, however
// long the queue on disk. Pushes do not wait for deliveries: they only add
// a record to a transaction they commit anyway.
//
// Every request is signed (signature.go) and carries either the registry:2
// notification envelope or a CloudEvents binary-mode event (format.go).
// Pull events, when an endpoint wants them, are collected in memory and
// written in batches (pulls.go), so a pull costs no disk write.
//
// events imports store, never server: serve wires the two together.
package events
