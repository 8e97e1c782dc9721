package backup

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/store"
)

// A restore into an object store (RestoreOptions.Blobs): each blob entry is
// streamed into a new object, hashed on the way (the store's Write refuses
// a digest or size mismatch and leaves nothing), and the restored meta.db is
// bound to the objects before it is opened (store.BindBlobs). A failed
// restore removes the objects it wrote; so does the end of a chain for the
// blobs its last snapshot no longer records.

// writeObject writes the current entry as blob d into the object store.
func (r *restorer) writeObject(a *archive, name string, d store.Digest, size int64) error {
	staged, err := r.objects.Write(r.ctx, d, size, &ctxReader{r.ctx, a.read()})
	switch {
	case errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeInvalid):
		return fmt.Errorf("%s: entry %q does not match its name: %v; the backup is corrupt", a.name, name, err)
	case err != nil:
		return fmt.Errorf("write blob %s to %s: %w", d, r.objects.Location(), err)
	}
	if old, ok := r.staged[d]; ok {
		// An incremental lists a blob again: keep one object.
		r.objects.Discard(context.Background(), old)
	}
	r.staged[d] = staged
	r.have[d] = size
	return nil
}

// bindObjects records in the restored meta.db where its blobs are: the
// objects written, or DATA/blobs.
func (r *restorer) bindObjects() error {
	loc, keys := store.DirLocation, map[store.Digest]string{}
	if r.objects != nil {
		loc = r.objects.Location()
		for d, st := range r.staged {
			keys[d] = st.Ref().Key
		}
	}
	if err := store.BindBlobs(r.dir, loc, keys); err != nil {
		return fmt.Errorf("record the restored blobs' store: %w", err)
	}
	return nil
}

// dropObjects removes the objects of staged from the object store.
func (r *restorer) dropObjects(staged map[store.Digest]store.StagedBlob) {
	for _, st := range staged {
		r.objects.Discard(context.Background(), st)
	}
}
