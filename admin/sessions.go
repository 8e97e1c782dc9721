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
// saves, one per machine and login) and web UI sign-ins, listed and
// revoked. Access tokens already issued from a revoked refresh token run
// out on their own within --token-ttl; `berth user passwd` ends those too.

// UserSessions lists a user's live refresh tokens and web UI sessions.
type UserSessions struct {
	Name string `arg:"NAME" json:"name"`
}

// Sessions is the result of user sessions: oldest first, times in UTC.
type Sessions struct {
	Sessions []SessionInfo `json:"sessions"`
}

// SessionInfo is one session as user sessions shows it: Kind "token" (a
// refresh token) or "web" (a web UI sign-in; "web-ldap" for a directory
// user's). LastUsed is zero when a token was never used; a web session
// records neither when it was created nor when it was last used.
type SessionInfo struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Created  time.Time `json:"created,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Expires  time.Time `json:"expires"`
	Client   string    `json:"client,omitempty"`
}

// Session kinds.
const (
	SessionToken  = "token"
	SessionWeb    = "web"
	SessionWebDir = "web-ldap"
)

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
		now := time.Now()
		held, err := env.Store.RefreshTokensOf(req.Name, now)
		// A directory (LDAP) user has no local record, only web sessions.
		if err != nil && !errors.Is(err, store.ErrUserUnknown) {
			return nil, userError(req.Name, err)
		}
		web, werr := env.Store.UISessionsOf(req.Name, now)
		if werr != nil {
			return nil, werr
		}
		if err != nil && len(web) == 0 {
			return nil, userError(req.Name, err)
		}
		res := &Sessions{Sessions: []SessionInfo{}}
		for _, t := range held {
			res.Sessions = append(res.Sessions, SessionInfo{ID: t.ID, Kind: SessionToken, Created: t.Created.UTC(),
				LastUsed: t.LastUsed.UTC(), Expires: t.ExpiresAt().UTC(), Client: t.Client})
		}
		for _, u := range web {
			kind := SessionWeb
			if u.Directory {
				kind = SessionWebDir
			}
			res.Sessions = append(res.Sessions, SessionInfo{ID: u.ID, Kind: kind, Expires: u.Expires.UTC()})
		}
		return res, nil
	},
	Render: func(w Output, res *Sessions) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tCREATED\tLAST USED\tEXPIRES\tCLIENT")
		for _, s := range res.Sessions {
			created, lastUsed := "-", "-"
			if s.Kind == SessionToken {
				created, lastUsed = utc(s.Created), "never"
				if !s.LastUsed.IsZero() {
					lastUsed = utc(s.LastUsed)
				}
			}
			client := s.Client
			if client == "" {
				client = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, created, lastUsed, utc(s.Expires), client)
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
