package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// serverVersionCommand prints the running server's version. It means
// something only inside the server; ServerVersion sends it there.
var serverVersionCommand = Command{
	Name: "server version",
	Run: func(_ context.Context, env *Env, args Args, stdio Stdio) error {
		if len(args.Words) != 0 {
			return errUsage
		}
		if env.Version == "" {
			return errors.New("no server runs this command")
		}
		_, err := fmt.Fprintln(stdio.Out, env.Version)
		return err
	},
}

// ErrNoServer is returned by ServerVersion when no server answers on the
// data directory's control socket.
var ErrNoServer = errors.New("no server answers")

// ServerVersion asks the server serving the data directory dir, through
// its control socket, for its version. It returns an error wrapping
// ErrNoServer when none answers (none runs, or this user may not reach it).
func ServerVersion(ctx context.Context, dir string) (string, error) {
	conn, err := dialControl(SocketPath(dir))
	if err != nil {
		return "", fmt.Errorf("%w on %s: %v", ErrNoServer, SocketPath(dir), err)
	}
	var out strings.Builder
	if err := runRemote(ctx, conn, serverVersionCommand.Name, Args{}, Stdio{Out: &out}.orEmpty()); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}
