package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
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

// encodeManifest lays out: version byte, 4-byte head length, JSON head, body.
func encodeManifest(rec manifestRecord, body []byte) ([]byte, error) {
	head, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 5+len(head)+len(body))
	out = append(out, recordVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	return append(out, body...), nil
}

// decodeManifest splits a stored value. body aliases v: copy it before the
// transaction ends.
func decodeManifest(v []byte) (rec manifestRecord, body []byte, err error) {
	if len(v) < 5 || v[0] != recordVersion {
		return rec, nil, fmt.Errorf("manifest record has unknown version")
	}
	n := binary.BigEndian.Uint32(v[1:5])
	if uint64(len(v)) < 5+uint64(n) {
		return rec, nil, fmt.Errorf("manifest record is truncated")
	}
	if err := json.Unmarshal(v[5:5+n], &rec); err != nil {
		return rec, nil, fmt.Errorf("manifest record: %w", err)
	}
	return rec, v[5+n:], nil
}

// uploadRecord is the value of uploads/<id>.
type uploadRecord struct {
	Repo      string `json:"repo"`
	Owner     string `json:"owner,omitempty"` // who started it, for the per-owner cap; "" before the cap existed
	Offset    int64  `json:"offset"`
	HashState []byte `json:"hashState"` // sha256 state of the first Offset bytes
	Started   int64  `json:"started"`
	Updated   int64  `json:"updated"`
}
