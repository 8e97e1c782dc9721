package admin

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

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

// result is what one run of an operation gave.
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

// call runs op through Call, the CLI's entry point, on dir, which becomes
// a data directory first if it is not one (Call refuses those).
func call[Req, Res any](t *testing.T, dir string, op *Op[Req, Res], req Req, stdin string) result {
	t.Helper()
	if _, err := os.Stat(store.MetaPath(dir)); errors.Is(err, fs.ErrNotExist) {
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	var out, errOut bytes.Buffer
	stdio := Stdio{Out: &out, Err: &errOut, In: strings.NewReader(stdin)}
	var r result
	if err := Call(context.Background(), dir, op, req, stdio); err != nil {
		r.err = err.Error()
	}
	r.out, r.errOut = out.String(), errOut.String()
	return r
}

// twin is two data directories that receive the same operations: one with
// the server stopped (Call opens it itself) and one served over its
// control socket. Every operation must give the same output on both.
type twin struct {
	local  string
	remote *store.Store // the serving process's store
}

func newTwin(t *testing.T) *twin {
	t.Helper()
	local := t.TempDir()
	storetest.CheckClose(t, storetest.Open(t, local)) // a data directory, as Call requires
	t.Cleanup(func() {
		s, err := store.Open(local, store.Options{})
		if err != nil {
			t.Errorf("reopen local data directory: %v", err)
			return
		}
		storetest.CheckClose(t, s)
	})
	remote := storetest.Open(t, t.TempDir())
	mustServe(t, remote)
	return &twin{local: local, remote: remote}
}

// both runs op on both directories of tw, fails the test when the results
// differ, and returns the result.
func both[Req, Res any](t *testing.T, tw *twin, op *Op[Req, Res], req Req, stdin string) result {
	t.Helper()
	// The two data directories differ only in their paths, which hints
	// (`berth --data DIR ...`) name: compare with each path as DATA.
	local := call(t, tw.local, op, req, stdin).in(tw.local)
	remote := call(t, tw.remote.Dir(), op, req, stdin).in(tw.remote.Dir())
	if local != remote {
		t.Fatalf("%s %+v: output differs\nlocal:\n%s\nthrough the socket:\n%s", op.Name, req, local, remote)
	}
	return local
}

// TestRun_NotDataDir: a maintenance command on a directory that is not a
// data directory (a wrong --data) fails and creates nothing there.
func TestCall_NotDataDir(t *testing.T) {
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
			err := Call(context.Background(), dir, UserListOp, UserList{}, Stdio{})
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
