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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addTestCommand adds cmd to the command table until the test ends. Tests
// that use it must not run in parallel with others.
func addTestCommand(t *testing.T, cmd Command) {
	t.Helper()
	if _, dup := commands[cmd.Name]; dup {
		t.Fatalf("command %s exists", cmd.Name)
	}
	commands[cmd.Name] = cmd
	t.Cleanup(func() { delete(commands, cmd.Name) })
}

// TestControl_Streams sends binary data larger than several frames through
// stdin and back on stdout and stderr, both ways.
func TestControl_Streams(t *testing.T) {
	addTestCommand(t, Command{Name: "test echo", Run: func(_ context.Context, _ *Env, args Args, stdio Stdio) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(stdio.Out, h), stdio.In); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Err, "%x\n", h.Sum(nil))
		return nil
	}})
	data := make([]byte, 3*maxFrame+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	tw := newTwin(t)
	got := tw.run(t, "test echo", Args{}, string(data))
	if got.out != string(data) || got.err != "" {
		t.Errorf("echoed %d bytes of %d, error %q", len(got.out), len(data), got.err)
	}
	if want := fmt.Sprintf("%x\n", sha256.Sum256(data)); got.errOut != want {
		t.Errorf("stderr %q, want %q", got.errOut, want)
	}
}

// TestControl_NoStdin runs a command that reads stdin when the client has
// none: it reads EOF, over the socket as well.
func TestControl_NoStdin(t *testing.T) {
	addTestCommand(t, Command{Name: "test count", Run: func(_ context.Context, _ *Env, _ Args, stdio Stdio) error {
		n, err := io.Copy(io.Discard, stdio.In)
		fmt.Fprintf(stdio.Out, "%d bytes\n", n)
		return err
	}})
	tw := newTwin(t)
	if got := tw.run(t, "test count", Args{}, ""); got.out != "0 bytes\n" || got.err != "" {
		t.Errorf("got\n%s", got)
	}
}

func TestControl_Errors(t *testing.T) {
	addTestCommand(t, Command{Name: "test panic", Run: func(context.Context, *Env, Args, Stdio) error {
		panic("boom")
	}})
	var logged syncBuffer
	defaultLogger := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(defaultLogger) })
	addTestCommand(t, Command{Name: "test fail", Run: func(_ context.Context, _ *Env, _ Args, stdio Stdio) error {
		fmt.Fprintln(stdio.Out, "partial output")
		return errors.New("it failed")
	}})
	tests := []struct {
		name    string
		command string
		wantOut string
		wantErr string
	}{
		{"panic", "test panic", "", "test panic: internal error: boom"},
		{"error after output", "test fail", "partial output\n", "it failed"},
		{"unknown", "user frobnicate", "", `unknown command "user frobnicate"`},
	}
	tw := newTwin(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tw.run(t, tc.command, Args{}, "")
			if got.out != tc.wantOut || got.err != tc.wantErr {
				t.Errorf("got\n%s\nwant stdout %q, error %q", got, tc.wantOut, tc.wantErr)
			}
		})
	}
	if !strings.Contains(logged.String(), "admin command panicked") || !strings.Contains(logged.String(), "goroutine") {
		t.Errorf("the panic's stack was not logged: %q", logged.String())
	}
	// The server survived the panic.
	if got := run(t, tw.remote.Dir(), "user list", Args{}, ""); got.err != "" {
		t.Errorf("after a panic: %s", got)
	}
}

// rawRequest sends payload as a frame of type typ on a fresh connection and
// returns the server's exit error.
func rawRequest(t *testing.T, sock string, typ frameType, payload []byte) string {
	t.Helper()
	conn, err := dialControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fw := &frameWriter{w: conn}
	if err := fw.write(typ, payload); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(conn)
	for {
		ft, p, err := fr.read()
		if err != nil {
			t.Fatalf("no exit frame: %v", err)
		}
		if ft == frameExit {
			var st exitStatus
			if err := json.Unmarshal(p, &st); err != nil {
				t.Fatal(err)
			}
			return st.Error
		}
	}
}

func TestServeControl_RefusesBadRequests(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	mustServe(t, s)
	sock := SocketPath(s.Dir())
	request := func(v int, cmd string) []byte {
		b, _ := json.Marshal(request{Version: v, Command: cmd})
		return b
	}
	tests := []struct {
		name    string
		typ     frameType
		payload []byte
		wantErr string
	}{
		{"other protocol version", frameRequest, request(99, "user list"), "the running server speaks control protocol 1, this berth speaks 99"},
		{"unknown command", frameRequest, request(protocolVersion, "rm -rf"), `the running server has no command "rm -rf": is it an older berth than this one?`},
		{"not json", frameRequest, []byte("user list"), "control protocol: bad request"},
		{"stdin first", frameStdin, []byte("x"), "control protocol: expected a request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawRequest(t, sock, tc.typ, tc.payload); !strings.Contains(got, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", got, tc.wantErr)
			}
		})
	}
}

func TestServeControl_Socket(t *testing.T) {
	s := mustOpen(t, t.TempDir())
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
			s := mustOpen(t, t.TempDir())
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
				if got := run(t, s.Dir(), "acl list", Args{}, ""); got.err != "" {
					t.Errorf("through the new socket: %s", got)
				}
			}
		})
	}
}

func TestServeControl_LongPath(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	path := filepath.Join(s.Dir(), strings.Repeat("x", maxSocketPath))
	if _, err := ServeControl(context.Background(), &Env{Store: s}, path); err == nil || !strings.Contains(err.Error(), "use a shorter --data path") {
		t.Errorf("ServeControl on a %d-byte path: %v", len(path), err)
	}
}

// blockingCommand adds "test block", which signals started and then waits
// for its context; it reports the context's end on ended.
func blockingCommand(t *testing.T) (started, ended chan struct{}) {
	started, ended = make(chan struct{}), make(chan struct{})
	addTestCommand(t, Command{Name: "test block", Run: func(ctx context.Context, _ *Env, _ Args, _ Stdio) error {
		close(started)
		<-ctx.Done()
		close(ended)
		return ctx.Err()
	}})
	return started, ended
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
	started, ended := blockingCommand(t)
	s := mustOpen(t, t.TempDir())
	mustServe(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, s.Dir(), "test block", Args{}, Stdio{Out: io.Discard, Err: io.Discard}) }()
	waitClosed(t, started, "the command's start")
	cancel()
	waitClosed(t, ended, "the command's cancellation")
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestControl_StopCancelsCommand(t *testing.T) {
	started, ended := blockingCommand(t)
	s := mustOpen(t, t.TempDir())
	stop := mustServe(t, s)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), s.Dir(), "test block", Args{}, Stdio{Out: io.Discard, Err: io.Discard})
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
	s := mustOpen(t, t.TempDir())
	got := run(t, s.Dir(), "user list", Args{}, "")
	if !strings.Contains(got.err, "in use by another berth process, and no server answers on") {
		t.Errorf("got\n%s", got)
	}
}

func TestFrameReader(t *testing.T) {
	frame := func(typ frameType, n int) []byte {
		var buf bytes.Buffer
		(&frameWriter{w: &buf}).write(typ, bytes.Repeat([]byte{'a'}, n))
		return buf.Bytes()
	}
	tests := []struct {
		name     string
		input    []byte
		wantType frameType
		wantLen  int
		wantErr  error
	}{
		{"empty payload", frame(frameExit, 0), frameExit, 0, nil},
		{"largest payload", frame(frameStdout, maxFrame), frameStdout, maxFrame, nil},
		{"too large", []byte{'o', 0, 0x10, 0, 1}, 0, 0, errFrameTooLarge},
		{"clean end", nil, 0, 0, io.EOF},
		{"cut header", []byte{'o', 0}, 0, 0, io.ErrUnexpectedEOF},
		{"cut payload", frame(frameStdout, 10)[:8], 0, 0, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, payload, err := newFrameReader(bytes.NewReader(tc.input)).read()
			if !errors.Is(err, tc.wantErr) || typ != tc.wantType || len(payload) != tc.wantLen {
				t.Errorf("read(%q) = %q, %d bytes, %v; want %q, %d bytes, %v", tc.input[:min(len(tc.input), 8)], typ, len(payload), err, tc.wantType, tc.wantLen, tc.wantErr)
			}
		})
	}
}

// FuzzFrameReader: reading never panics, never returns more than maxFrame,
// and the frames read, written again, give back the input they came from.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("o\x00\x00\x00\x03abcx\x00\x00\x00\x00"))
	f.Add([]byte("q\x00\x00\x00\x02{}"))
	f.Add([]byte("o\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, input []byte) {
		fr := newFrameReader(bytes.NewReader(input))
		var again bytes.Buffer
		fw := &frameWriter{w: &again}
		for {
			typ, payload, err := fr.read()
			if err != nil {
				break
			}
			if len(payload) > maxFrame {
				t.Fatalf("payload of %d bytes", len(payload))
			}
			if err := fw.write(typ, payload); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(input, again.Bytes()) {
			t.Fatalf("frames re-encoded to %q, not a prefix of the input", again.Bytes())
		}
	})
}
