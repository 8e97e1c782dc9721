package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// hookState is the value of hookstate/<name>: how far an endpoint's sender
// has come. Everything up to Cursor is delivered, dead-lettered or not
// wanted by the endpoint.
type hookState struct {
	Cursor      uint64 `json:"cursor"`
	Delivered   uint64 `json:"delivered"`
	LastSuccess int64  `json:"lastSuccess,omitempty"` // unix nanoseconds
	LastAttempt int64  `json:"lastAttempt,omitempty"`
	LastError   string `json:"lastError,omitempty"`
	Failures    int    `json:"failures,omitempty"` // attempts failed in a row on the head event
}

func decodeHookState(v []byte) (hookState, error) {
	var st hookState
	err := decode(v, &st)
	return st, err
}

func putHookState(tx *bolt.Tx, name string, st hookState) error {
	v, err := encode(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketHookState).Put([]byte(name), v)
}

func getHookState(tx *bolt.Tx, name string) (hookState, error) {
	v := tx.Bucket(bucketHookState).Get([]byte(name))
	if v == nil {
		return hookState{}, ErrWebhookUnknown
	}
	return decodeHookState(v)
}

// Batch is a page of an endpoint's queue: the events it wants, in order,
// and Through, the last outbox position the page covered (events between
// that it does not want count as handled once the page is acknowledged).
type Batch struct {
	Events  []Event
	From    uint64 // the cursor the page started after
	Through uint64
}

// scanLimit bounds the outbox entries one Pending call reads, wanted or
// not, so a page costs the same whatever the backlog.
const scanLimit = 4096

// Pending returns up to n events that the endpoint name wants, after its
// stored cursor or after position after, whichever is further: a sender
// keeps its own position and stores it now and then (Ack). An empty Batch
// with Through beyond From means only unwanted events were passed.
func (s *Store) Pending(name string, after uint64, n int) (Batch, error) {
	var b Batch
	err := s.db.View(func(tx *bolt.Tx) error {
		hv := tx.Bucket(bucketWebhooks).Get([]byte(name))
		if hv == nil {
			return ErrWebhookUnknown
		}
		var w Webhook
		if err := decode(hv, &w); err != nil {
			return err
		}
		if err := w.compile(); err != nil {
			return err
		}
		st, err := getHookState(tx, name)
		if err != nil {
			return err
		}
		from := max(after, st.Cursor)
		b.From, b.Through = from, from
		c := tx.Bucket(bucketOutbox).Cursor()
		scanned := 0
		for k, v := c.Seek(seqKey(from + 1)); k != nil && len(b.Events) < n && scanned < scanLimit; k, v = c.Next() {
			scanned++
			var ev Event
			if err := decode(v, &ev); err != nil {
				return fmt.Errorf("outbox event %x: %w", k, err)
			}
			ev.Seq = seqOf(k)
			b.Through = ev.Seq
			if ev.Only == name || ev.Only == "" && w.Wants(ev.Action, ev.Repo) {
				b.Events = append(b.Events, ev)
			}
		}
		return nil
	})
	return b, err
}

func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// Ack records that endpoint name has everything up to through, delivered
// is how many of those it received now, and prunes what no endpoint still
// needs. Acknowledging less than the cursor is a no-op.
func (s *Store) Ack(name string, through uint64, delivered int) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := getHookState(tx, name)
		if err != nil || through <= st.Cursor {
			return err
		}
		st.Cursor = through
		st.Delivered += uint64(delivered)
		if delivered > 0 {
			st.LastSuccess = s.now().UnixNano()
			st.Failures, st.LastError = 0, ""
		}
		if err := putHookState(tx, name, st); err != nil {
			return err
		}
		return pruneOutbox(tx)
	})
}

// RecordFailure notes a failed attempt on endpoint name, for status.
func (s *Store) RecordFailure(name, reason string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := getHookState(tx, name)
		if err != nil {
			return err
		}
		st.LastAttempt, st.LastError = s.now().UnixNano(), reason
		st.Failures++
		return putHookState(tx, name, st)
	})
}

// DeadLetter is an event an endpoint never took within its max age.
type DeadLetter struct {
	Event  Event     `json:"event"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Bury moves evs, the head of endpoint name's queue in order, to its dead
// letters and moves the cursor past the last, in one transaction;
// delivered counts the events before them that the sender delivered and
// has not acknowledged.
func (s *Store) Bury(name string, evs []Event, reason string, delivered int) error {
	if len(evs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := getHookState(tx, name)
		if err != nil {
			return err
		}
		last := evs[len(evs)-1].Seq
		if last <= st.Cursor {
			return nil // already moved past (a concurrent replay or delete)
		}
		for _, ev := range evs {
			if ev.Seq <= st.Cursor {
				continue
			}
			v, err := encode(DeadLetter{Event: ev, Reason: reason, At: s.now()})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketDeadLetters).Put(append(prefix(name), seqKey(ev.Seq)...), v); err != nil {
				return err
			}
		}
		st.Cursor, st.Failures, st.LastError = last, 0, reason
		st.Delivered += uint64(delivered)
		if err := putHookState(tx, name, st); err != nil {
			return err
		}
		return pruneOutbox(tx)
	})
}

// DeadLetters returns endpoint name's dead letters, oldest first.
func (s *Store) DeadLetters(name string) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketWebhooks).Get([]byte(name)) == nil {
			return ErrWebhookUnknown
		}
		p := prefix(name)
		c := tx.Bucket(bucketDeadLetters).Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			var d DeadLetter
			if err := decode(v, &d); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Replay moves endpoint name's dead letters (those with the given ids, or
// all when ids is empty) back to the end of the outbox, for that endpoint
// only, keeping their ids. It returns how many it moved.
func (s *Store) Replay(name string, ids []string) (int, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		if tx.Bucket(bucketWebhooks).Get([]byte(name)) == nil {
			return ErrWebhookUnknown
		}
		dead, out := tx.Bucket(bucketDeadLetters), tx.Bucket(bucketOutbox)
		type move struct {
			k []byte
			v []byte
		}
		var moves []move
		p := prefix(name)
		c := dead.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			var d DeadLetter
			if err := decode(v, &d); err != nil {
				return fmt.Errorf("dead letter %x: %w", k, err)
			}
			if len(want) > 0 && !want[d.Event.ID] {
				continue
			}
			delete(want, d.Event.ID)
			d.Event.Only, d.Event.Queued = name, s.now()
			ev, err := encode(d.Event)
			if err != nil {
				return err
			}
			moves = append(moves, move{append([]byte(nil), k...), ev})
		}
		if len(want) > 0 && len(ids) > 0 {
			for id := range want {
				return fmt.Errorf("%s has no dead letter %s", name, id)
			}
		}
		for _, m := range moves {
			seq, err := out.NextSequence()
			if err != nil {
				return err
			}
			if err := out.Put(seqKey(seq), m.v); err != nil {
				return err
			}
			if err := dead.Delete(m.k); err != nil {
				return err
			}
		}
		n = len(moves)
		tx.OnCommit(s.wakeSenders)
		return nil
	})
	return n, err
}

// QueueStatus is an endpoint's delivery state, for status and metrics.
type QueueStatus struct {
	Name        string
	Pending     uint64    // outbox entries after the cursor, including events for other endpoints
	Oldest      time.Time // time of the first of them; zero when none
	DeadLetters int
	Delivered   uint64
	LastSuccess time.Time
	LastAttempt time.Time
	LastError   string
	Failures    int
}

// Queues returns the delivery state of every endpoint, by name. It reads
// two keys per endpoint and counts dead letters, never the whole queue.
func (s *Store) Queues() ([]QueueStatus, error) {
	var out []QueueStatus
	err := s.db.View(func(tx *bolt.Tx) error {
		seq := tx.Bucket(bucketOutbox).Sequence()
		return tx.Bucket(bucketHookState).ForEach(func(k, v []byte) error {
			st, err := decodeHookState(v)
			if err != nil {
				return fmt.Errorf("webhook state %s: %w", k, err)
			}
			q := QueueStatus{
				Name: string(k), Delivered: st.Delivered, LastError: st.LastError, Failures: st.Failures,
				LastSuccess: unixTime(st.LastSuccess), LastAttempt: unixTime(st.LastAttempt),
			}
			if seq > st.Cursor {
				q.Pending = seq - st.Cursor
				// Pruning never passes a cursor, so every entry after it is
				// still there and the first one dates the head.
				if k, v := tx.Bucket(bucketOutbox).Cursor().Seek(seqKey(st.Cursor + 1)); k != nil {
					var ev Event
					if err := decode(v, &ev); err == nil {
						q.Oldest = ev.Time
					}
				}
			}
			p := prefix(string(k))
			c := tx.Bucket(bucketDeadLetters).Cursor()
			for dk, _ := c.Seek(p); dk != nil && bytes.HasPrefix(dk, p); dk, _ = c.Next() {
				q.DeadLetters++
			}
			out = append(out, q)
			return nil
		})
	})
	return out, err
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
