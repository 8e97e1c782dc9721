package admin

import (
	"bytes"
	"context"
)

// Run performs the operation in this process on env, as the control
// socket would: a panic becomes an error, and the run is counted and
// logged. The web UI's admin pages call operations this way, behind a
// signed-in admin session, so they do exactly what the commands do.
func (op *Op[Req, Res]) Run(ctx context.Context, env *Env, req Req) (*Res, error) {
	return op.run(ctx, env, &Task{}, req)
}

// Text renders res as the command prints it, stdout and stderr together:
// what the web UI shows after an operation, so the page and the command
// say the same thing.
func (op *Op[Req, Res]) Text(res *Res) (string, error) {
	var buf bytes.Buffer
	if res == nil || op.Render == nil {
		return "", nil
	}
	err := op.Render(Output{Out: &buf, Err: &buf}, res)
	return buf.String(), err
}
