package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ServerVersionReq asks the running server for its version. It means
// something only inside the server; ServerVersion sends it there.
type ServerVersionReq struct{}

// VersionInfo is the result of server version.
type VersionInfo struct {
	Version string `json:"version"`
}

var serverVersionOp = register(&Op[ServerVersionReq, VersionInfo]{
	Name: "server version",
	Do: func(_ context.Context, env *Env, _ *Task, _ ServerVersionReq) (*VersionInfo, error) {
		if env.Version == "" {
			return nil, errors.New("no server runs this command")
		}
		return &VersionInfo{Version: env.Version}, nil
	},
	Render: func(w Output, res *VersionInfo) error {
		_, err := fmt.Fprintln(w.Out, res.Version)
		return err
	},
})

// ErrNoServer is returned by ServerVersion when no server answers on the
// data directory's control socket.
var ErrNoServer = errors.New("no server answers")

// ServerVersion asks the server serving the data directory dir, through
// its control socket, for its version. It returns an error wrapping
// ErrNoServer when none answers (none runs, or this user may not reach it).
func ServerVersion(ctx context.Context, dir string) (string, error) {
	c, err := dialControl(SocketPath(dir))
	if err != nil {
		return "", fmt.Errorf("%w on %s: %v", ErrNoServer, SocketPath(dir), err)
	}
	res, err := callRemote(ctx, c, serverVersionOp, ServerVersionReq{}, Stdio{}.orEmpty(), &progressBar{w: io.Discard})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(res.Version), nil
}
