package store

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Webhook is an endpoint that events are delivered to (webhooks/<name>).
// Secret signs every delivery; it is stored here and shown nowhere else.
type Webhook struct {
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Actions []string          `json:"actions"`         // which of ActionPush, ActionDelete, ActionPull
	Repos   string            `json:"repos,omitempty"` // comma-separated globs; empty: every repository
	Format  string            `json:"format"`          // FormatDistribution or FormatCloudEvents
	Secret  []byte            `json:"secret"`
	Headers map[string]string `json:"headers,omitempty"`
	Timeout time.Duration     `json:"timeout"` // per delivery attempt
	MaxAge  time.Duration     `json:"maxAge"`  // an event older than this that still fails is dead-lettered
	Created time.Time         `json:"created"`

	repos *regexp.Regexp // compiled Repos; nil matches everything
}

// The actions an event reports, and the formats a webhook delivers in.
const (
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionPull   = "pull"

	FormatDistribution = "distribution"
	FormatCloudEvents  = "cloudevents"
)

// Errors of the webhook operations.
var (
	ErrWebhookUnknown = errors.New("no such webhook")
	ErrWebhookExists  = errors.New("a webhook of that name exists")
	ErrWebhookInvalid = errors.New("invalid webhook")
)

// Validate checks w and compiles its repository patterns. It returns an
// error wrapping ErrWebhookInvalid that says which field is wrong.
func (w *Webhook) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrWebhookInvalid, fmt.Sprintf(format, a...))
	}
	if !objectName().MatchString(w.Name) {
		return bad("name %q: use 1-64 of a-z, 0-9, '.', '_', '-'", w.Name)
	}
	if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
		return bad("url %q: must start with http:// or https://", w.URL)
	}
	if len(w.Actions) == 0 {
		return bad("no events: choose from push, delete, pull")
	}
	for _, a := range w.Actions {
		if a != ActionPush && a != ActionDelete && a != ActionPull {
			return bad("event %q: choose from push, delete, pull", a)
		}
	}
	if w.Format != FormatDistribution && w.Format != FormatCloudEvents {
		return bad("format %q: distribution or cloudevents", w.Format)
	}
	if len(w.Secret) == 0 {
		return bad("empty secret")
	}
	for k, v := range w.Headers {
		if k == "" || strings.ContainsAny(k+v, "\r\n") || strings.ContainsAny(k, " :") {
			return bad("header %q", k)
		}
	}
	if w.Timeout <= 0 || w.MaxAge <= 0 {
		return bad("timeout and max age must be positive")
	}
	return w.compile()
}

// compile turns Repos into one anchored expression: each glob's '*'
// matches any run of characters, '/' included, so "team/*" covers
// "team/app/api".
func (w *Webhook) compile() error {
	w.repos = nil
	if w.Repos == "" {
		return nil
	}
	var alts []string
	for _, g := range strings.Split(w.Repos, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			return fmt.Errorf("%w: empty pattern in repos %q", ErrWebhookInvalid, w.Repos)
		}
		q := regexp.QuoteMeta(g)
		q = strings.ReplaceAll(q, `\*`, `.*`)
		alts = append(alts, strings.ReplaceAll(q, `\?`, `.`))
	}
	re, err := regexp.Compile(`^(?:` + strings.Join(alts, "|") + `)$`)
	if err != nil {
		return fmt.Errorf("%w: repos %q: %v", ErrWebhookInvalid, w.Repos, err)
	}
	w.repos = re
	return nil
}

// Wants reports whether w subscribes to action on repo.
func (w *Webhook) Wants(action, repo string) bool {
	return slices.Contains(w.Actions, action) && (w.repos == nil || w.repos.MatchString(repo))
}

// AddWebhook stores a new endpoint after validating it. Its delivery
// cursor starts at the end of the outbox: it receives events committed
// after it, not the backlog of others. ErrWebhookExists when the name is
// taken.
func (s *Store) AddWebhook(w Webhook) error {
	if err := w.Validate(); err != nil {
		return err
	}
	v, err := encode(w)
	if err != nil {
		return err
	}
	return s.updateHooks(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get([]byte(w.Name)) != nil {
			return ErrWebhookExists
		}
		if err := b.Put([]byte(w.Name), v); err != nil {
			return err
		}
		st := hookState{Cursor: tx.Bucket(bucketOutbox).Sequence()}
		return putHookState(tx, w.Name, st)
	})
}

// DeleteWebhook removes an endpoint with its cursor and dead letters; the
// outbox forgets events that no endpoint still waits for.
func (s *Store) DeleteWebhook(name string) error {
	return s.updateHooks(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketWebhooks).Get([]byte(name)) == nil {
			return ErrWebhookUnknown
		}
		for _, k := range keysWithPrefix(tx.Bucket(bucketDeadLetters), prefix(name)) {
			if err := tx.Bucket(bucketDeadLetters).Delete(k); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketWebhooks, bucketHookState} {
			if err := tx.Bucket(b).Delete([]byte(name)); err != nil {
				return err
			}
		}
		return pruneOutbox(tx)
	})
}

// Webhooks returns every endpoint, by name, secrets included: callers that
// show them must leave Secret out.
func (s *Store) Webhooks() ([]Webhook, error) {
	var out []Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = readHooks(tx)
		return err
	})
	return out, err
}

// Webhook returns the endpoint named name, or ErrWebhookUnknown.
func (s *Store) Webhook(name string) (Webhook, error) {
	var w Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketWebhooks).Get([]byte(name))
		if v == nil {
			return ErrWebhookUnknown
		}
		if err := decode(v, &w); err != nil {
			return fmt.Errorf("webhook %s: %w", name, err)
		}
		return w.compile()
	})
	return w, err
}

func readHooks(tx *bolt.Tx) ([]Webhook, error) {
	var out []Webhook
	b := tx.Bucket(bucketWebhooks)
	if b == nil {
		return nil, nil // a read-only open of a data dir from before webhooks
	}
	err := b.ForEach(func(k, v []byte) error {
		var w Webhook
		if err := decode(v, &w); err != nil {
			return fmt.Errorf("webhook %s: %w", k, err)
		}
		if err := w.compile(); err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

// updateHooks runs fn in a write transaction and, inside it, refreshes the
// in-memory list of endpoints that the write path consults. Setting it
// before the commit (not in OnCommit) matters: bbolt runs one writer at a
// time, so a push committed after this transaction always sees the new
// list and records its event for a just-added endpoint.
func (s *Store) updateHooks(fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		hooks, err := readHooks(tx)
		if err != nil {
			return err
		}
		s.hooks.Store(&hooks)
		s.hooksVersion.Add(1)
		tx.OnCommit(s.wakeSenders)
		return nil
	})
	if err != nil {
		// The transaction rolled back: the list goes back to what is stored.
		return errors.Join(err, s.loadHooks())
	}
	return nil
}

// WebhooksVersion counts changes of the webhook list in this process, so a
// caller that keeps its own copy (the senders) knows when to read it again.
func (s *Store) WebhooksVersion() uint64 { return s.hooksVersion.Load() }

// loadHooks reads the endpoints into memory (at Open and after a failed
// change).
func (s *Store) loadHooks() error {
	return s.db.View(func(tx *bolt.Tx) error {
		hooks, err := readHooks(tx)
		if err == nil {
			s.hooks.Store(&hooks)
		}
		return err
	})
}
