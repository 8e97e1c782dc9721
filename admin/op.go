package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Op is one maintenance operation with a typed request and result. Its
// request type is also its command line: the CLI builds flags and positional
// arguments from the struct tags of Req (see the package doc), so adding a
// flag is adding a field. Do runs where the data is — in the CLI process
// when the server is stopped, inside the server when it runs — and the CLI
// renders the result it gets back with Render, so the output is the same
// either way by construction.
type Op[Req, Res any] struct {
	// Name is what the CLI calls it ("user add"); the control socket's route
	// is derived from it (Route).
	Name string
	// Defaults is the request before the flags apply: flag defaults on the
	// command line, and the value of every field a JSON request leaves out.
	Defaults Req
	// Prepare, when not nil, runs in the CLI process before the request
	// leaves it: it reads files and passwords named by flags, so that a
	// relative path or a terminal prompt means the same with the server up
	// or down.
	Prepare func(req *Req, client Client) error
	// Do performs the operation on the open store. A nil result with an
	// error prints nothing but the error; a result with an error (a verify
	// that found faults) prints both.
	Do func(ctx context.Context, env *Env, task *Task, req Req) (*Res, error)
	// Render prints a result. It depends on nothing but the result.
	Render func(w Output, res *Res) error
	// Streams marks an operation whose output is a byte stream (backup):
	// Do writes it to task.Out, and Render usually writes to Output.Err.
	Streams bool
	// Progress names the bar the CLI draws on a terminal ("gc", "verify");
	// empty for an operation that reports none.
	Progress string
}

// Env is what an operation runs against: the open data directory.
type Env struct {
	Store *store.Store
	// Logger is the server's log, for operations whose runs the server must
	// record; nil when the operation runs in the CLI process, whose output
	// already says it all.
	Logger *slog.Logger
}

// Task is one run of an operation: where it reports progress and, for a
// streaming operation, where its bytes go.
type Task struct {
	// Out receives a streaming operation's output; nil for the others.
	Out      io.Writer
	progress func(Progress)
}

// Progress is one step of a long run, for a progress bar.
type Progress struct {
	Phase string `json:"phase"`           // what is being done: "mark", "verify"
	Done  int64  `json:"done"`            // units done so far
	Total int64  `json:"total"`           // units in all; negative when unknown
	Bytes bool   `json:"bytes,omitempty"` // the units are bytes
}

// Report passes p on to whoever watches the run; it does nothing when
// nobody does. It must be called from one goroutine at a time.
func (t *Task) Report(p Progress) {
	if t.progress != nil {
		t.progress(p)
	}
}

// watched reports whether anybody draws the progress, so an operation can
// skip the work of counting.
func (t *Task) watched() bool { return t.progress != nil }

// Output is where a result is rendered: the CLI's stdout and stderr.
type Output struct {
	Out io.Writer
	Err io.Writer
}

// Client is the CLI process's side of a run: its terminal and its streams,
// for Prepare.
type Client struct {
	In     io.Reader
	Prompt io.Writer // where prompts go (stderr)
}

// operation is an Op with its types erased, for the table and the server.
type operation interface {
	serve(ctx context.Context, env *Env, w http.ResponseWriter, body io.Reader, progress bool)
}

// Route returns the control socket's path for the operation named name:
// POST /admin/v1/ followed by its words joined by slashes ("user add" →
// /admin/v1/user/add). The web UI's admin pages will call the same paths.
func Route(name string) string {
	return routePrefix + strings.ReplaceAll(name, " ", "/")
}

const routePrefix = "/admin/v1/"

// ops is every operation the control socket serves, by name.
var ops = map[string]operation{}

// register adds op to the table; a name defined twice is a bug found at
// start-up.
func register[Req, Res any](op *Op[Req, Res]) *Op[Req, Res] {
	if _, dup := ops[op.Name]; dup {
		panic("admin: operation " + op.Name + " defined twice")
	}
	ops[op.Name] = op
	return op
}

// Names returns the names of all operations, sorted.
func Names() []string {
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// run calls Do, turns a panic into an error so that a bug in one operation
// cannot take the server down, counts the run and logs it in the server.
func (op *Op[Req, Res]) run(ctx context.Context, env *Env, task *Task, req Req) (res *Res, err error) {
	defer func() {
		if r := recover(); r != nil {
			logger := env.Logger
			if logger == nil {
				logger = slog.Default()
			}
			logger.Error("admin operation panicked", "op", op.Name, "panic", r, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("%s: internal error: %v", op.Name, r)
		}
		if op.Streams && err != nil && len(err.Error()) > maxTrailer {
			// A streaming operation's error travels in a trailer of bounded
			// size; cut it here, so the CLI prints the same either way.
			err = errors.New(err.Error()[:maxTrailer] + "…")
		}
		recordRun(op.Name, err)
		// The server's log is the record of who changed what while it ran.
		// The request stays out of it: it may hold password hashes.
		if env.Logger != nil {
			env.Logger.Info("admin operation", "op", op.Name, "err", err)
		}
	}()
	return op.Do(ctx, env, task, req)
}

// render prints res (when there is one) and returns err, or the render's
// own error.
func (op *Op[Req, Res]) render(out Output, res *Res, err error) error {
	if res != nil && op.Render != nil {
		if rerr := op.Render(out, res); err == nil && rerr != nil {
			err = fmt.Errorf("write output: %w", rerr)
		}
	}
	return err
}

// errorString is err's message, "" for nil.
func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errorFrom is the inverse of errorString.
func errorFrom(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}
