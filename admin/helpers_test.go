package admin

import (
	"bytes"
	"context"
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

func (r result) String() string {
	return "stdout:\n" + r.out + "stderr:\n" + r.errOut + "error: " + r.err
}

// call runs op through Call, the CLI's entry point, on dir.
func call[Req, Res any](t *testing.T, dir string, op *Op[Req, Res], req Req, stdin string) result {
	t.Helper()
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
	local := call(t, tw.local, op, req, stdin)
	remote := call(t, tw.remote.Dir(), op, req, stdin)
	if local != remote {
		t.Fatalf("%s %+v: output differs\nlocal:\n%s\nthrough the socket:\n%s", op.Name, req, local, remote)
	}
	return local
}
