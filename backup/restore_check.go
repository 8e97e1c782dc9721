package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/berth-registry/berth/store"
)

// finish checks the filled directory and prepares it to serve: meta.db
// passes bbolt's page check, every record is one berth could have written
// (store.ValidateRecords), it records exactly the blobs the last header
// lists (name is that input), and agrees with the blob files; blobs only
// earlier snapshots had are removed, upload sessions dropped, and every
// directory synced. It returns the blobs and bytes the store holds and how
// many upload sessions it dropped.
func (r *restorer) finish(name string, last Header) (blobs int, bytes int64, dropped int, err error) {
	if err := r.bindObjects(); err != nil {
		return 0, 0, 0, err
	}
	s, err := store.Open(r.dir, store.Options{Blobs: r.objects})
	if errors.Is(err, store.ErrRecordInvalid) {
		return 0, 0, 0, fmt.Errorf("%s is refused: %w", name, err)
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("open the restored meta.db of %s: %w", name, err)
	}
	defer func() {
		if cerr := s.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close the restored store: %w", cerr)
		}
	}()
	if err := s.CheckPages(); err != nil {
		return 0, 0, 0, fmt.Errorf("the meta.db of %s is damaged: %w", name, err)
	}
	if err := s.ValidateRecords(r.checkRule); err != nil {
		return 0, 0, 0, fmt.Errorf("%s is refused: %w", name, err)
	}
	recorded, err := s.Blobs()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("list the restored blobs: %w", err)
	}
	want := last.Holds()
	for _, b := range recorded {
		if size, ok := want[b.Digest]; !ok || size != b.Size {
			return 0, 0, 0, fmt.Errorf("%s: meta.db records blob %s (%d bytes), which its header does not list", name, b.Digest, b.Size)
		}
		bytes += b.Size
	}
	if len(recorded) != len(want) {
		return 0, 0, 0, fmt.Errorf("%s: its header lists %d blobs, its meta.db records %d", name, len(want), len(recorded))
	}
	if err := r.removeUnrecorded(want); err != nil {
		return 0, 0, 0, err
	}
	if dropped, err = s.DropUploads(); err != nil {
		return 0, 0, 0, fmt.Errorf("drop upload sessions: %w", err)
	}
	faults, err := s.CheckConsistency()
	if err != nil {
		return 0, 0, 0, err
	}
	if len(faults) > 0 {
		return 0, 0, 0, fmt.Errorf("the restored store is inconsistent (%d faults), the first: %s", len(faults), faults[0])
	}
	return len(recorded), bytes, dropped, r.syncDirs()
}

// removeUnrecorded removes the blobs that earlier inputs brought and the
// last snapshot no longer records.
func (r *restorer) removeUnrecorded(want map[store.Digest]int64) error {
	for d := range r.have {
		if _, ok := want[d]; ok {
			continue
		}
		if st, ok := r.staged[d]; ok {
			r.dropObjects(map[store.Digest]store.StagedBlob{d: st})
			delete(r.staged, d)
			delete(r.have, d)
			continue
		}
		path := store.BlobPathIn(r.dir, d)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove blob %s that the last snapshot does not hold: %w", d, err)
		}
		// The shard directory goes too when it is left empty.
		if os.Remove(filepath.Dir(path)) == nil {
			delete(r.dirs, filepath.Dir(path))
		}
		delete(r.have, d)
	}
	return nil
}

// syncDirs makes every file's name durable before the directory is put in
// place: deepest directories first, the root last.
func (r *restorer) syncDirs() error {
	dirs := make([]string, 0, len(r.dirs)+2)
	for d := range r.dirs {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	dirs = append(dirs, store.UploadsDir(r.dir), r.dir)
	for _, d := range dirs {
		if err := store.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}
