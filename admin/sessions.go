package admin

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// The session commands: a user's refresh tokens (what `docker login` saves,
// one per machine and login) listed and revoked. Access tokens already
// issued from a revoked refresh token run out on their own within
// --token-ttl; `berth user passwd` ends those too.

var userSessionsCommand = Command{
	Name:  "user sessions",
	Usage: "NAME",
	Run:   runUserSessions,
}

var userRevokeCommand = Command{
	Name:  "user revoke",
	Usage: "NAME ID|--all",
	Run:   runUserRevoke,
}

// runUserSessions prints a table of the user's live refresh tokens, oldest
// first. Times are UTC, like `user list`.
func runUserSessions(_ context.Context, env *Env, args Args, stdio Stdio) error {
	name, err := oneWord(args)
	if err != nil {
		return err
	}
	held, err := env.Store.RefreshTokensOf(name, time.Now())
	if err != nil {
		return userError(name, err)
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tEXPIRES\tCLIENT")
	for _, t := range held {
		lastUsed := "never"
		if !t.LastUsed.IsZero() {
			lastUsed = utc(t.LastUsed)
		}
		client := t.Client
		if client == "" {
			client = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, utc(t.Created), lastUsed, utc(t.ExpiresAt()), client)
	}
	return tw.Flush()
}

func runUserRevoke(_ context.Context, env *Env, args Args, stdio Stdio) error {
	all, err := boolFlag(args, "all")
	if err != nil {
		return err
	}
	var name, id string
	switch {
	case all && len(args.Words) == 1:
		name = args.Words[0]
	case !all && len(args.Words) == 2:
		name, id = args.Words[0], args.Words[1]
	default:
		return errUsage
	}
	n, err := env.Store.RevokeRefreshTokens(name, id)
	switch {
	case errors.Is(err, store.ErrSessionUnknown):
		return fmt.Errorf("%s has no session %s (see berth user sessions %s)", name, id, name)
	case err != nil:
		return userError(name, err)
	}
	noun := "sessions"
	if n == 1 {
		noun = "session"
	}
	fmt.Fprintf(stdio.Out, "revoked %d %s of %s\n", n, noun, name)
	return nil
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }
