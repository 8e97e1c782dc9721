package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// TestWriteRestore_Full backs up a store with an upload in progress and
// restores it into a new directory: every record but the upload session,
// and every blob file, comes back the same.
func TestWriteRestore_Full(t *testing.T) {
	live := t.TempDir()
	s := storetest.Open(t, live)
	fillStore(t, s)
	if _, err := s.StartUpload("app", "", 0); err != nil {
		t.Fatal(err)
	}
	archive, h := writeBackup(t, s, nil)
	s.Close()
	if h.Incremental() || len(h.Inherited) != 0 || len(h.Blobs) != 9 {
		t.Fatalf("header: base %q, %d blobs, %d inherited; want a full backup of 9 blobs", h.Base, len(h.Blobs), len(h.Inherited))
	}
	if !slices.IsSortedFunc(h.Blobs, func(a, b Blob) int { return compareDigest(a.Digest, b.Digest) }) {
		t.Error("header blobs are not sorted by digest")
	}

	restored := filepath.Join(t.TempDir(), "data")
	res, err := restore(restored, false, archive)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.Blobs != 9 || res.DroppedUploads != 1 || res.Replaced {
		t.Errorf("result %+v: want 9 blobs, 1 dropped upload, nothing replaced", res)
	}
	if got, want := dumpStore(t, restored), dumpStore(t, live); got != want {
		t.Fatalf("restored store differs from the live one\nrestored:\n%s\nlive:\n%s", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(restored)); len(entries) != 1 {
		t.Errorf("the restore left %d entries beside the data directory, want only it", len(entries))
	}
}

func compareDigest(a, b store.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestWriteRestore_IncrementalChain takes a full backup and two
// incrementals while images come and go, and restores every prefix of the
// chain to the state its last snapshot saw.
func TestWriteRestore_IncrementalChain(t *testing.T) {
	live := t.TempDir()
	s := storetest.Open(t, live)
	fillStore(t, s)
	full, fullHdr := writeBackup(t, s, nil)
	states := []string{snapshotOf(t, s)}

	// Between the full backup and the first incremental: a new image that
	// reuses a layer, and the tools image deleted and collected.
	storetest.PushImage(t, s, "app", "v2", nil, "base layer", "v2 layer")
	cli, _ := s.Manifest("tools/cli", store.Reference{Tag: "latest"})
	if err := s.DeleteManifest("tools/cli", store.Reference{Digest: cli.Digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CollectGarbage(context.Background(), store.GCOptions{Grace: store.NoAge}); err != nil {
		t.Fatal(err)
	}
	inc1, inc1Hdr := writeBackup(t, s, &fullHdr)
	states = append(states, snapshotOf(t, s))
	if inc1Hdr.Base != fullHdr.ID || len(inc1Hdr.Blobs) != 2 {
		t.Fatalf("first incremental: base %q, %d blobs (%v); want base %q and the 2 new blobs", inc1Hdr.Base, len(inc1Hdr.Blobs), inc1Hdr.Blobs, fullHdr.ID)
	}

	// The collected layer comes back, which the first incremental does not
	// list: the second must hold it again.
	storetest.PushImage(t, s, "tools/cli", "latest", nil, "base layer", "cli layer")
	inc2, inc2Hdr := writeBackup(t, s, &inc1Hdr)
	states = append(states, snapshotOf(t, s))
	if inc2Hdr.Base != inc1Hdr.ID || len(inc2Hdr.Blobs) != 2 {
		t.Fatalf("second incremental: base %q, %d blobs; want base %q and 2 blobs (config and the re-pushed layer)", inc2Hdr.Base, len(inc2Hdr.Blobs), inc1Hdr.ID)
	}

	chain := [][]byte{full, inc1, inc2}
	for n := 1; n <= len(chain); n++ {
		t.Run(string(rune('0'+n))+" inputs", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := restore(dir, false, chain[:n]...); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if got := dumpStore(t, dir); got != states[n-1] {
				t.Fatalf("restored store differs from the snapshot of input %d\nrestored:\n%s\nsnapshot:\n%s", n, got, states[n-1])
			}
		})
	}
}

// snapshotOf dumps s as it is now, through a copy made by a backup: s stays
// open.
func snapshotOf(t *testing.T, s *store.Store) string {
	t.Helper()
	archive, _ := writeBackup(t, s, nil)
	dir := filepath.Join(t.TempDir(), "snap")
	if _, err := restore(dir, false, archive); err != nil {
		t.Fatal(err)
	}
	return dumpStore(t, dir)
}

// TestWrite_WhileGC deletes every image and collects garbage in the middle
// of a backup's blob copy: the pinned blobs survive until the backup is
// done, it restores whole, and the next collection frees them.
func TestWrite_WhileGC(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	fillStore(t, s)
	want := snapshotOf(t, s)
	_, before := writeBackup(t, s, nil)
	var gcErr error
	gcRan := false
	var buf bytes.Buffer
	opts := Options{Progress: func(done, total int64) {
		// Once meta.db is copied: while it is, the read transaction is
		// open on this goroutine, and bbolt forbids a write beside it.
		if gcRan || done <= before.MetaSize {
			return
		}
		gcRan = true
		// On another goroutine, as a server would: this one is the backup's.
		ch := make(chan error)
		go func() { ch <- deleteEverything(s) }()
		gcErr = <-ch
	}}
	if _, err := Write(context.Background(), s, &buf, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !gcRan || gcErr != nil {
		t.Fatalf("gc during the backup: ran %v, %v", gcRan, gcErr)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := restore(dir, false, buf.Bytes()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := dumpStore(t, dir); got != want {
		t.Fatalf("restored store differs from the snapshot\nrestored:\n%s\nsnapshot:\n%s", got, want)
	}
	r, err := s.CollectGarbage(context.Background(), store.GCOptions{Grace: store.NoAge})
	if err != nil || len(r.Blobs) != 9 {
		t.Fatalf("gc after the backup removed %d blobs (%v), want all 9", len(r.Blobs), err)
	}
}

// deleteEverything deletes every tag and manifest and collects garbage.
func deleteEverything(s *store.Store) error {
	for _, repo := range []string{"app", "tools/cli"} {
		tags, _, err := s.Tags(repo, "", 0)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if err := s.DeleteManifest(repo, store.Reference{Tag: tag}); err != nil {
				return err
			}
		}
	}
	_, err := s.CollectGarbage(context.Background(), store.GCOptions{Grace: store.NoAge})
	return err
}

// TestRestore_Target checks the rules about the data directory.
func TestRestore_Target(t *testing.T) {
	src := storetest.Open(t, t.TempDir())
	fillStore(t, src)
	archive, _ := writeBackup(t, src, nil)

	t.Run("EmptyDirectory", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := restore(dir, false, archive); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("NotEmptyWithoutForce", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "keep"), []byte("mine"), 0o600)
		before := treeOf(t, filepath.Dir(dir))
		if _, err := restore(dir, false, archive); !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("Restore: %v, want ErrNotEmpty", err)
		}
		if after := treeOf(t, filepath.Dir(dir)); !mapsEqual(before, after) {
			t.Fatal("a refused restore changed the directory or its parent")
		}
	})
	t.Run("Force", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		old := storetest.Open(t, dir)
		storetest.PushImage(t, old, "old", "v1", nil, "old layer")
		old.Close()
		res, err := restore(dir, true, archive)
		if err != nil || !res.Replaced || res.Leftover != "" {
			t.Fatalf("Restore --force: %+v, %v", res, err)
		}
		if got, want := dumpStore(t, dir), snapshotOf(t, src); got != want {
			t.Fatal("the forced restore does not hold the backup")
		}
		if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
			t.Errorf("%d entries beside the data directory, want only it", len(entries))
		}
	})
	t.Run("InUse", func(t *testing.T) {
		dir := t.TempDir()
		storetest.Open(t, dir) // stays open: the lock a server holds
		before := treeOf(t, dir)
		if _, err := restore(dir, true, archive); !errors.Is(err, ErrInUse) {
			t.Fatalf("Restore into an open store: %v, want ErrInUse", err)
		}
		if after := treeOf(t, dir); !mapsEqual(before, after) {
			t.Fatal("a refused restore changed the data directory")
		}
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReadHeader(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	fillStore(t, s)
	archive, want := writeBackup(t, s, nil)
	got, err := ReadHeader(bytes.NewReader(archive), "full")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || len(got.Blobs) != len(want.Blobs) || got.Berth != "test" || got.Version != FormatVersion {
		t.Fatalf("ReadHeader = %+v, want %+v", got, want)
	}
	if _, err := ReadHeader(bytes.NewReader([]byte("plain text")), "notes.txt"); !errors.Is(err, ErrNotBackup) {
		t.Fatalf("ReadHeader of text: %v, want ErrNotBackup", err)
	}
}
