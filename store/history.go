package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// historyKeep bounds each kind of history: a recorded run past the newest
// historyKeep of its kind is deleted in the transaction that records a new
// one, so the bucket never grows with the registry's age.
const historyKeep = 50

// History kinds, the first part of a history key.
const (
	historyGC     = "gc"
	historyBackup = "backup"
)

// GCRun is one garbage collection that could change the store (not a dry
// run), as the admin pages list them.
type GCRun struct {
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration"`
	Scheduled bool          `json:"scheduled,omitempty"` // run by serve --gc-interval, not by a command
	Manifests int           `json:"manifests"`
	Links     int           `json:"links"`
	Blobs     int           `json:"blobs"`
	Uploads   int           `json:"uploads"`
	Files     int           `json:"files"`
	Repos     int           `json:"repositories"` // empty repositories removed
	Bytes     int64         `json:"bytes"`        // what it freed
	Error     string        `json:"error,omitempty"`
}

// BackupRun is one backup written, full (Base empty) or incremental.
type BackupRun struct {
	Finished  time.Time     `json:"finished"`
	Duration  time.Duration `json:"duration"`
	ID        string        `json:"id"`
	Base      string        `json:"base,omitempty"` // the backup it follows; empty for a full one
	Path      string        `json:"path,omitempty"` // the file, as its writer named it; empty for a stream (stdout)
	Size      int64         `json:"size"`           // bytes of the archive
	Blobs     int           `json:"blobs"`
	BlobBytes int64         `json:"blob_bytes"`
}

// RecordGCRun adds r to the GC history, dropping the oldest past the
// newest 50.
func (s *Store) RecordGCRun(r GCRun) error { return s.record(historyGC, r) }

// RecordBackup adds r to the backup history, dropping the oldest past the
// newest 50.
func (s *Store) RecordBackup(r BackupRun) error { return s.record(historyBackup, r) }

// GCRuns returns the recorded GC runs, newest first (at most 50).
func (s *Store) GCRuns() ([]GCRun, error) { return readHistory[GCRun](s, historyGC) }

// Backups returns the recorded backups, newest first (at most 50).
func (s *Store) Backups() ([]BackupRun, error) { return readHistory[BackupRun](s, historyBackup) }

// record appends v under kind with the bucket's next sequence number, so
// the order is the order of recording, whatever the clocks say.
func (s *Store) record(kind string, v any) error {
	val, err := encode(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHistory)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(historyKey(kind, seq), val); err != nil {
			return err
		}
		// Collect the keys past the newest historyKeep, then delete: deleting
		// while iterating a cursor can skip keys.
		pre := prefix(kind)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		old := keys[:max(len(keys)-historyKeep, 0)]
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func historyKey(kind string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix(kind), seq)
}

// readHistory decodes the records of kind, newest first.
func readHistory[T any](s *Store, kind string) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		pre := prefix(kind)
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			var r T
			if err := decode(v, &r); err != nil {
				return fmt.Errorf("history %s %x: %w", kind, k[len(pre):], err)
			}
			out = append(out, r)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}
