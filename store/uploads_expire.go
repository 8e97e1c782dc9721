package store

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ExpireUploads removes the upload sessions that received nothing for ttl,
// with their data, and returns them. It is the upload part of GC, run on
// its own by the server so abandoned sessions do not pile up where nobody
// schedules gc; the same checks keep it safe against a chunk arriving
// meanwhile (see sweepUploads). A non-positive ttl removes nothing.
func (s *Store) ExpireUploads(ctx context.Context, ttl time.Duration) ([]RemovedUpload, error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	if ttl <= 0 {
		return nil, nil
	}
	p := &gcPlan{}
	err := s.db.View(func(tx *bolt.Tx) error { return p.planUploads(tx, s.now().Add(-ttl)) })
	if err != nil {
		return nil, fmt.Errorf("expire uploads: %w", err)
	}
	var r GCReport
	if err := s.sweepUploads(ctx, p, &r, GCOptions{}); err != nil {
		return r.Uploads, err
	}
	return r.Uploads, nil
}
