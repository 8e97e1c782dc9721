package admin

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"
)

// WebhookStatus shows every endpoint's queue, or one endpoint's with its
// dead letters.
type WebhookStatus struct {
	Name string `arg:"NAME?" json:"name,omitempty"`
}

// WebhookStatuses is the result of webhook status.
type WebhookStatuses struct {
	Queues      []QueueInfo      `json:"queues"`
	DeadLetters []DeadLetterInfo `json:"dead_letters,omitempty"` // of the named endpoint
}

// QueueInfo is one endpoint's delivery state.
type QueueInfo struct {
	Name        string    `json:"name"`
	Pending     uint64    `json:"pending"`
	Oldest      time.Time `json:"oldest,omitzero"`
	DeadLetters int       `json:"dead_letters"`
	Delivered   uint64    `json:"delivered"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures,omitempty"`
}

// DeadLetterInfo is one dead letter.
type DeadLetterInfo struct {
	ID     string    `json:"id"`
	Action string    `json:"action"`
	Repo   string    `json:"repo"`
	Ref    string    `json:"ref,omitempty"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

var WebhookStatusOp = register(&Op[WebhookStatus, WebhookStatuses]{
	Name: "webhook status",
	Do: func(_ context.Context, env *Env, _ *Task, req WebhookStatus) (*WebhookStatuses, error) {
		queues, err := env.Store.Queues()
		if err != nil {
			return nil, err
		}
		res := &WebhookStatuses{Queues: []QueueInfo{}}
		for _, q := range queues {
			if req.Name != "" && q.Name != req.Name {
				continue
			}
			res.Queues = append(res.Queues, QueueInfo{Name: q.Name, Pending: q.Pending, Oldest: q.Oldest.UTC(),
				DeadLetters: q.DeadLetters, Delivered: q.Delivered, LastSuccess: q.LastSuccess.UTC(),
				LastError: q.LastError, Failures: q.Failures})
		}
		if req.Name == "" {
			return res, nil
		}
		dead, err := env.Store.DeadLetters(req.Name)
		if err != nil {
			return nil, webhookError(req.Name, err)
		}
		for _, d := range dead {
			ref := d.Event.Tag
			if ref == "" {
				ref = string(d.Event.Digest)
			}
			res.DeadLetters = append(res.DeadLetters, DeadLetterInfo{ID: d.Event.ID, Action: d.Event.Action,
				Repo: d.Event.Repo, Ref: ref, Time: d.Event.Time.UTC(), Reason: d.Reason})
		}
		return res, nil
	},
	Render: func(w Output, res *WebhookStatuses) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPENDING\tOLDEST\tDEAD\tDELIVERED\tLAST SUCCESS\tLAST ERROR")
		for _, q := range res.Queues {
			oldest, last := "-", "never"
			if !q.Oldest.IsZero() {
				oldest = utc(q.Oldest)
			}
			if !q.LastSuccess.IsZero() {
				last = utc(q.LastSuccess)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", q.Name, q.Pending, oldest, q.DeadLetters, q.Delivered, last, orDash(q.LastError))
		}
		if err := tw.Flush(); err != nil || len(res.DeadLetters) == 0 {
			return err
		}
		fmt.Fprintln(w.Out, "\ndead letters (berth webhook replay NAME --all resends them):")
		tw = tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tACTION\tREPOSITORY\tREF\tTIME\tREASON")
		for _, d := range res.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Action, d.Repo, orDash(d.Ref), utc(d.Time), d.Reason)
		}
		return tw.Flush()
	},
})

// WebhookReplay queues an endpoint's dead letters again (IDs, or --all),
// with their ids unchanged.
type WebhookReplay struct {
	Name string   `arg:"NAME" json:"name"`
	IDs  []string `args:"ID" json:"ids,omitempty"`
	All  bool     `flag:"all" usage:"replay every dead letter of the webhook" json:"all,omitempty"`
}

// WebhookReplayed is the result of webhook replay.
type WebhookReplayed struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

var WebhookReplayOp = register(&Op[WebhookReplay, WebhookReplayed]{
	Name: "webhook replay",
	Do: func(_ context.Context, env *Env, _ *Task, req WebhookReplay) (*WebhookReplayed, error) {
		if req.All == (len(req.IDs) > 0) {
			return nil, errors.New("usage: berth webhook replay NAME ID...|--all")
		}
		n, err := env.Store.Replay(req.Name, req.IDs)
		if err != nil {
			return nil, webhookError(req.Name, err)
		}
		return &WebhookReplayed{Name: req.Name, N: n}, nil
	},
	Render: func(w Output, res *WebhookReplayed) error {
		_, err := fmt.Fprintf(w.Out, "queued %s for %s again\n", plural(res.N, "dead letter"), res.Name)
		return err
	},
})
