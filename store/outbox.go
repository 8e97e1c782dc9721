package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one change (or pull) as the outbox keeps it until every
// endpoint that wants it has it. ID is fixed when the event is recorded and
// never changes, so receivers de-duplicate by it across retries, restarts
// and replays.
type Event struct {
	Seq       uint64    `json:"-"` // position in the outbox; a replay gets a new one
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Action    string    `json:"action"` // ActionPush, ActionDelete, ActionPull
	Repo      string    `json:"repo"`
	Digest    Digest    `json:"digest,omitempty"`
	MediaType string    `json:"mediaType,omitempty"`
	Size      int64     `json:"size,omitempty"`
	Tag       string    `json:"tag,omitempty"`
	Origin    Origin    `json:"origin"`
	// Queued is when the event entered the outbox: its time, or the time of
	// a replay. An endpoint's max age counts from it.
	Queued time.Time `json:"queued"`
	// Only, when set, limits the event to one endpoint: a replayed dead letter.
	Only string `json:"only,omitempty"`
}

// Origin is who made a change and through which request, as registry:2's
// events carry it. The zero Origin stands for a change made outside HTTP
// (an admin command).
type Origin struct {
	Actor     string `json:"actor,omitempty"`
	RequestID string `json:"requestID,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	// BaseURL is scheme://host as the client saw the registry, for the
	// event's target URL.
	BaseURL string `json:"baseURL,omitempty"`
}

// NewEventID returns a random event id (32 hex digits).
func NewEventID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux (getrandom)
	}
	return hex.EncodeToString(b[:])
}

// pendingEvents are events prepared before a write transaction: built and
// encoded only when some endpoint wants them, so a registry without
// webhooks pays nothing, and encoded outside the transaction.
type pendingEvents struct {
	hooks  *[]Webhook // the endpoint list they were filtered against
	values [][]byte
}

// prepareEvents keeps the events of evs that some endpoint wants and
// encodes them.
func (s *Store) prepareEvents(evs []Event) (pendingEvents, error) {
	hooks := s.hooks.Load()
	p := pendingEvents{hooks: hooks}
	if hooks == nil || len(*hooks) == 0 {
		return p, nil
	}
	for _, ev := range evs {
		if !anyWants(*hooks, ev) {
			continue
		}
		if ev.ID == "" {
			ev.ID = NewEventID()
		}
		if ev.Queued.IsZero() {
			ev.Queued = s.now()
		}
		v, err := encode(ev)
		if err != nil {
			return p, err
		}
		p.values = append(p.values, v)
	}
	return p, nil
}

func anyWants(hooks []Webhook, ev Event) bool {
	for i := range hooks {
		if hooks[i].Wants(ev.Action, ev.Repo) {
			return true
		}
	}
	return false
}

// recordEvents appends prepared events to the outbox inside the write
// transaction of the change they report, so the change and its events
// commit together or not at all. In the rare case that the endpoints
// changed since prepareEvents (a webhook added meanwhile), it prepares
// them again here against the current list.
func (s *Store) recordEvents(tx *bolt.Tx, p pendingEvents, evs func() []Event) error {
	if s.hooks.Load() != p.hooks {
		var err error
		if p, err = s.prepareEvents(evs()); err != nil {
			return err
		}
	}
	if len(p.values) == 0 {
		return nil
	}
	out := tx.Bucket(bucketOutbox)
	for _, v := range p.values {
		seq, err := out.NextSequence()
		if err != nil {
			return err
		}
		if err := out.Put(seqKey(seq), v); err != nil {
			return err
		}
	}
	tx.OnCommit(s.wakeSenders)
	return nil
}

// AppendEvents records evs (pull events, collected in memory and written
// in batches) in one write transaction. Events no endpoint wants are
// dropped.
func (s *Store) AppendEvents(evs []Event) error {
	p, err := s.prepareEvents(evs)
	if err != nil || len(p.values) == 0 {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return s.recordEvents(tx, p, func() []Event { return evs })
	})
}

// WantsAny reports whether some endpoint subscribes to action on any
// repository, so callers can skip collecting events nobody takes.
func (s *Store) WantsAny(action string) bool {
	hooks := s.hooks.Load()
	if hooks == nil {
		return false
	}
	for _, w := range *hooks {
		for _, a := range w.Actions {
			if a == action {
				return true
			}
		}
	}
	return false
}

// OutboxChanged returns a channel that is closed at the next commit that
// adds events or changes endpoints: senders wait on it instead of polling.
func (s *Store) OutboxChanged() <-chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

func (s *Store) wakeSenders() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

// manifestEvents are the events of a manifest put: one per tag, or one
// without a tag for a put by digest only.
func manifestEvents(o Origin, repo string, m StoredManifest, tags []string) []Event {
	base := Event{Time: m.Created, Action: ActionPush, Repo: repo, Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Origin: o}
	if len(tags) == 0 {
		return []Event{base}
	}
	out := make([]Event, len(tags))
	for i, t := range tags {
		out[i] = base
		out[i].Tag = t
	}
	return out
}

// pruneLimit bounds the outbox keys one transaction deletes, so that
// catching up after a long outage never makes one huge transaction.
const pruneLimit = 1000

// pruneOutbox deletes the events every endpoint has passed: all of them
// when there is no endpoint.
func pruneOutbox(tx *bolt.Tx) error {
	low := tx.Bucket(bucketOutbox).Sequence()
	err := tx.Bucket(bucketHookState).ForEach(func(k, v []byte) error {
		st, err := decodeHookState(v)
		if err != nil {
			return fmt.Errorf("webhook state %s: %w", k, err)
		}
		low = min(low, st.Cursor)
		return nil
	})
	if err != nil {
		return err
	}
	out := tx.Bucket(bucketOutbox)
	var stale [][]byte
	c := out.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, seqKey(low)) <= 0 && len(stale) < pruneLimit; k, _ = c.Next() {
		stale = append(stale, append([]byte(nil), k...))
	}
	for _, k := range stale {
		if err := out.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
