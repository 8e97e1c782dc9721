package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// addTestOp adds op to the table until the test ends; serve the socket
// after adding it. Tests that use it must not run in parallel with others.
func addTestOp[Req, Res any](t *testing.T, op *Op[Req, Res]) *Op[Req, Res] {
	t.Helper()
	if _, dup := ops[op.Name]; dup {
		t.Fatalf("operation %s exists", op.Name)
	}
	ops[op.Name] = op
	t.Cleanup(func() { delete(ops, op.Name) })
	return op
}

type testReq struct {
	N int `json:"n"`
}

type testRes struct {
	Text string `json:"text"`
}

func renderTest(w Output, r *testRes) error {
	_, err := fmt.Fprintln(w.Out, r.Text)
	return err
}

// TestControl_Streams sends binary data larger than any buffer from a
// streaming operation, both ways, with its result rendered after it.
func TestControl_Streams(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	op := addTestOp(t, &Op[testReq, testRes]{Name: "test stream", Streams: true, Progress: "test",
		Do: func(_ context.Context, _ *Env, task *Task, req testReq) (*testRes, error) {
			task.Report(Progress{Phase: "test", Total: int64(req.N), Bytes: true})
			if _, err := task.Out.Write(data[:req.N]); err != nil {
				return nil, err
			}
			return &testRes{Text: fmt.Sprintf("%x", sha256.Sum256(data[:req.N]))}, nil
		},
		Render: func(w Output, r *testRes) error { _, err := fmt.Fprintln(w.Err, r.Text); return err },
	})
	tw := newTwin(t)
	got := both(t, tw, op, testReq{N: len(data)}, "")
	if got.out != string(data) || got.err != "" {
		t.Errorf("streamed %d bytes of %d, error %q", len(got.out), len(data), got.err)
	}
	if want := fmt.Sprintf("%x\n", sha256.Sum256(data)); got.errOut != want {
		t.Errorf("stderr %q, want %q", got.errOut, want)
	}

	// Asked for progress, the server announces the total before the
	// stream, and the client draws its bar from the bytes it receives.
	c, err := dialControl(SocketPath(tw.remote.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.http.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://berth"+Route(op.Name)+"?progress=1", strings.NewReader(`{"n":1000}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocolHeader, protocolVersion)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if total := resp.Header.Get(progressTotalHeader); total != "1000" || n != 1000 || resp.Trailer.Get(trailerResult) == "" {
		t.Errorf("progress total %q, %d bytes, result trailer %q; want 1000, 1000 and a result", total, n, resp.Trailer.Get(trailerResult))
	}
	var errOut bytes.Buffer
	if err := Call(context.Background(), tw.remote.Dir(), op, testReq{N: len(data)}, Stdio{Out: io.Discard, Err: &errOut, Progress: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "test") || !strings.Contains(errOut.String(), "%") {
		t.Errorf("no byte bar on stderr: %q", errOut.String())
	}
}

// TestControl_Progress draws the bar of an operation that reports
// progress, whether it runs here or in the server, and only when asked.
func TestControl_Progress(t *testing.T) {
	op := addTestOp(t, &Op[testReq, testRes]{Name: "test progress", Progress: "test",
		Do: func(_ context.Context, _ *Env, task *Task, req testReq) (*testRes, error) {
			for i := range req.N + 1 {
				task.Report(Progress{Phase: "count", Done: int64(i), Total: int64(req.N)})
			}
			return &testRes{Text: "counted"}, nil
		},
		Render: renderTest,
	})
	tw := newTwin(t)
	for _, dir := range []string{tw.local, tw.remote.Dir()} {
		for _, progress := range []bool{true, false} {
			var out, errOut bytes.Buffer
			err := Call(context.Background(), dir, op, testReq{N: 10}, Stdio{Out: &out, Err: &errOut, Progress: progress})
			if err != nil || out.String() != "counted\n" {
				t.Fatalf("%s: %q, %v", dir, out.String(), err)
			}
			if drawn := strings.Contains(errOut.String(), "test count"); drawn != progress {
				t.Errorf("%s, progress %v: stderr %q", dir, progress, errOut.String())
			}
		}
	}
}

func TestControl_Errors(t *testing.T) {
	panicky := addTestOp(t, &Op[testReq, testRes]{Name: "test panic", Render: renderTest,
		Do: func(context.Context, *Env, *Task, testReq) (*testRes, error) { panic("boom") }})
	failing := addTestOp(t, &Op[testReq, testRes]{Name: "test fail", Render: renderTest,
		Do: func(context.Context, *Env, *Task, testReq) (*testRes, error) {
			return &testRes{Text: "partial output"}, errors.New("it failed")
		}})
	var logged storetest.SyncBuffer
	defaultLogger := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(defaultLogger) })
	tw := newTwin(t)
	if got := both(t, tw, panicky, testReq{}, ""); got.out != "" || got.err != "test panic: internal error: boom" {
		t.Errorf("panic: got\n%s", got)
	}
	if got := both(t, tw, failing, testReq{}, ""); got.out != "partial output\n" || got.err != "it failed" {
		t.Errorf("error after output: got\n%s", got)
	}
	if !strings.Contains(logged.String(), "admin operation panicked") || !strings.Contains(logged.String(), "goroutine") {
		t.Errorf("the panic's stack was not logged: %q", logged.String())
	}
	// The server survived the panic.
	if got := call(t, tw.remote.Dir(), UserListOp, UserList{}, ""); got.err != "" {
		t.Errorf("after a panic: %s", got)
	}
}

// rawRequest posts body to path on the control socket sock with the given
// headers and returns the status and the final event's error.
func rawRequest(t *testing.T, sock, path, contentType, version, body string) (int, string) {
	t.Helper()
	c, err := dialControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.http.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(protocolHeader, version)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e event
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%s: answer is not an event: %v", path, err)
	}
	return resp.StatusCode, e.Error
}

func TestServeControl_RefusesBadRequests(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	mustServe(t, s)
	sock := SocketPath(s.Dir())
	tests := []struct {
		name                       string
		path, contentType, version string
		body                       string
		wantStatus                 int
		wantErr                    string
	}{
		{"other protocol version", Route("user list"), "application/json", "99", "{}", 400, "the running server speaks admin protocol 2, this berth speaks \"99\""},
		{"unknown operation", routePrefix + "rm/-rf", "application/json", protocolVersion, "{}", 404, "the running server has no operation at POST /admin/v1/rm/-rf: is it an older berth than this one?"},
		{"not json", Route("user list"), "application/json", protocolVersion, "user list", 400, "user list: bad request"},
		{"unknown field", Route("user del"), "application/json", protocolVersion, `{"name":"x","recursive":true}`, 400, `user del: bad request: json: unknown field "recursive"`},
		{"form", Route("user del"), "application/x-www-form-urlencoded", protocolVersion, "name=admin", 415, "admin requests are application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, got := rawRequest(t, sock, tc.path, tc.contentType, tc.version, tc.body)
			if status != tc.wantStatus || !strings.Contains(got, tc.wantErr) {
				t.Errorf("%d %q, want %d and an error containing %q", status, got, tc.wantStatus, tc.wantErr)
			}
		})
	}
	if _, err := s.User("admin"); !errors.Is(err, store.ErrUserUnknown) {
		t.Errorf("a refused request changed something: %v", err)
	}
}

func TestServeControl_Socket(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	sock := SocketPath(s.Dir())
	stop := mustServe(t, s)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if _, err := ServeControl(context.Background(), &Env{Store: s}, sock); err == nil || !strings.Contains(err.Error(), "another process answers") {
		t.Errorf("second ServeControl on a live socket: %v", err)
	}
	stop()
	stop() // twice is fine
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after stop: %v, want it removed", err)
	}
}

func TestServeControl_Stale(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{"stale socket", func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, ""},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "exists and is not a socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.Open(t, t.TempDir())
			sock := SocketPath(s.Dir())
			tc.prepare(t, sock)
			stop, err := ServeControl(context.Background(), &Env{Store: s}, sock)
			if err == nil {
				defer stop()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ServeControl: %v, want error containing %q", err, tc.wantErr)
			}
			if err == nil {
				if got := call(t, s.Dir(), ACLListOp, ACLList{}, ""); got.err != "" {
					t.Errorf("through the new socket: %s", got)
				}
			}
		})
	}
}

func TestServeControl_LongPath(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	path := filepath.Join(s.Dir(), strings.Repeat("x", maxSocketPath))
	if _, err := ServeControl(context.Background(), &Env{Store: s}, path); err == nil || !strings.Contains(err.Error(), "use a shorter --data path") {
		t.Errorf("ServeControl on a %d-byte path: %v", len(path), err)
	}
}

// blockingOp adds "test block", which signals started and then waits for
// its context; it reports the context's end on ended.
func blockingOp(t *testing.T) (op *Op[testReq, testRes], started, ended chan struct{}) {
	started, ended = make(chan struct{}), make(chan struct{})
	op = addTestOp(t, &Op[testReq, testRes]{Name: "test block", Render: renderTest,
		Do: func(ctx context.Context, _ *Env, _ *Task, _ testReq) (*testRes, error) {
			close(started)
			<-ctx.Done()
			close(ended)
			return nil, ctx.Err()
		}})
	return op, started, ended
}

// waitClosed fails the test when ch is not closed within a bound.
func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

func TestControl_ClientGoneCancelsCommand(t *testing.T) {
	op, started, ended := blockingOp(t)
	s := storetest.Open(t, t.TempDir())
	mustServe(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Call(ctx, s.Dir(), op, testReq{}, Stdio{}) }()
	waitClosed(t, started, "the command's start")
	cancel()
	waitClosed(t, ended, "the command's cancellation")
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestControl_StopCancelsCommand(t *testing.T) {
	op, started, ended := blockingOp(t)
	s := storetest.Open(t, t.TempDir())
	stop := mustServe(t, s)
	done := make(chan error, 1)
	go func() {
		done <- Call(context.Background(), s.Dir(), op, testReq{}, Stdio{})
	}()
	waitClosed(t, started, "the command's start")
	stop()
	waitClosed(t, ended, "the command's cancellation")
	if err := <-done; err == nil {
		t.Error("Run succeeded although the server stopped under it")
	}
}

// TestRun_LockedWithoutServer: a data directory held by another process
// that serves no socket gives a clear error, after a bounded wait.
func TestRun_LockedWithoutServer(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	got := call(t, s.Dir(), UserListOp, UserList{}, "")
	if !strings.Contains(got.err, "in use by another berth process, and no server answers on") {
		t.Errorf("got\n%s", got)
	}
}

// TestControl_StreamLongError: a streaming operation's long error and a
// result that cannot fit a trailer are told the same way both ways.
func TestControl_StreamLongError(t *testing.T) {
	long := strings.Repeat("x", 5000)
	failing := addTestOp(t, &Op[testReq, testRes]{Name: "test stream fail", Streams: true,
		Do: func(_ context.Context, _ *Env, task *Task, _ testReq) (*testRes, error) {
			task.Out.Write([]byte("partial"))
			return nil, errors.New(long)
		}})
	big := addTestOp(t, &Op[testReq, testRes]{Name: "test stream big", Streams: true, Render: renderTest,
		Do: func(_ context.Context, _ *Env, task *Task, _ testReq) (*testRes, error) {
			return &testRes{Text: long}, nil
		}})
	tw := newTwin(t)
	got := both(t, tw, failing, testReq{}, "")
	if got.err != long[:maxTrailer]+"…" || got.out != "partial" {
		t.Errorf("long error: got %d bytes of error, stdout %q", len(got.err), got.out)
	}
	r := call(t, tw.remote.Dir(), big, testReq{}, "")
	if !strings.Contains(r.err, "does not fit in a trailer") {
		t.Errorf("a result too large for a trailer: %s", r)
	}
}
