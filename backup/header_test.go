package backup

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const validHeader = `{"format":"berth-backup","version":1,"berth":"v1.0.0","created":"2026-01-02T03:04:05Z",` +
	`"id":"0123456789abcdef0123456789abcdef","metaSize":32768,` +
	`"blobs":[{"digest":"sha256:` + hex64 + `","size":3}]}`

func TestDecodeHeader(t *testing.T) {
	edit := func(old, new string) string { return strings.Replace(validHeader, old, new, 1) }
	for _, tc := range []struct {
		name, input string
		reason      string // part of the error; empty: accepted
	}{
		{name: "OK", input: validHeader},
		{name: "Incremental", input: edit(`"metaSize"`, `"base":"fedcba9876543210fedcba9876543210","metaSize"`)},
		{name: "NotJSON", input: "PK\x03\x04", reason: "not a berth backup"},
		{name: "OtherFormat", input: edit(`berth-backup`, `docker-save`), reason: "not a berth backup"},
		{name: "NewerVersion", input: edit(`"version":1`, `"version":2`), reason: "format version 2"},
		{name: "ShortID", input: edit(`0123456789abcdef0123456789abcdef`, `0123`), reason: "id"},
		{name: "UpperID", input: edit(`0123456789abcdef0123456789abcdef`, `0123456789ABCDEF0123456789ABCDEF`), reason: "id"},
		{name: "SelfBase", input: edit(`"metaSize"`, `"base":"0123456789abcdef0123456789abcdef","metaSize"`), reason: "base"},
		{name: "NoMeta", input: edit(`"metaSize":32768`, `"metaSize":0`), reason: "meta.db size"},
		{name: "BadDigest", input: edit(`sha256:`+hex64, `sha256:../../etc`), reason: "invalid digest"},
		{name: "NegativeSize", input: edit(`"size":3`, `"size":-3`), reason: "size -3"},
		{name: "Twice", input: edit(`"metaSize"`, `"inherited":[{"digest":"sha256:`+hex64+`","size":3}],"metaSize"`), reason: "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := decodeHeader([]byte(tc.input))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("decodeHeader(%s): %v", tc.input, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("decodeHeader(%s) = %+v, %v; want an error saying %q", tc.input, h, err, tc.reason)
			}
		})
	}
}

// FuzzDecodeHeader checks that decodeHeader never panics, that what it
// accepts is valid, and that an accepted header survives encoding and
// decoding unchanged.
func FuzzDecodeHeader(f *testing.F) {
	f.Add([]byte(validHeader))
	f.Add([]byte(`{"format":"berth-backup","version":2}`))
	f.Add([]byte(`{"format":"berth-backup","version":1,"id":"0123456789abcdef0123456789abcdef","metaSize":1,"blobs":[],"inherited":[{"digest":"sha512:` + hex128 + `","size":0}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		if err := h.validate(); err != nil {
			t.Fatalf("accepted an invalid header: %v", err)
		}
		again, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := decodeHeader(again)
		if err != nil {
			t.Fatalf("re-encoded header refused: %v\n%s", err, again)
		}
		if !h2.Created.Equal(h.Created) {
			t.Fatalf("created %v became %v", h.Created, h2.Created)
		}
		h2.Created = h.Created
		if !reflect.DeepEqual(emptyAsNil(h), emptyAsNil(h2)) {
			t.Fatalf("round trip changed the header:\n%+v\n%+v", h, h2)
		}
	})
}

// emptyAsNil makes empty lists nil: JSON leaves out an empty "inherited".
func emptyAsNil(h Header) Header {
	if len(h.Blobs) == 0 {
		h.Blobs = nil
	}
	if len(h.Inherited) == 0 {
		h.Inherited = nil
	}
	return h
}
