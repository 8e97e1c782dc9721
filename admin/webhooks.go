package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/store"
)

// The webhook operations: endpoints that receive the registry's events
// (docs/webhooks.md). A secret is never listed or logged: add prints a
// generated one once, and that is the only time it is shown.

// WebhookAdd adds an endpoint.
type WebhookAdd struct {
	Name        string        `arg:"NAME" json:"name"`
	URL         string        `flag:"url" usage:"where events are POSTed (http:// or https://)" json:"url"`
	Events      string        `flag:"events" usage:"comma-separated: push, delete, pull" json:"events"`
	Repos       string        `flag:"repos" usage:"comma-separated globs of repositories ('*' spans '/'); empty: all" json:"repos,omitempty"`
	Format      string        `flag:"format" usage:"distribution (the registry:2 envelope) or cloudevents (binary mode)" json:"format"`
	SecretStdin bool          `flag:"secret-stdin" usage:"read the signing secret from stdin; without it one is generated and printed once" json:"-"`
	Headers     []string      `flag:"header" usage:"K=V sent with every delivery (repeatable)" json:"headers,omitempty"`
	Timeout     time.Duration `flag:"timeout" usage:"how long one delivery attempt may take" json:"timeout"`
	MaxAge      time.Duration `flag:"max-age" usage:"an event still undelivered after this moves to the dead letters" json:"max_age"`
	// Secret is filled by Prepare, in the CLI process.
	Secret    string `json:"secret"`
	Generated bool   `json:"generated,omitempty"`
}

// WebhookAdded is the result of webhook add. Secret is set only when it was
// generated: the one time it is shown.
type WebhookAdded struct {
	Name   string `json:"name"`
	Secret string `json:"secret,omitempty"`
}

// maxSecret bounds what --secret-stdin reads.
const maxSecret = 4096

var WebhookAddOp = register(&Op[WebhookAdd, WebhookAdded]{
	Name:     "webhook add",
	Defaults: WebhookAdd{Events: "push,delete", Format: store.FormatDistribution, Timeout: 10 * time.Second, MaxAge: 24 * time.Hour},
	Prepare: func(req *WebhookAdd, c Client) error {
		if !req.SecretStdin {
			var b [32]byte
			rand.Read(b[:])
			req.Secret, req.Generated = hex.EncodeToString(b[:]), true
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(c.In, maxSecret+1))
		if err != nil {
			return fmt.Errorf("read secret from stdin: %w", err)
		}
		if len(b) > maxSecret {
			return fmt.Errorf("stdin holds more than %d bytes: not a secret", maxSecret)
		}
		req.Secret = strings.TrimRight(string(b), "\r\n")
		if req.Secret == "" {
			return errors.New("stdin holds no secret")
		}
		return nil
	},
	Do: func(_ context.Context, env *Env, _ *Task, req WebhookAdd) (*WebhookAdded, error) {
		w := store.Webhook{
			Name: req.Name, URL: req.URL, Repos: req.Repos, Format: req.Format, Secret: []byte(req.Secret),
			Timeout: req.Timeout, MaxAge: req.MaxAge, Created: time.Now().UTC(),
		}
		for _, a := range strings.Split(req.Events, ",") {
			if a = strings.TrimSpace(a); a != "" {
				w.Actions = append(w.Actions, a)
			}
		}
		for _, h := range req.Headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok {
				return nil, fmt.Errorf("--header %q: want K=V", h)
			}
			if w.Headers == nil {
				w.Headers = map[string]string{}
			}
			w.Headers[strings.TrimSpace(k)] = v
		}
		switch err := env.Store.AddWebhook(w); {
		case errors.Is(err, store.ErrWebhookExists):
			return nil, fmt.Errorf("webhook %s exists (berth webhook del %s first)", req.Name, req.Name)
		case err != nil:
			return nil, err
		}
		res := &WebhookAdded{Name: req.Name}
		if req.Generated {
			res.Secret = req.Secret
		}
		return res, nil
	},
	Render: func(w Output, res *WebhookAdded) error {
		fmt.Fprintf(w.Out, "added webhook %s\n", res.Name)
		if res.Secret == "" {
			return nil
		}
		_, err := fmt.Fprintf(w.Out, "signing secret (shown only now): %s\n", res.Secret)
		return err
	},
})

// WebhookList lists the endpoints.
type WebhookList struct{}

// Webhooks is the result of webhook list, by name. Header values and
// secrets are left out: they are credentials.
type Webhooks struct {
	Webhooks []WebhookInfo `json:"webhooks"`
}

// WebhookInfo is one endpoint as webhook list shows it.
type WebhookInfo struct {
	Name    string        `json:"name"`
	URL     string        `json:"url"`
	Events  []string      `json:"events"`
	Repos   string        `json:"repos,omitempty"`
	Format  string        `json:"format"`
	Headers []string      `json:"headers,omitempty"` // names only
	Timeout time.Duration `json:"timeout"`
	MaxAge  time.Duration `json:"max_age"`
	Created time.Time     `json:"created"`
}

var WebhookListOp = register(&Op[WebhookList, Webhooks]{
	Name: "webhook list",
	Do: func(_ context.Context, env *Env, _ *Task, _ WebhookList) (*Webhooks, error) {
		hooks, err := env.Store.Webhooks()
		if err != nil {
			return nil, err
		}
		res := &Webhooks{Webhooks: []WebhookInfo{}}
		for _, h := range hooks {
			info := WebhookInfo{Name: h.Name, URL: h.URL, Events: h.Actions, Repos: h.Repos, Format: h.Format,
				Timeout: h.Timeout, MaxAge: h.MaxAge, Created: h.Created.UTC()}
			for k := range h.Headers {
				info.Headers = append(info.Headers, k)
			}
			sort.Strings(info.Headers)
			res.Webhooks = append(res.Webhooks, info)
		}
		return res, nil
	},
	Render: func(w Output, res *Webhooks) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tURL\tEVENTS\tREPOS\tFORMAT\tHEADERS\tTIMEOUT\tMAX AGE")
		for _, h := range res.Webhooks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.URL, strings.Join(h.Events, ","),
				orDash(h.Repos), h.Format, orDash(strings.Join(h.Headers, ",")), h.Timeout, h.MaxAge)
		}
		return tw.Flush()
	},
})

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WebhookDel deletes an endpoint, its queue position and its dead letters.
type WebhookDel struct {
	Name string `arg:"NAME" json:"name"`
}

// WebhookDeleted is the result of webhook del.
type WebhookDeleted struct {
	Name string `json:"name"`
}

var WebhookDelOp = register(&Op[WebhookDel, WebhookDeleted]{
	Name: "webhook del",
	Do: func(_ context.Context, env *Env, _ *Task, req WebhookDel) (*WebhookDeleted, error) {
		if err := env.Store.DeleteWebhook(req.Name); err != nil {
			return nil, webhookError(req.Name, err)
		}
		return &WebhookDeleted{Name: req.Name}, nil
	},
	Render: func(w Output, res *WebhookDeleted) error {
		_, err := fmt.Fprintf(w.Out, "deleted webhook %s\n", res.Name)
		return err
	},
})

func webhookError(name string, err error) error {
	if errors.Is(err, store.ErrWebhookUnknown) {
		return fmt.Errorf("no webhook %s (see berth webhook list)", name)
	}
	return err
}

// WebhookTest sends one signed "ping" event to an endpoint now, outside
// its queue, and reports the answer.
type WebhookTest struct {
	Name string `arg:"NAME" json:"name"`
}

// WebhookTested is the result of a test delivery that the endpoint took.
type WebhookTested struct {
	Name string        `json:"name"`
	URL  string        `json:"url"`
	ID   string        `json:"id"`
	Took time.Duration `json:"took"`
}

// ActionPing is the action of the event webhook test sends.
const ActionPing = "ping"

var WebhookTestOp = register(&Op[WebhookTest, WebhookTested]{
	Name: "webhook test",
	Do: func(ctx context.Context, env *Env, _ *Task, req WebhookTest) (*WebhookTested, error) {
		w, err := env.Store.Webhook(req.Name)
		if err != nil {
			return nil, webhookError(req.Name, err)
		}
		now := time.Now()
		ev := store.Event{ID: store.NewEventID(), Time: now, Queued: now, Action: ActionPing}
		if err := events.Post(ctx, events.NewClient(), &w, []store.Event{ev}, events.Source{}); err != nil {
			return nil, fmt.Errorf("webhook %s: test delivery to %s failed: %v", w.Name, w.URL, err)
		}
		return &WebhookTested{Name: w.Name, URL: w.URL, ID: ev.ID, Took: time.Since(now)}, nil
	},
	Render: func(w Output, res *WebhookTested) error {
		_, err := fmt.Fprintf(w.Out, "%s took test event %s in %s\n", res.URL, res.ID, res.Took.Round(time.Millisecond))
		return err
	},
})
