package store

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestQuota(t *testing.T) {
	s := mustOpen(t)
	if err := s.SetQuota(QuotaNamespace, "team", 10_000); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("a"), 6000)
	bigD := mustPutBlob(t, s, "team/a", big)
	mustPutBlob(t, s, "team/b", big) // shared: counted once in the namespace
	usage := func() int64 {
		t.Helper()
		qs, err := s.Quotas()
		if err != nil || len(qs) != 1 {
			t.Fatalf("Quotas = %+v, %v", qs, err)
		}
		return qs[0].Usage
	}
	if got := usage(); got != 6000 {
		t.Fatalf("namespace usage %d, want 6000 (a blob linked twice counts once)", got)
	}
	blobFilesNow := func() int {
		n := 0
		for _, sub := range []string{"blobs", "uploads"} {
			filepathWalk(s.dir+"/"+sub, func() { n++ })
		}
		return n
	}
	files := blobFilesNow()
	var qe *QuotaError

	t.Run("monolithic blob refused, nothing left", func(t *testing.T) {
		b := bytes.Repeat([]byte("b"), 5000)
		_, err := s.PutBlob("team/b", DigestOf(SHA256, b), int64(len(b)), bytes.NewReader(b))
		if !errors.As(err, &qe) || qe.Name != "team" || qe.Limit != 10_000 || qe.Usage != 6000 {
			t.Fatalf("PutBlob over quota: %v", err)
		}
		if !strings.Contains(err.Error(), "6000 of 10000") {
			t.Fatalf("message lacks usage and limit: %v", err)
		}
		if blobFilesNow() != files {
			t.Fatal("a refused blob left a file")
		}
	})
	t.Run("known size refused at start", func(t *testing.T) {
		if err := s.CheckQuota("team/x", "", 4001); !errors.As(err, &qe) {
			t.Fatalf("CheckQuota: %v", err)
		}
		if err := s.CheckQuota("team/x", "", 4000); err != nil {
			t.Fatalf("CheckQuota at the limit: %v", err)
		}
		if err := s.CheckQuota("elsewhere", "", 1<<40); err != nil {
			t.Fatalf("CheckQuota without a quota: %v", err)
		}
	})
	t.Run("the chunk that crosses is refused and the session ends", func(t *testing.T) {
		u, err := s.StartUpload("team/c", "me", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendUpload("team/c", u.ID, 0, bytes.NewReader(bytes.Repeat([]byte("c"), 3000))); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckUploadQuota("team/c", u.ID, 500); err != nil {
			t.Fatalf("a chunk that fits: %v", err)
		}
		// No Content-Length: the stream is cut where it crosses.
		// 6,500 bytes are more than the room and than any blob the
		// namespace links, so they cannot be one it has.
		_, err = s.AppendUpload("team/c", u.ID, -1, bytes.NewReader(bytes.Repeat([]byte("c"), 3500)))
		if !errors.As(err, &qe) {
			t.Fatalf("crossing chunk: %v", err)
		}
		if _, err := s.UploadStatus("team/c", u.ID); !errors.Is(err, ErrUploadUnknown) {
			t.Fatalf("the session outlived the refusal: %v", err)
		}
		if blobFilesNow() != files {
			t.Fatal("the refused upload left a file")
		}
	})
	t.Run("mount from another namespace counts", func(t *testing.T) {
		other := mustPutBlob(t, s, "other/x", bytes.Repeat([]byte("o"), 5000))
		if _, err := s.MountBlob("team/d", "other/x", other); !errors.As(err, &qe) {
			t.Fatalf("mount over quota: %v", err)
		}
		if _, err := s.MountBlob("team/d", "team/a", bigD); err != nil {
			t.Fatalf("mount within the namespace: %v", err)
		}
		files = blobFilesNow()
	})
	t.Run("manifest put refused", func(t *testing.T) {
		if err := s.SetQuota(QuotaRepository, "team/a", 6000); err != nil {
			t.Fatal(err)
		}
		m := testManifest{SchemaVersion: 2, MediaType: MediaTypeOCIManifest,
			Config: &testDesc{MediaType: "application/octet-stream", Digest: bigD, Size: 6000}}
		body := mustJSON(t, m)
		_, _, err := s.PutManifest("team/a", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body)
		if !errors.As(err, &qe) || qe.Kind != QuotaRepository {
			t.Fatalf("manifest over the repository quota: %v", err)
		}
		if err := s.DeleteQuota(QuotaRepository, "team/a"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.PutManifest("team/a", Reference{Tag: "v1"}, nil, MediaTypeOCIManifest, body); err != nil {
			t.Fatalf("after the quota went: %v", err)
		}
		if got := usage(); got != 6000+int64(len(body)) {
			t.Fatalf("usage %d, want blob and manifest %d", got, 6000+len(body))
		}
	})
	t.Run("bad quotas", func(t *testing.T) {
		for _, c := range []struct{ kind, name string }{{"namespace", "a/b"}, {"bucket", "a"}, {"repository", "A"}} {
			if err := s.SetQuota(c.kind, c.name, 1); !errors.Is(err, ErrPolicyInvalid) {
				t.Errorf("SetQuota(%s, %s): %v", c.kind, c.name, err)
			}
		}
		if err := s.SetQuota(QuotaNamespace, "x", 0); !errors.Is(err, ErrPolicyInvalid) {
			t.Errorf("zero quota: %v", err)
		}
	})
	checkInvariants(t, s)
}

// filepathWalk calls fn for every regular file under dir.
func filepathWalk(dir string, fn func()) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			filepathWalk(dir+"/"+e.Name(), fn)
		} else if e.Type().IsRegular() {
			fn()
		}
	}
}
