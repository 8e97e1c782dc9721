package admin

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// BenchmarkCall_UserList is one small operation, in this process and
// through the control socket: what the HTTP round trip costs.
func BenchmarkCall_UserList(b *testing.B) {
	tw := benchTwin(b)
	for _, way := range []struct{ name, dir string }{{"local", tw.local}, {"socket", tw.remote.Dir()}} {
		b.Run(way.name, func(b *testing.B) {
			for range b.N {
				if err := Call(context.Background(), way.dir, UserListOp, UserList{}, Stdio{Out: io.Discard}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCall_Backup streams a backup of a 64 MiB blob in this process
// and through the control socket; MB/s is of the archive's input.
func BenchmarkCall_Backup(b *testing.B) {
	tw := benchTwin(b)
	blob := make([]byte, 64<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	d := store.DigestOf(store.SHA256, blob)
	local, err := store.Open(tw.local, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []*store.Store{local, tw.remote} {
		if _, err := s.PutBlob("big", d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
			b.Fatal(err)
		}
	}
	local.Close()
	for _, way := range []struct{ name, dir string }{{"local", tw.local}, {"socket", tw.remote.Dir()}} {
		b.Run(way.name, func(b *testing.B) {
			b.SetBytes(int64(len(blob)))
			for range b.N {
				if err := Call(context.Background(), way.dir, BackupOp, Backup{}, Stdio{Out: io.Discard}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchTwin(b *testing.B) *twin {
	b.Helper()
	remote := storetest.Open(b, b.TempDir())
	stop, err := ServeControl(context.Background(), &Env{Store: remote}, SocketPath(remote.Dir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return &twin{local: b.TempDir(), remote: remote}
}
