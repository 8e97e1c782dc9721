package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/store"
)

// lockWait bounds the wait for meta.db's lock when no server answers on the
// socket: another local command (a long gc, say) may hold it for a while,
// and then a clear message beats an endless wait.
const lockWait = time.Second

// Stdio is the CLI's side of a call: its streams, and whether stderr is a
// terminal that progress bars may be drawn on.
type Stdio struct {
	In       io.Reader
	Out      io.Writer // stdout; a streaming operation's bytes go here
	Err      io.Writer
	Progress bool
}

// Call runs op with req on the data directory dir and renders the result
// to stdio: through the running server's control socket when one answers,
// else in this process on the data directory opened here (which fails when
// another process holds it). The output and the returned error are the
// same either way: the result is rendered here, from the same value.
func Call[Req, Res any](ctx context.Context, dir string, op *Op[Req, Res], req Req, stdio Stdio) error {
	stdio = stdio.orEmpty()
	if op.Prepare != nil {
		if err := op.Prepare(&req, Client{In: stdio.In, Prompt: stdio.Err}); err != nil {
			return err
		}
	}
	bar := &progressBar{w: stdio.Err, description: op.Progress}
	defer bar.close()
	out := Output{Out: stdio.Out, Err: stdio.Err}
	res, err := dispatch(ctx, dir, op, req, stdio, bar)
	bar.close() // before the result, so the two do not interleave
	return op.render(out, res, err)
}

// dispatch runs op remotely or locally and returns its result.
func dispatch[Req, Res any](ctx context.Context, dir string, op *Op[Req, Res], req Req, stdio Stdio, bar *progressBar) (*Res, error) {
	sock := SocketPath(dir)
	if c, err := dialControl(sock); err == nil {
		return callRemote(ctx, c, op, req, stdio, bar)
	}
	s, err := store.Open(dir, store.Options{LockTimeout: lockWait, MustExist: !op.MakesDataDir})
	if errors.Is(err, store.ErrNotDataDir) {
		return nil, notDataDirError(dir)
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, permissionError(dir, op.Name, err)
	}
	if errors.Is(err, store.ErrLocked) {
		// A server may have opened the directory after our first try and be
		// listening by now.
		c, dialErr := dialControl(sock)
		if dialErr != nil {
			return nil, fmt.Errorf("%w, and no server answers on %s", err, sock)
		}
		return callRemote(ctx, c, op, req, stdio, bar)
	}
	if err != nil {
		return nil, err
	}
	task := &Task{Out: stdio.Out}
	if !op.Streams {
		task.Out = nil
	}
	if stdio.Progress && op.Progress != "" {
		task.progress = bar.update
	}
	res, err := op.run(ctx, &Env{Store: s}, task, req)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close data directory: %w", cerr)
	}
	return res, err
}

// orEmpty fills in missing streams, so an operation sees the same thing
// with or without the socket in between: stdin at its end, output
// discarded.
func (stdio Stdio) orEmpty() Stdio {
	if stdio.In == nil {
		stdio.In = bytes.NewReader(nil)
	}
	if stdio.Out == nil {
		stdio.Out = io.Discard
	}
	if stdio.Err == nil {
		stdio.Err = io.Discard
	}
	return stdio
}

// controlClient is a client of one control socket.
type controlClient struct {
	sock string
	http *http.Client
}

// dialControl checks that a server answers on sock and returns a client for
// it.
func dialControl(sock string) (*controlClient, error) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	conn.Close()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
	return &controlClient{sock: sock, http: &http.Client{Transport: &http.Transport{DialContext: dial, DisableCompression: true}}}, nil
}

// callRemote sends req to the server and reads its answer: progress events
// for the bar, then the result; a streaming operation's bytes go to
// stdio.Out. Cancelling ctx closes the connection, which cancels the
// operation in the server.
func callRemote[Req, Res any](ctx context.Context, c *controlClient, op *Op[Req, Res], req Req, stdio Stdio, bar *progressBar) (*Res, error) {
	defer c.http.CloseIdleConnections()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", op.Name, err)
	}
	url := "http://berth" + Route(op.Name)
	if stdio.Progress && op.Progress != "" {
		url += "?progress=1"
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(protocolHeader, protocolVersion)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, remoteError(ctx, op.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !op.Streams {
		return readEvents[Res](ctx, op.Name, resp.Body, bar)
	}
	var src io.Reader = resp.Body
	if stdio.Progress && op.Progress != "" {
		// The server sends no progress inside a stream: count what arrives,
		// against the total it announced (-1, a spinner, when it did not).
		var done int64
		total, err := strconv.ParseInt(resp.Header.Get(progressTotalHeader), 10, 64)
		if err != nil {
			total = -1
		}
		src = &countingReader{r: src, add: func(n int64) {
			done += n
			t := total
			if t >= 0 {
				t = max(t, done)
			}
			bar.update(Progress{Phase: op.Progress, Done: done, Total: t, Bytes: true})
		}}
	}
	if _, err := io.Copy(stdio.Out, src); err != nil {
		return nil, remoteError(ctx, op.Name, err)
	}
	var res *Res
	if b := resp.Trailer.Get(trailerResult); b != "" {
		res = new(Res)
		if err := json.Unmarshal([]byte(b), res); err != nil {
			return nil, fmt.Errorf("%s: bad result from the server: %w", op.Name, err)
		}
	}
	if _, ok := resp.Trailer[trailerError]; !ok {
		return res, fmt.Errorf("the server closed the control connection before %s finished", op.Name)
	}
	return res, errorFrom(resp.Trailer.Get(trailerError))
}

// readEvents reads an event stream up to its final event.
func readEvents[Res any](ctx context.Context, name string, body io.Reader, bar *progressBar) (*Res, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, maxRequest)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s: bad answer from the server: %w", name, err)
		}
		if e.Progress != nil {
			bar.update(*e.Progress)
		}
		if !e.Done {
			continue
		}
		var res *Res
		if len(e.Result) > 0 && string(e.Result) != "null" {
			res = new(Res)
			if err := json.Unmarshal(e.Result, res); err != nil {
				return nil, fmt.Errorf("%s: bad result from the server: %w", name, err)
			}
		}
		return res, errorFrom(e.Error)
	}
	err := sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, remoteError(ctx, name, err)
}

// remoteError words a broken exchange; when ctx ended it is ctx's error.
func remoteError(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("the server closed the control connection before %s finished: %w", name, err)
}
