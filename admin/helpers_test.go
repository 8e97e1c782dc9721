package admin

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-registry/berth/store"
)

// mustOpen opens a store on dir and, on cleanup, closes it after checking
// meta.db's consistency.
func mustOpen(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { mustCheckClose(t, s) })
	return s
}

// mustCheckClose checks meta.db and closes s. Closing twice is harmless.
func mustCheckClose(t *testing.T, s *store.Store) {
	t.Helper()
	err := s.DB().View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker uses tx until it closes
			if first == nil {
				first = err
			}
		}
		return first
	})
	if err != nil && !strings.Contains(err.Error(), "database not open") {
		t.Errorf("meta.db check: %v", err)
	}
	s.Close()
}

// mustServe serves the control socket of an open store until cleanup.
func mustServe(t *testing.T, s *store.Store) (stop func()) {
	t.Helper()
	stop, err := ServeControl(context.Background(), &Env{Store: s}, SocketPath(s.Dir()))
	if err != nil {
		t.Fatalf("ServeControl: %v", err)
	}
	t.Cleanup(stop)
	return stop
}

// result is what one run of a command gave.
type result struct {
	out, errOut string
	err         string // "" on success
}

// in returns r with the data directory dir written as DATA.
func (r result) in(dir string) result {
	rp := strings.NewReplacer(dir, "DATA")
	return result{out: rp.Replace(r.out), errOut: rp.Replace(r.errOut), err: rp.Replace(r.err)}
}

func (r result) String() string {
	return "stdout:\n" + r.out + "stderr:\n" + r.errOut + "error: " + r.err
}

// run runs a command through Run, the CLI's entry point, on dir, which
// becomes a data directory first if it is not one (Run refuses those).
func run(t *testing.T, dir, name string, args Args, stdin string) result {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "meta.db")); errors.Is(err, fs.ErrNotExist) {
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	var out, errOut bytes.Buffer
	stdio := Stdio{Out: &out, Err: &errOut}
	if stdin != "" {
		stdio.In = strings.NewReader(stdin)
	}
	var r result
	if err := Run(context.Background(), dir, name, args, stdio); err != nil {
		r.err = err.Error()
	}
	r.out, r.errOut = out.String(), errOut.String()
	return r
}

// twin is two data directories that receive the same commands: one with
// the server stopped (commands open it themselves) and one served over its
// control socket. Every command must give the same output on both.
type twin struct {
	local  string
	remote *store.Store // the serving process's store
}

func newTwin(t *testing.T) *twin {
	t.Helper()
	local := t.TempDir()
	t.Cleanup(func() {
		s, err := store.Open(local, store.Options{})
		if err != nil {
			t.Errorf("reopen local data directory: %v", err)
			return
		}
		mustCheckClose(t, s)
	})
	remote := mustOpen(t, t.TempDir())
	mustServe(t, remote)
	return &twin{local: local, remote: remote}
}

// run runs a command on both directories, fails the test when the results
// differ, and returns the result.
func (tw *twin) run(t *testing.T, name string, args Args, stdin string) result {
	t.Helper()
	// The two data directories differ only in their paths, which hints
	// (`berth --data DIR ...`) name: compare with each path as DATA.
	local := run(t, tw.local, name, args, stdin).in(tw.local)
	remote := run(t, tw.remote.Dir(), name, args, stdin).in(tw.remote.Dir())
	if local != remote {
		t.Fatalf("%s %q: output differs\nlocal:\n%s\nthrough the socket:\n%s", name, args.Words, local, remote)
	}
	return local
}

// syncBuffer is a bytes.Buffer safe for concurrent use: a server logs from
// its own goroutines while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRun_NotDataDir: a maintenance command on a directory that is not a
// data directory (a wrong --data) fails and creates nothing there.
func TestRun_NotDataDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
		want string
	}{
		{"empty", func(t *testing.T) string { return t.TempDir() }, "it holds no meta.db"},
		{"absent", func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }, "it does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			err := Run(context.Background(), dir, "user list", Args{}, Stdio{})
			if err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), "is not a berth data directory: "+tc.want) {
				t.Fatalf("user list on %s: %v", dir, err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("%s holds %d entries after the refusal, want none", dir, len(entries))
			}
		})
	}
}
