package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/internal/storetest"
)

// berthBin is the binary under test, built once by TestMain.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	if bin := os.Getenv("BERTH_TEST_BIN"); bin != "" {
		// A binary built elsewhere, such as an older commit's, for an
		// A/B of benchmarks (docs/performance.md).
		berthBin = bin
	} else {
		build := exec.Command("go", "build", "-o", berthBin, "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running berth process.
type server struct {
	Addr string // host:port on 127.0.0.1
	Data string
	cmd  *exec.Cmd
	log  *storetest.SyncBuffer
	// logPath is the file the server logs to instead of log, when it was
	// started by startBenchServer.
	logPath string
	done    chan struct{}
}

// URL returns http://addr + path, or path when it is already absolute (a
// Location from distribution's registry, which bench-compare also drives).
func (s *server) URL(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	return "http://" + s.Addr + path
}

// Log returns what the server wrote to stderr so far.
func (s *server) Log() string {
	if s.logPath != "" {
		b, _ := os.ReadFile(s.logPath)
		return string(b)
	}
	return s.log.String()
}

// startServer runs `berth serve` on a free 127.0.0.1 port with a temp data
// dir (or data, when not empty) and waits until /healthz answers. Without an
// --auth argument it serves with --auth none. The process is stopped when
// the test ends.
func startServer(t testing.TB, data string, args ...string) *server {
	t.Helper()
	if !hasFlag(args, "--auth") {
		args = append(args, "--auth", "none")
	}
	return launch(t, data, nil, healthy, args...)
}

// startBenchServer is startServer for benchmarks: the server logs to a file
// rather than through a pipe into this process, since copying every access
// log line would cost the load generator CPU on the cores it shares with
// the servers (distribution's access log is off in bench-compare, so it
// costs the client nothing either). The server still writes every line.
func startBenchServer(t testing.TB, data string, args ...string) *server {
	t.Helper()
	if !hasFlag(args, "--auth") {
		args = append(args, "--auth", "none")
	}
	return launchWith(t, data, nil, healthy, true, args...)
}

// healthy reports whether s answers /healthz with 200.
func healthy(s *server) bool {
	resp, err := http.Get(s.URL("/healthz"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// launch starts `berth serve` like startServer, with env added to the
// process's environment, and waits until ready answers true.
func launch(t testing.TB, data string, env []string, ready func(*server) bool, args ...string) *server {
	t.Helper()
	return launchWith(t, data, env, ready, false, args...)
}

// launchWith is launch, with the server's output written to a file when
// toFile is set (startBenchServer).
func launchWith(t testing.TB, data string, env []string, ready func(*server) bool, toFile bool, args ...string) *server {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	addr := freeAddr(t)
	cmd := exec.Command(berthBin, append([]string{"serve", "--data", data, "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &storetest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	var logFile *os.File
	if toFile {
		f, err := os.Create(filepath.Join(t.TempDir(), "berth.log"))
		if err != nil {
			t.Fatal(err)
		}
		logFile, cmd.Stdout, cmd.Stderr = f, f, f
	}
	err := cmd.Start()
	if logFile != nil {
		logFile.Close() // the child has its own descriptor
	}
	if err != nil {
		t.Fatalf("start berth: %v", err)
	}
	s := &server{Addr: addr, Data: data, cmd: cmd, log: logs, done: make(chan struct{})}
	if logFile != nil {
		s.logPath = logFile.Name()
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for !ready(s) {
		select {
		case <-s.done:
			t.Fatalf("berth exited before it was ready:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth did not become ready in 15s:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// stop sends SIGTERM and waits for the process, killing it after 10s.
func (s *server) stop(t testing.TB) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("berth did not stop within 10s of SIGINT")
	}
}

// kill stops the process at once, as a crash would.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return fixtures.FreeLoopbackAddr(t)
}

// runBerth runs a berth subcommand against data and returns its stdout,
// stderr and error.
func runBerth(t testing.TB, ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, berthBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// logLines returns the server log lines that contain substr.
func (s *server) logLines(substr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}
