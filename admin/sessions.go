package admin

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// The session operations: a user's refresh tokens (what `docker login`
// saves, one per machine and login) listed and revoked. Access tokens
// already issued from a revoked refresh token run out on their own within
// --token-ttl; `berth user passwd` ends those too.

// UserSessions lists a user's live refresh tokens.
type UserSessions struct {
	Name string `arg:"NAME" json:"name"`
}

// Sessions is the result of user sessions: oldest first, times in UTC.
type Sessions struct {
	Sessions []SessionInfo `json:"sessions"`
}

// SessionInfo is one refresh token as user sessions shows it. LastUsed is
// zero when it was never used.
type SessionInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Expires  time.Time `json:"expires"`
	Client   string    `json:"client,omitempty"`
}

// UserRevoke ends one of a user's sessions (ID), or all of them and the
// user's web UI sessions (All).
type UserRevoke struct {
	Name string `arg:"NAME" json:"name"`
	ID   string `arg:"ID?" json:"id,omitempty"`
	All  bool   `flag:"all" usage:"revoke every session of the user" json:"all,omitempty"`
}

// Revoked is the result of user revoke.
type Revoked struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

var UserSessionsOp = register(&Op[UserSessions, Sessions]{
	Name: "user sessions",
	Do: func(_ context.Context, env *Env, _ *Task, req UserSessions) (*Sessions, error) {
		held, err := env.Store.RefreshTokensOf(req.Name, time.Now())
		if err != nil {
			return nil, userError(req.Name, err)
		}
		res := &Sessions{Sessions: []SessionInfo{}}
		for _, t := range held {
			res.Sessions = append(res.Sessions, SessionInfo{ID: t.ID, Created: t.Created.UTC(), LastUsed: t.LastUsed.UTC(), Expires: t.ExpiresAt().UTC(), Client: t.Client})
		}
		return res, nil
	},
	Render: func(w Output, res *Sessions) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tEXPIRES\tCLIENT")
		for _, s := range res.Sessions {
			lastUsed := "never"
			if !s.LastUsed.IsZero() {
				lastUsed = utc(s.LastUsed)
			}
			client := s.Client
			if client == "" {
				client = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, utc(s.Created), lastUsed, utc(s.Expires), client)
		}
		return tw.Flush()
	},
})

var UserRevokeOp = register(&Op[UserRevoke, Revoked]{
	Name: "user revoke",
	Do: func(_ context.Context, env *Env, _ *Task, req UserRevoke) (*Revoked, error) {
		if req.All == (req.ID != "") {
			return nil, errors.New("usage: berth user revoke NAME ID|--all")
		}
		n, err := env.Store.RevokeRefreshTokens(req.Name, req.ID)
		switch {
		case errors.Is(err, store.ErrSessionUnknown):
			return nil, fmt.Errorf("%s has no session %s (see berth user sessions %s)", req.Name, req.ID, req.Name)
		case err != nil:
			return nil, userError(req.Name, err)
		}
		return &Revoked{Name: req.Name, N: n}, nil
	},
	Render: func(w Output, res *Revoked) error {
		_, err := fmt.Fprintf(w.Out, "revoked %s of %s\n", plural(res.N, "session"), res.Name)
		return err
	},
})

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }
