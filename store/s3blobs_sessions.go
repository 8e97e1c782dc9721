package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path"

	"github.com/minio/minio-go/v7"
)

// The S3 store's sessions as GC sees them: the bucket's unfinished
// multipart uploads under the blobs prefix. One belongs to the upload
// session its key names (newKey); a monolithic upload's (Write) belongs to
// none that has a record.

var _ SessionLister = (*s3Blobs)(nil)

// s3Multipart is the Handle of a StoredSession of the S3 store.
type s3Multipart struct {
	Key      string `json:"key"`
	UploadID string `json:"uploadId"`
}

func (b *s3Blobs) WalkSessions(ctx context.Context, fn func(StoredSession) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing goroutine when fn stops early
	for u := range b.core.Client.ListIncompleteUploads(ctx, b.bucket, b.prefix+"blobs/", true) {
		if u.Err != nil {
			return s3Error("list multipart uploads", u.Err)
		}
		handle, err := json.Marshal(s3Multipart{Key: u.Key, UploadID: u.UploadID})
		if err != nil {
			return err
		}
		id := path.Base(u.Key)
		if !ValidUploadID(id) || b.newKey(id) != u.Key {
			id = ""
		}
		err = fn(StoredSession{ID: id, Name: fmt.Sprintf("multipart upload %s (%s)", u.Key, u.UploadID), Started: u.Initiated, Handle: handle})
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (b *s3Blobs) AbortStored(ctx context.Context, s StoredSession) error {
	var m s3Multipart
	if err := json.Unmarshal(s.Handle, &m); err != nil || m.UploadID == "" {
		return fmt.Errorf("%s: not a multipart upload of this store", s.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	err := b.core.AbortMultipartUpload(ctx, b.bucket, m.Key, m.UploadID)
	if c := minio.ToErrorResponse(err).Code; err != nil && c != "NoSuchUpload" {
		return s3Error("abort multipart upload", err)
	}
	return nil
}
