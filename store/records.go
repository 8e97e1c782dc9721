package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// recordVersion is the first byte of every JSON-encoded value, so a later
// schema can tell old values from new ones.
const recordVersion = 1

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{recordVersion}, b...), nil
}

func decode(b []byte, v any) error {
	if len(b) == 0 || b[0] != recordVersion {
		return fmt.Errorf("record has unknown version")
	}
	return json.Unmarshal(b[1:], v)
}

// blobRecord is the value of blobs/<digest>.
type blobRecord struct {
	Size    int64 `json:"size"`
	Created int64 `json:"created"` // unix nanoseconds
	// Key is the object that holds the bytes on a keyed blob store (S3);
	// "" on the directory, whose path follows from the digest.
	Key string `json:"key,omitempty"`
}

// timeValue encodes a time as 8 big-endian bytes of unix nanoseconds: the
// value of links and repos, read on every pull, so kept cheaper than JSON.
func timeValue(t time.Time) []byte {
	var b [9]byte
	b[0] = recordVersion
	binary.BigEndian.PutUint64(b[1:], uint64(t.UnixNano()))
	return b[:]
}

func parseTimeValue(b []byte) time.Time {
	if len(b) != 9 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))
}

// manifestRecord is the head of a manifests/<repo>\x00<digest> value; the
// manifest body follows it unchanged, so GET serves the stored bytes exactly
// without a JSON round trip of the body.
type manifestRecord struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      Digest            `json:"subject,omitempty"`
	Blobs        []Digest          `json:"blobs,omitempty"`
	Children     []Digest          `json:"children,omitempty"`
	Created      int64             `json:"created"`
}

// manifestRecordVersion is the first byte of a manifests value. Version 1
// (schema 1) had a JSON head; version 2 (schema 2) puts the fields a pull
// needs first, in binary, so GET and HEAD decode no JSON (Open migrates
// version 1 records: migrate.go).
const manifestRecordVersion = 2

// encodeManifest lays out a version 2 record:
//
//	version byte (2) | uint32 head length | head | body
//	head: int64 created | uint16 media type length | media type | JSON of the rest
//
// all integers big-endian. The framing (version, head length, head, body)
// is that of version 1, so the body's size is read without decoding
// anything (manifestBodySize).
func encodeManifest(rec manifestRecord, body []byte) ([]byte, error) {
	rest, err := json.Marshal(manifestRest{
		ArtifactType: rec.ArtifactType, Annotations: rec.Annotations, Subject: rec.Subject,
		Blobs: rec.Blobs, Children: rec.Children,
	})
	if err != nil {
		return nil, err
	}
	if len(rec.MediaType) > math.MaxUint16 {
		return nil, fmt.Errorf("media type of %d bytes", len(rec.MediaType))
	}
	headLen := 8 + 2 + len(rec.MediaType) + len(rest)
	out := make([]byte, 0, 5+headLen+len(body))
	out = append(out, manifestRecordVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(headLen))
	out = binary.BigEndian.AppendUint64(out, uint64(rec.Created))
	out = binary.BigEndian.AppendUint16(out, uint16(len(rec.MediaType)))
	out = append(out, rec.MediaType...)
	out = append(out, rest...)
	return append(out, body...), nil
}

// manifestRest is the JSON part of a version 2 record's head: what listings,
// GC and the web UI read, and a pull does not.
type manifestRest struct {
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      Digest            `json:"subject,omitempty"`
	Blobs        []Digest          `json:"blobs,omitempty"`
	Children     []Digest          `json:"children,omitempty"`
}

// manifestHead is the binary part of a version 2 record: what a pull needs.
// mediaType, rest and body alias the stored value.
type manifestHead struct {
	created   int64
	mediaType []byte
	rest      []byte // JSON of manifestRest
	body      []byte
}

// decodeManifestHead reads a version 2 record's framing and binary head,
// decoding no JSON.
func decodeManifestHead(v []byte) (manifestHead, error) {
	var h manifestHead
	if len(v) < 5 || v[0] != manifestRecordVersion {
		return h, fmt.Errorf("manifest record has unknown version")
	}
	n := uint64(binary.BigEndian.Uint32(v[1:5]))
	if uint64(len(v)) < 5+n || n < 10 {
		return h, fmt.Errorf("manifest record is truncated")
	}
	head := v[5 : 5+n]
	h.created = int64(binary.BigEndian.Uint64(head))
	m := uint64(binary.BigEndian.Uint16(head[8:]))
	if 10+m > n {
		return h, fmt.Errorf("manifest record is truncated")
	}
	h.mediaType, h.rest, h.body = head[10:10+m], head[10+m:], v[5+n:]
	return h, nil
}

// decodeManifest splits a stored value. body aliases v: copy it before the
// transaction ends.
func decodeManifest(v []byte) (rec manifestRecord, body []byte, err error) {
	h, err := decodeManifestHead(v)
	if err != nil {
		return rec, nil, err
	}
	var rest manifestRest
	if err := json.Unmarshal(h.rest, &rest); err != nil {
		return rec, nil, fmt.Errorf("manifest record: %w", err)
	}
	return manifestRecord{
		MediaType: string(h.mediaType), ArtifactType: rest.ArtifactType, Annotations: rest.Annotations,
		Subject: rest.Subject, Blobs: rest.Blobs, Children: rest.Children, Created: h.created,
	}, h.body, nil
}

// uploadRecord is the value of uploads/<id>.
type uploadRecord struct {
	Repo      string `json:"repo"`
	Owner     string `json:"owner,omitempty"` // who started it, for the per-owner cap; "" before the cap existed
	Offset    int64  `json:"offset"`
	HashState []byte `json:"hashState"`         // sha256 state of the first Offset bytes; none before the first byte
	Backend   []byte `json:"backend,omitempty"` // the blob store's session state (Session.State)
	Started   int64  `json:"started"`
	Updated   int64  `json:"updated"`
}
