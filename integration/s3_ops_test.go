package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/fixtures"
)

// The operations on a data directory whose blobs are on S3 (versitygw):
// gc, verify, backup and restore, and blobs migrate (docs/storage-operations.md).

// berthS3 runs a berth command with s3's keys in its environment and
// returns its combined output and error.
func berthS3(t *testing.T, s3 *fixtures.S3Server, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := berthCommand(ctx, s3Env(s3), args...).CombinedOutput()
	return string(out), err
}

// mustBerthS3 is berthS3 that fails the test when the command fails.
func mustBerthS3(t *testing.T, s3 *fixtures.S3Server, args ...string) string {
	t.Helper()
	out, err := berthS3(t, s3, args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// s3LocationAt is the --blob-store URL of s3's bucket under prefix.
func s3LocationAt(s3 *fixtures.S3Server, prefix string) string {
	return "s3://" + s3.Bucket + "/" + prefix + "?endpoint=" + url.QueryEscape(s3.Endpoint) + "&region=" + s3.Region + "&path-style=true"
}

// objectCount counts the objects under the bucket's blobs prefix, through
// the S3 API.
func objectCount(t *testing.T, s3 *fixtures.S3Server, prefix string) int {
	t.Helper()
	n := 0
	for o := range s3.Client(t).ListObjects(t.Context(), s3.Bucket, minio.ListObjectsOptions{Prefix: prefix + "/blobs/", Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list objects: %v", o.Err)
		}
		n++
	}
	return n
}

// multipartUploads lists the bucket's unfinished multipart uploads.
func multipartUploads(t *testing.T, s3 *fixtures.S3Server) []string {
	t.Helper()
	var out []string
	for u := range s3.Client(t).ListIncompleteUploads(t.Context(), s3.Bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list multipart uploads: %v", u.Err)
		}
		out = append(out, u.Key)
	}
	return out
}

// pullSame pulls ref and checks it is the image pushed as want: the same
// manifest digest, and every blob hashing to its digest (validate.Image
// reads them all).
func pullSame(t *testing.T, s *server, ref string, want v1.Image) {
	t.Helper()
	got, err := remote.Image(s.ref(t, ref), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Fatalf("pull %s: digest %s, want %s", ref, gd, wd)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// TestS3Ops_GC: on S3, gc removes the objects of collected blobs, objects
// no record holds, and multipart uploads no session holds (an abandoned
// chunked upload's, one without any record) — but only after the grace
// period and the upload TTL, which a first run with the defaults respects.
func TestS3Ops_GC(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	keep := mustImage(t, mustLayer(t, 1<<20))
	s.push(t, "ops/keep:v1", keep)
	drop := mustImage(t, mustLayer(t, 2<<20))
	dropDigest := s.push(t, "ops/drop:v1", drop)
	wantStatus(t, s.do(t, http.MethodDelete, "/v2/ops/drop/manifests/"+dropDigest, nil), http.StatusAccepted)

	ctx := t.Context()
	c := s3.Client(t)
	orphan := s3Prefix + "/blobs/orphan-object"
	if _, err := c.PutObject(ctx, s3.Bucket, orphan, bytes.NewReader([]byte("no record")), 9, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: c}
	part := make([]byte, 5<<20)
	rand.Read(part)
	abandoned := s3Prefix + "/blobs/abandoned-multipart"
	uploadID, err := core.NewMultipartUpload(ctx, s3.Bucket, abandoned, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, s3.Bucket, abandoned, uploadID, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	// A chunked upload left after its first part reached S3.
	r := s.do(t, http.MethodPost, "/v2/ops/keep/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	chunk := append(part, part[:1<<20]...)
	wantStatus(t, s.do(t, http.MethodPatch, r.Header.Get("Location"), chunk, "Content-Type", "application/octet-stream"), http.StatusAccepted)
	if n := len(multipartUploads(t, s3)); n != 2 {
		t.Fatalf("%d multipart uploads before gc, want 2 (the abandoned one and the session's)", n)
	}
	objects := objectCount(t, s3, s3Prefix)
	// du reads meta.db only: the same on S3 as on a directory.
	if out := mustBerthS3(t, s3, "du", "--data", s.Data, "ops/keep"); !strings.Contains(out, "ops/keep") || !strings.Contains(out, "MiB") {
		t.Errorf("du on S3:\n%s", out)
	}

	// The defaults (grace 1h, upload TTL 24h) keep all of it.
	out := mustBerthS3(t, s3, "gc", "--data", s.Data)
	if got := objectCount(t, s3, s3Prefix); got != objects {
		t.Errorf("gc with the default grace removed objects: %d left of %d\n%s", got, objects, out)
	}
	if n := len(multipartUploads(t, s3)); n != 2 {
		t.Errorf("gc with the default grace left %d multipart uploads, want 2\n%s", n, out)
	}

	out = mustBerthS3(t, s3, "gc", "--data", s.Data, "--grace", "0s", "--upload-ttl", "0s")
	if _, err := c.StatObject(ctx, s3.Bucket, orphan, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Errorf("the orphan object is still there (%v)\n%s", err, out)
	}
	if left := multipartUploads(t, s3); len(left) != 0 {
		t.Errorf("multipart uploads left after gc: %v\n%s", left, out)
	}
	// keep's config and layer stay; drop's go.
	if got := objectCount(t, s3, s3Prefix); got != 2 {
		t.Errorf("%d objects after gc, want 2 (keep's config and layer)\n%s", got, out)
	}
	if !strings.Contains(out, "multipart upload") || !strings.Contains(out, "orphan-object") {
		t.Errorf("gc's report does not name the multipart upload and the orphan object:\n%s", out)
	}
	pullSame(t, s, "ops/keep:v1", keep)
	mustBerthS3(t, s3, "verify", "--data", s.Data)
}

// TestS3Ops_Verify: verify hashes every object, finds one corrupted behind
// berth's back and one removed, repair forgets both (the corrupt bytes go
// to DATA/quarantine), and a re-push heals the store.
func TestS3Ops_Verify(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	img := mustImage(t, mustLayer(t, 3<<20), mustLayer(t, 2<<20))
	s.push(t, "ops/app:v1", img)
	if out := mustBerthS3(t, s3, "verify", "--data", s.Data); !strings.Contains(out, "no faults") {
		t.Fatalf("verify of a clean store:\n%s", out)
	}
	// The objects by size: the two layers are the largest.
	files := s3Objects(t, s3)
	slices.SortFunc(files, func(a, b string) int { return int(fileSize(t, b) - fileSize(t, a)) })
	corrupt, missing := files[0], files[1]
	corruptSize := fileSize(t, corrupt)
	f, err := os.OpenFile(corrupt, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("berth"), 1000)
	f.Close()
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	out, err := berthS3(t, s3, "verify", "--data", s.Data)
	if err == nil || !strings.Contains(out, "corrupt blob") || !strings.Contains(out, "missing blob") || !strings.Contains(out, "ops/app:v1") {
		t.Fatalf("verify after corrupting one object and removing another: %v\n%s", err, out)
	}
	out, _ = berthS3(t, s3, "verify", "--data", s.Data, "--repair")
	if strings.Count(out, "repaired:") != 2 {
		t.Fatalf("verify --repair did not repair both faults:\n%s", out)
	}
	quarantined, _ := filepath.Glob(filepath.Join(s.Data, "quarantine", "sha256", "*"))
	if len(quarantined) != 1 || fileSize(t, quarantined[0]) != corruptSize {
		t.Errorf("quarantine holds %v, want the corrupt object's bytes", quarantined)
	}
	if _, err := os.Stat(corrupt); !os.IsNotExist(err) {
		t.Errorf("the corrupt object is still in the bucket (%v)", err)
	}
	s.push(t, "ops/app:v1", img)
	if out := mustBerthS3(t, s3, "verify", "--data", s.Data); !strings.Contains(out, "no faults") {
		t.Fatalf("verify after the re-push:\n%s", out)
	}
	pullSame(t, s, "ops/app:v1", img)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestS3Ops_BackupRestore: a backup taken while berth serves from S3
// streams the objects into the archive; restored into the directory and
// into S3 (another prefix), each serves the same image, byte for byte.
func TestS3Ops_BackupRestore(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	img := mustImage(t, mustLayer(t, 6<<20), mustLayer(t, 1<<20))
	s.push(t, "ops/app:v1", img)
	archive := filepath.Join(t.TempDir(), "full.tar.zst")
	mustBerthS3(t, s3, "backup", "--data", s.Data, "--output", archive)

	dirData := filepath.Join(t.TempDir(), "dir")
	mustBerthS3(t, s3, "restore", "--data", dirData, "--input", archive)
	d := startServer(t, dirData)
	pullSame(t, d, "ops/app:v1", img)
	if n := len(blobFiles(t, dirData)); n != 3 {
		t.Errorf("%d blob files in the restored directory, want 3", n)
	}
	d.stop(t)
	checkStore(t, dirData)

	s3Data := filepath.Join(t.TempDir(), "s3")
	loc := s3LocationAt(s3, "restored")
	mustBerthS3(t, s3, "restore", "--data", s3Data, "--input", archive, "--blob-store", loc)
	r := launch(t, s3Data, s3Env(s3), healthy, "--auth", "none", "--blob-store", loc)
	pullSame(t, r, "ops/app:v1", img)
	if n := objectCount(t, s3, "restored"); n != 3 {
		t.Errorf("%d objects under the restored prefix, want 3", n)
	}
	if files := blobFiles(t, s3Data); len(files) != 0 {
		t.Errorf("blob files in DATA/blobs of a restore into S3: %v", files)
	}
	if out := mustBerthS3(t, s3, "verify", "--data", s3Data); !strings.Contains(out, "no faults") {
		t.Errorf("verify of the store restored into S3:\n%s", out)
	}
}

// pusher pushes prepared images one after another, and pulls back the
// ones it pushed, until stopped, recording any failure: the load a
// migration runs under.
type pusher struct {
	s        *server
	t        *testing.T
	images   []v1.Image
	from, to int   // the indexes of images it pushes, as load/img:v<index>
	pushed   []int // indexes of images pushed
	errs     []error
	stop     chan struct{}
	done     chan struct{}
}

func startPusher(t *testing.T, s *server, images []v1.Image, from, to int) *pusher {
	p := &pusher{s: s, t: t, images: images, from: from, to: to, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pusher) run() {
	defer close(p.done)
	for i := p.from; i < p.to; i++ {
		img := p.images[i]
		select {
		case <-p.stop:
			return
		default:
		}
		ref := p.s.Addr + "/load/img:" + imageTag(i)
		if err := remote.Write(mustRef(ref), img, remoteOptions(p.t)...); err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		p.pushed = append(p.pushed, i)
		got, err := remote.Image(mustRef(p.s.Addr+"/load/img:"+imageTag(p.pushed[len(p.pushed)/2])), remoteOptions(p.t)...)
		if err == nil {
			err = validate.Image(got, validate.Fast)
		}
		if err != nil {
			p.errs = append(p.errs, err)
		}
	}
}

// finish stops the pusher and fails the test on any error it met, or if
// it pushed nothing while the migration ran.
func (p *pusher) finish() {
	close(p.stop)
	<-p.done
	for _, err := range p.errs {
		p.t.Errorf("push or pull during the migration: %v", err)
	}
	if len(p.pushed) == 0 {
		p.t.Errorf("no image was pushed while the migration ran")
	}
	p.t.Logf("%d images pushed and pulled back while the migration ran", len(p.pushed))
}

func imageTag(i int) string { return fmt.Sprintf("v%03d", i) }

func itoa(i int) string { return strconv.Itoa(i) }

func mustRef(ref string) name.Reference {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		panic(err)
	}
	return r
}

// TestS3Ops_MigrateOnline moves a serving registry's blobs from the
// directory to S3 and back while a client keeps pushing and pulling: every
// push succeeds, verify is clean after each move, and each store ends empty
// when the blobs left it.
func TestS3Ops_MigrateOnline(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := launch(t, "", s3Env(s3), healthy, "--auth", "none")
	var base []v1.Image
	for i := range 4 {
		img := mustImage(t, mustLayer(t, int64(1+i)<<20), mustLayer(t, 300<<10))
		s.push(t, "base/img:v"+itoa(i), img)
		base = append(base, img)
	}
	load := make([]v1.Image, 60)
	for i := range load {
		load[i] = mustImage(t, mustLayer(t, 200<<10))
	}
	// A target that does not answer is refused before anything changes.
	dead := "s3://" + s3.Bucket + "/x?endpoint=" + url.QueryEscape("http://"+freeAddr(t)) + "&region=us-east-1&path-style=true"
	out, err := berthS3(t, s3, "blobs", "migrate", "--data", s.Data, "--to", dead)
	if err == nil || !strings.Contains(out, "does not answer") {
		t.Fatalf("migrate to an S3 endpoint nobody serves: %v\n%s", err, out)
	}

	first := startPusher(t, s, load, 0, 30)
	out = mustBerthS3(t, s3, "blobs", "migrate", "--data", s.Data, "--to", s3Location(s3))
	first.finish()
	t.Logf("to S3: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "now in s3://"+s3.Bucket) {
		t.Errorf("migrate output does not say where the blobs are:\n%s", out)
	}
	if files := blobFiles(t, s.Data); len(files) != 0 {
		t.Errorf("%d blob files left in DATA/blobs after the move to S3", len(files))
	}
	mustBerthS3(t, s3, "verify", "--data", s.Data)

	second := startPusher(t, s, load, 30, 60)
	out = mustBerthS3(t, s3, "blobs", "migrate", "--data", s.Data, "--to", "dir")
	second.finish()
	t.Logf("to dir: %s", strings.TrimSpace(out))
	if n := objectCount(t, s3, s3Prefix); n != 0 {
		t.Errorf("%d objects left in the bucket after the move back", n)
	}
	mustBerthS3(t, s3, "verify", "--data", s.Data)
	for i, img := range base {
		pullSame(t, s, "base/img:v"+itoa(i), img)
	}
	// Nothing pushed during either move was lost.
	for _, i := range slices.Concat(first.pushed, second.pushed) {
		pullSame(t, s, "load/img:"+imageTag(i), load[i])
	}
	s.stop(t)
	checkStore(t, s.Data)
	// The directory is the recorded store again: serve starts without flags.
	s = startServer(t, s.Data)
	pullSame(t, s, "base/img:v0", base[0])
}

// TestS3Ops_MigrateResume kills the server in the middle of a migration to
// S3: restarted (with the old --blob-store), it serves every image from
// wherever each blob is, and the migration run again finishes the job.
func TestS3Ops_MigrateResume(t *testing.T) {
	s3 := fixtures.StartS3(t)
	data := t.TempDir()
	s := launch(t, data, s3Env(s3), healthy, "--auth", "none")
	var imgs []v1.Image
	for i := range 30 {
		img := mustImage(t, mustLayer(t, 1<<20))
		s.push(t, "res/img:v"+itoa(i), img)
		imgs = append(imgs, img)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	migrate := berthCommand(ctx, s3Env(s3), "blobs", "migrate", "--data", data, "--to", s3Location(s3))
	var migrateOut bytes.Buffer
	migrate.Stdout, migrate.Stderr = &migrateOut, &migrateOut
	if err := migrate.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(s3Objects(t, s3)) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("no objects in the bucket 30s into the migration:\n%s", s.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.kill()
	if err := migrate.Wait(); err == nil {
		t.Fatalf("the migration finished before the server was killed; nothing to resume:\n%s", migrateOut.String())
	}
	moved := len(s3Objects(t, s3))
	t.Logf("killed with %d of %d blobs in S3", moved, 60)

	s = launch(t, data, s3Env(s3), healthy, "--auth", "none")
	for i, img := range imgs {
		pullSame(t, s, "res/img:v"+itoa(i), img)
	}
	out := mustBerthS3(t, s3, "blobs", "migrate", "--data", data, "--to", s3Location(s3))
	if !strings.Contains(out, "(resumed)") {
		t.Errorf("the second run does not say it resumed:\n%s", out)
	}
	mustBerthS3(t, s3, "verify", "--data", data)
	s.stop(t)
	if files := blobFiles(t, data); len(files) != 0 {
		t.Errorf("%d blob files left in DATA/blobs", len(files))
	}
	s = startS3Registry(t, s3, data)
	for i, img := range imgs {
		pullSame(t, s, "res/img:v"+itoa(i), img)
	}
}
