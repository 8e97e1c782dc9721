package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/fixtures"
)

// s3Prefix is the key prefix berth's S3 tests give the blob store: objects
// are BucketDir()/berth/blobs/<id>.
const s3Prefix = "berth"

// s3Location is the --blob-store URL of s3's bucket.
func s3Location(s3 *fixtures.S3Server) string {
	return "s3://" + s3.Bucket + "/" + s3Prefix + "?endpoint=" + url.QueryEscape(s3.Endpoint) + "&region=" + s3.Region + "&path-style=true"
}

// s3Env is the environment that gives berth s3's root keys.
func s3Env(s3 *fixtures.S3Server) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey}
}

// startS3Registry starts berth with its blobs in s3's bucket (and data, a
// new directory when ""), as startRegistry does.
func startS3Registry(t testing.TB, s3 *fixtures.S3Server, data string, args ...string) *server {
	t.Helper()
	args = append([]string{"--blob-store", s3Location(s3)}, args...)
	if !hasFlag(args, "--auth") {
		args = append(args, "--auth", "none")
	}
	s := launch(t, data, s3Env(s3), healthy, args...)
	t.Cleanup(func() {
		plainTransport.CloseIdleConnections()
		httpClient.CloseIdleConnections()
	})
	return s
}

// s3Objects lists the blob objects in the bucket (their files, as versitygw
// keeps them in posix mode).
func s3Objects(t testing.TB, s3 *fixtures.S3Server) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s3.BucketDir(), s3Prefix, "blobs")
	filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestS3_PushPull pushes and pulls with go-containerregistry through berth
// on S3: the client follows the blob redirects to versitygw, every layer is
// one object in the bucket, nothing lands in DATA/blobs, and a second push
// of the same layers leaves no second object.
func TestS3_PushPull(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	img := mustImage(t, mustLayer(t, 3<<20), mustLayer(t, 7<<20)) // one under a part, one over
	s.push(t, "s3/app:v1", img)
	got, err := remote.Image(s.ref(t, "s3/app:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("the pulled image does not validate: %v", err)
	}
	if n := len(s3Objects(t, s3)); n != 3 {
		t.Errorf("%d objects in the bucket after pushing 2 layers and a config, want 3", n)
	}
	if files := blobFiles(t, s.Data); len(files) != 0 {
		t.Errorf("blob files in DATA/blobs with the S3 backend: %v", files)
	}
	// The same layers again, into another repository, by upload (no mount):
	// each upload writes its own object and drops it at commit.
	if err := remote.Write(s.ref(t, "s3/other:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("second push: %v", err)
	}
	if n := len(s3Objects(t, s3)); n != 3 {
		t.Errorf("%d objects after pushing the same blobs again, want 3 (the second copies dropped)", n)
	}
	if lines := s.requestLines("GET", "/v2/s3/app/blobs/", "status=307"); len(lines) == 0 {
		t.Errorf("no blob GET answered 307: the client was not redirected to S3")
	}
}

// TestS3_Redirect checks the 307 berth answers a blob GET with: a presigned
// URL of the bucket's endpoint (or --s3-public-endpoint), that S3 serves
// whole and by Range, and refuses once tampered with.
func TestS3_Redirect(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	body := bytes.Repeat([]byte("berth on s3 "), 100_000)
	d := sha256Digest(body)
	r := s.do(t, http.MethodPost, "/v2/r/blobs/uploads/?digest="+d, body, "Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusCreated)

	r = s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil)
	wantStatus(t, r, http.StatusTemporaryRedirect)
	loc := r.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || u.Host != s3.Addr || u.Query().Get("X-Amz-Signature") == "" {
		t.Fatalf("redirect to %q, want a presigned URL on %s", loc, s3.Addr)
	}
	if exp := u.Query().Get("X-Amz-Expires"); exp == "" || exp > "1200" && len(exp) >= 4 {
		t.Errorf("presigned URL valid for %s s, want at most 20 minutes", exp)
	}
	if r.Header.Get("Docker-Content-Digest") != d {
		t.Errorf("redirect without Docker-Content-Digest: %v", r.Header)
	}
	// HEAD is answered from meta.db: no redirect.
	r = s.do(t, http.MethodHead, "/v2/r/blobs/"+d, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Errorf("HEAD: %s", r)
	}

	get := func(u string, headers ...string) reply {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return send(t, req)
	}
	if r := get(loc); r.Status != http.StatusOK || !bytes.Equal(r.Body, body) {
		t.Fatalf("GET of the presigned URL: %d, %d bytes", r.Status, len(r.Body))
	}
	if r := get(loc, "Range", "bytes=1000-1999"); r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, body[1000:2000]) {
		t.Fatalf("Range GET of the presigned URL: %d, %q", r.Status, r.Body)
	}
	// Tampered: a longer validity, or another object, under the same signature.
	longer := strings.Replace(loc, "X-Amz-Expires="+u.Query().Get("X-Amz-Expires"), "X-Amz-Expires=604800", 1)
	other := strings.Replace(loc, u.Path, u.Path+"x", 1)
	for name, bad := range map[string]string{"expiry": longer, "object": other} {
		if bad == loc {
			t.Fatalf("tampering with the %s changed nothing", name)
		}
		if r := get(bad); r.Status != http.StatusForbidden {
			t.Errorf("URL with a tampered %s: %d, want 403 from S3", name, r.Status)
		}
	}
	// Expired: berth signs with the same keys and clock as this URL.
	c := s3.Client(t)
	short, err := c.PresignedGetObject(t.Context(), s3.Bucket, strings.TrimPrefix(u.Path, "/"+s3.Bucket+"/"), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(short.String()).Status == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("a presigned URL valid for 1s still served after 10s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := get(short.String()); r.Status != http.StatusForbidden {
		t.Errorf("expired URL: %d, want 403", r.Status)
	}
}

// TestS3_PublicEndpoint: --s3-public-endpoint puts another host in the
// redirect (the one clients reach), signed for that host.
func TestS3_PublicEndpoint(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "", "--s3-public-endpoint", "https://blobs.example.com:9443")
	body := []byte("public endpoint")
	d := sha256Digest(body)
	wantStatus(t, s.do(t, http.MethodPost, "/v2/r/blobs/uploads/?digest="+d, body), http.StatusCreated)
	r := s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil)
	wantStatus(t, r, http.StatusTemporaryRedirect)
	if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "https://blobs.example.com:9443/"+s3.Bucket+"/") {
		t.Errorf("redirect to %q, want the public endpoint", loc)
	}
}

// TestS3_StreamRange: with --s3-redirect=false berth streams blobs from S3
// itself, whole and by Range.
func TestS3_StreamRange(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "", "--s3-redirect=false")
	body := make([]byte, 6<<20+123)
	for i := range body {
		body[i] = byte(i * 7)
	}
	d := sha256Digest(body)
	wantStatus(t, s.do(t, http.MethodPost, "/v2/r/blobs/uploads/?digest="+d, body), http.StatusCreated)
	r := s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil)
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, body) {
		t.Fatalf("GET: %d, %d bytes", r.Status, len(r.Body))
	}
	r = s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil, "Range", "bytes=5242000-5243999")
	if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, body[5242000:5244000]) ||
		r.Header.Get("Content-Range") != fmt.Sprintf("bytes 5242000-5243999/%d", len(body)) {
		t.Fatalf("Range GET: %d %q, %d bytes", r.Status, r.Header.Get("Content-Range"), len(r.Body))
	}
	r = s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil, "Range", "bytes=-10")
	if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, body[len(body)-10:]) {
		t.Fatalf("suffix Range GET: %d %q", r.Status, r.Body)
	}
}

// TestS3_ChunkedResume pushes a blob in chunks smaller and larger than a
// part, stops and restarts berth in the middle, and finishes the upload:
// the parts and the hash state came back from the upload record.
func TestS3_ChunkedResume(t *testing.T) {
	s3 := fixtures.StartS3(t)
	data := t.TempDir()
	s := startS3Registry(t, s3, data)
	body := make([]byte, 13<<20+17)
	for i := range body {
		body[i] = byte(i*31 + i>>12)
	}
	d := sha256Digest(body)
	r := s.do(t, http.MethodPost, "/v2/r/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	chunks := []int{1 << 20, 6 << 20, 100}
	off := 0
	for _, n := range chunks {
		r = s.do(t, http.MethodPatch, loc, body[off:off+n], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		wantStatus(t, r, http.StatusAccepted)
		loc = r.Header.Get("Location")
		off += n
	}
	s.stop(t)
	s = startS3Registry(t, s3, data)
	r = s.do(t, http.MethodGet, loc, nil)
	if r.Status != http.StatusNoContent || r.Header.Get("Range") != fmt.Sprintf("0-%d", off-1) {
		t.Fatalf("upload status after a restart: %s", r)
	}
	r = s.do(t, http.MethodPut, withDigest(loc, d), body[off:], "Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusCreated)
	c := s3.Client(t)
	objs := s3Objects(t, s3)
	if len(objs) != 1 {
		t.Fatalf("%d objects, want 1: %v", len(objs), objs)
	}
	key := strings.TrimPrefix(objs[0], s3.BucketDir()+"/")
	obj, err := c.GetObject(t.Context(), s3.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj)
	obj.Close()
	if err != nil || n != int64(len(body)) || fmt.Sprintf("sha256:%x", h.Sum(nil)) != d {
		t.Fatalf("the object holds %d bytes hashing to %x (%v), want %s", n, h.Sum(nil), err, d)
	}
}

// TestS3_RecordedBackend: the data directory remembers where its blobs
// are; serve without --blob-store, or with another bucket, refuses to start
// instead of serving an empty registry.
func TestS3_RecordedBackend(t *testing.T) {
	s3 := fixtures.StartS3(t)
	data := t.TempDir()
	s := startS3Registry(t, s3, data)
	s.push(t, "r:v1", mustImage(t, mustLayer(t, 1000)))
	s.stop(t)
	for name, args := range map[string][]string{
		"no flag":        {"serve", "--data", data, "--addr", freeAddr(t)},
		"another bucket": {"serve", "--data", data, "--addr", freeAddr(t), "--blob-store", strings.Replace(s3Location(s3), s3.Bucket, "other", 1)},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := berthCommand(ctx, s3Env(s3), args...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "another blob store") || !strings.Contains(string(out), "s3://"+s3.Bucket) {
			t.Errorf("%s: serve exited with %v:\n%s", name, err, out)
		}
	}
	// And a directory store refuses S3.
	dirData := t.TempDir()
	d := startRegistry(t, dirData)
	d.push(t, "r:v1", mustImage(t, mustLayer(t, 1000)))
	d.stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := berthCommand(ctx, s3Env(s3), "serve", "--data", dirData, "--addr", freeAddr(t), "--blob-store", s3Location(s3)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another blob store") {
		t.Errorf("serve of a directory store with --blob-store s3: %v\n%s", err, out)
	}
	// The recorded one starts again and serves the image.
	s = startS3Registry(t, s3, data)
	if _, err := remote.Image(s.ref(t, "r:v1"), remoteOptions(t)...); err != nil {
		t.Errorf("pull after restart: %v", err)
	}
}

// TestS3_Credentials: a credentials file must be 0600 and is used instead
// of the environment; its secret never shows in the log.
func TestS3_Credentials(t *testing.T) {
	s3 := fixtures.StartS3(t)
	file := filepath.Join(t.TempDir(), "s3.env")
	content := "# berth's keys\nAWS_ACCESS_KEY_ID=" + s3.AccessKey + "\nAWS_SECRET_ACCESS_KEY=" + s3.SecretKey + "\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := berthCommand(ctx, nil, "serve", "--data", t.TempDir(), "--addr", freeAddr(t), "--auth", "none",
		"--blob-store", s3Location(s3), "--s3-credentials-file", file).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("a 0644 credentials file: %v\n%s", err, out)
	}
	os.Chmod(file, 0o600)
	s := launch(t, "", nil, healthy, "--auth", "none", "--blob-store", s3Location(s3), "--s3-credentials-file", file, "--log-level", "debug")
	s.push(t, "r:v1", mustImage(t, mustLayer(t, 1000)))
	s.stop(t)
	if strings.Contains(s.Log(), s3.SecretKey) {
		t.Errorf("the secret key is in the log")
	}
	// Without any credentials: a clear refusal at start.
	out, err = berthCommand(ctx, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, "serve", "--data", t.TempDir(), "--addr", freeAddr(t),
		"--blob-store", s3Location(s3)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no S3 credentials") {
		t.Errorf("no credentials: %v\n%s", err, out)
	}
}

// TestS3_KilledMidPush stops versitygw while a layer streams in: the
// client gets a 5xx with an OCI error body, no blob is recorded, the server
// keeps serving metadata, and once S3 is back the same push succeeds.
func TestS3_KilledMidPush(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "", "--s3-redirect=false")
	s.push(t, "r:v1", mustImage(t, mustLayer(t, 1000)))

	const size = 64 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i ^ i>>9)
	}
	d := sha256Digest(body)
	r := s.do(t, http.MethodPost, "/v2/r/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := s.URL(r.Header.Get("Location"))
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:20<<20]) // four parts' worth reach S3
		s3.Kill()
		pw.Write(body[20<<20:])
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, withDigest(loc, d), pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = size
	resp := send(t, req)
	if resp.Status < 500 || errorCode(resp) == "" {
		t.Fatalf("push with S3 gone: %s, want a 5xx with an OCI error body", resp)
	}
	if !strings.Contains(string(resp.Body), "storage") {
		t.Errorf("error body does not say what failed: %s", resp.Body)
	}
	// Metadata is still served; the blob is not recorded.
	if r := s.do(t, http.MethodHead, "/v2/r/blobs/"+d, nil); r.Status != http.StatusNotFound {
		t.Errorf("HEAD of the blob whose push failed: %d, want 404", r.Status)
	}
	if r := s.do(t, http.MethodHead, "/v2/r/manifests/v1", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json"); r.Status != http.StatusOK {
		t.Errorf("manifest HEAD with S3 down: %d, want 200 from meta.db", r.Status)
	}
	if r := s.do(t, http.MethodGet, "/v2/r/tags/list", nil); r.Status != http.StatusOK {
		t.Errorf("tags list with S3 down: %d", r.Status)
	}
	img, _ := remote.Image(s.ref(t, "r:v1"), remoteOptions(t)...)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	start := time.Now()
	r = s.do(t, http.MethodGet, "/v2/r/blobs/"+ld.String(), nil)
	if r.Status != http.StatusServiceUnavailable || errorCode(r) != "UNKNOWN" || !strings.Contains(string(r.Body), "storage") {
		t.Errorf("blob GET with S3 down: %s, want 503 with a readable error", r)
	}
	t.Logf("blob GET with S3 down answered in %v", time.Since(start))

	s3.Restart(t)
	r = s.do(t, http.MethodPost, "/v2/r/blobs/uploads/?digest="+d, body, "Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusCreated)
	if r := s.do(t, http.MethodGet, "/v2/r/blobs/"+d, nil); r.Status != http.StatusOK || !bytes.Equal(r.Body, body) {
		t.Errorf("GET after S3 came back: %d, %d bytes", r.Status, len(r.Body))
	}
}

// berthCommand is a berth process with env added to the environment.
func berthCommand(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// withDigest adds digest=d to an upload's Location.
func withDigest(loc, d string) string {
	if strings.Contains(loc, "?") {
		return loc + "&digest=" + d
	}
	return loc + "?digest=" + d
}

// TestS3_Skopeo copies a multi-arch image into berth on S3 and back out
// with skopeo, which follows the blob redirects to versitygw; the copy out
// has the same index digest.
func TestS3_Skopeo(t *testing.T) {
	fixtures.RequireTool(t, "skopeo")
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	home := t.TempDir()
	src := fixtures.Path(fixtures.Multiarch)
	_, latest := fixtureDescriptor(t, fixtures.Multiarch, "latest")
	ref := "docker://" + s.Addr + "/skopeo/multi:latest"
	if out, err := skopeoRun(t, home, "", "copy", "--all", "--dest-tls-verify=false", "oci:"+src+":latest", ref); err != nil {
		t.Fatalf("skopeo copy to berth: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "out")
	if o, err := skopeoRun(t, home, "", "copy", "--all", "--src-tls-verify=false", ref, "oci:"+out+":latest"); err != nil {
		t.Fatalf("skopeo copy from berth: %v\n%s", err, o)
	}
	if _, got := layoutDescriptor(t, out, "latest"); got.Digest != latest.Digest {
		t.Errorf("copied out %s, want %s", got.Digest, latest.Digest)
	}
	if lines := s.requestLines("GET", "/v2/skopeo/multi/blobs/", "status=307"); len(lines) == 0 {
		t.Errorf("skopeo's blob GETs were not redirected")
	}
	if len(s3Objects(t, s3)) == 0 {
		t.Errorf("no objects in the bucket")
	}
}

// TestS3_CancelAborts: a cancelled upload that had sent parts leaves no
// multipart upload, object or tail behind, and neither does a monolithic
// upload whose digest is wrong.
func TestS3_CancelAborts(t *testing.T) {
	s3 := fixtures.StartS3(t)
	s := startS3Registry(t, s3, "")
	body := make([]byte, 11<<20)
	for i := range body {
		body[i] = byte(i * 13)
	}
	r := s.do(t, http.MethodPost, "/v2/r/blobs/uploads/", nil)
	wantStatus(t, r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	r = s.do(t, http.MethodPatch, loc, body, "Content-Type", "application/octet-stream")
	wantStatus(t, r, http.StatusAccepted)
	c := s3.Client(t)
	incomplete := func() int {
		n := 0
		for u := range c.ListIncompleteUploads(t.Context(), s3.Bucket, s3Prefix+"/", true) {
			if u.Err != nil {
				t.Fatalf("list multipart uploads: %v", u.Err)
			}
			n++
		}
		return n
	}
	if n := incomplete(); n != 1 {
		t.Fatalf("%d multipart uploads after an 11 MiB chunk, want 1", n)
	}
	wantStatus(t, s.do(t, http.MethodDelete, loc, nil), http.StatusNoContent)
	if n := incomplete(); n != 0 {
		t.Errorf("%d multipart uploads after the cancel, want 0", n)
	}
	// A monolithic upload of the wrong digest.
	r = s.do(t, http.MethodPost, "/v2/r/blobs/uploads/?digest="+sha256Digest([]byte("other")), body, "Content-Type", "application/octet-stream")
	if r.Status != http.StatusBadRequest || errorCode(r) != "DIGEST_INVALID" {
		t.Errorf("upload of the wrong digest: %s", r)
	}
	if objs := s3Objects(t, s3); len(objs) != 0 || incomplete() != 0 {
		t.Errorf("left behind: objects %v, %d multipart uploads", objs, incomplete())
	}
	entries, _ := os.ReadDir(filepath.Join(s.Data, "uploads"))
	for _, e := range entries {
		t.Errorf("left behind in DATA/uploads: %s", e.Name())
	}
}
