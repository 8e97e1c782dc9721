package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Blobs is the BlobStore of an S3 bucket (docs/storage.md). Each blob's
// bytes are one object, <prefix>blobs/<id>, written once and never copied:
// an upload writes straight to the object it ends as, and its blob record
// holds the key, so committing an upload is a metadata write. A second
// upload of a stored digest finds the record taken at commit and deletes
// its own object (dropRedundant).
//
// Upload sessions are S3 multipart uploads, started when the first full
// part is ready. Parts are s3PartSize (the S3 minimum of 5 MiB; larger
// after s3SmallParts parts, to stay under S3's 10,000) and are buffered in
// memory while a request streams, one buffer per session being written; the
// bytes past the last whole part (the tail) are kept in a file in
// DATA/uploads between requests, so a session survives a restart. The upload
// record holds the parts and the sha256 state, so a resumed upload is not
// re-read. The tail file of a session with n parts is DATA/uploads/<id>.t<n>:
// a new part set writes a new file, so the record and the tail it names
// always agree, whichever of the two a crash interrupts.
type s3Blobs struct {
	location string // canonical s3:// URL, without secrets
	bucket   string
	prefix   string // "" or ending in "/"
	core     minio.Core
	public   *minio.Client // presigns URLs for clients; core's client when no public endpoint is set
	uploads  string        // DATA/uploads, for the tails
}

var (
	_ BlobStore = (*s3Blobs)(nil)
	_ URLer     = (*s3Blobs)(nil)
)

const (
	// s3PartSize is the size of a multipart upload's parts: S3's minimum,
	// so a session buffers as little as S3 allows.
	s3PartSize = 5 << 20
	// s3SmallParts parts of s3PartSize hold 9.8 GiB; later parts are
	// s3LargePartSize, so a session's 10,000 parts hold 322 GiB.
	s3SmallParts    = 2000
	s3LargePartSize = 40 << 20
	// s3OpTimeout bounds one request that moves no blob bytes (stat,
	// delete, list page, starting or completing a multipart upload).
	s3OpTimeout = 30 * time.Second
	// s3PartTimeout bounds the upload of one part or one small object.
	s3PartTimeout = 5 * time.Minute
	// s3MaxRetries: minio-go retries a failed request this many times in
	// all; its default of 10 with backoff would keep a client waiting for
	// minutes on an S3 server that is down.
	s3MaxRetries = 2
)

// ErrStorageUnavailable wraps an error of the blob store's server (S3 down,
// slow beyond its timeouts, or refusing berth's credentials): the client
// gets 503 and may retry; nothing is recorded.
var ErrStorageUnavailable = errors.New("blob storage unavailable")

// S3Location is a parsed s3:// blob store location.
type S3Location struct {
	Bucket    string
	Prefix    string // "" or ending in "/"
	Endpoint  string // host[:port]
	Secure    bool   // https
	Region    string
	PathStyle bool
}

// ParseS3Location parses s3://bucket/prefix?endpoint=URL&region=R&path-style=true.
// endpoint is a URL (http:// or https://) or a bare host[:port] (https).
func ParseS3Location(loc string) (S3Location, error) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return S3Location{}, fmt.Errorf("blob store %q: want s3://bucket/prefix?endpoint=…", loc)
	}
	if u.User != nil {
		return S3Location{}, fmt.Errorf("blob store %q: credentials do not belong in the URL: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-credentials-file", u.Redacted())
	}
	l := S3Location{Bucket: u.Host, Region: "us-east-1", Secure: true}
	if p := strings.Trim(u.Path, "/"); p != "" {
		l.Prefix = p + "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path-style":
		default:
			return S3Location{}, fmt.Errorf("blob store %q: unknown parameter %q (known: endpoint, region, path-style)", loc, k)
		}
	}
	ep := q.Get("endpoint")
	if ep == "" {
		return S3Location{}, fmt.Errorf("blob store %q: endpoint= is required (e.g. endpoint=https://s3.example.com)", loc)
	}
	l.Endpoint, l.Secure, err = parseEndpoint(ep)
	if err != nil {
		return S3Location{}, fmt.Errorf("blob store %q: %w", loc, err)
	}
	if r := q.Get("region"); r != "" {
		l.Region = r
	}
	if ps := q.Get("path-style"); ps != "" {
		if l.PathStyle, err = strconv.ParseBool(ps); err != nil {
			return S3Location{}, fmt.Errorf("blob store %q: path-style=%q is not true or false", loc, ps)
		}
	}
	return l, nil
}

// parseEndpoint splits an endpoint URL (or bare host[:port]) into host and
// whether it uses TLS.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	if !strings.Contains(ep, "://") {
		return ep, true, nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
		return "", false, fmt.Errorf("endpoint %q: want http(s)://host[:port]", ep)
	}
	return u.Host, u.Scheme == "https", nil
}

// String is the canonical form of l, which meta.db records.
func (l S3Location) String() string {
	scheme := "https"
	if !l.Secure {
		scheme = "http"
	}
	q := url.Values{}
	q.Set("endpoint", scheme+"://"+l.Endpoint)
	q.Set("region", l.Region)
	q.Set("path-style", strconv.FormatBool(l.PathStyle))
	return "s3://" + l.Bucket + "/" + l.Prefix + "?" + q.Encode()
}

// s3Credentials reads the access key id and secret from the file path
// (when set) or the environment. The file must not be readable by group or
// others; it holds KEY=VALUE lines with AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN), # comments.
func s3Credentials(path string) (*credentials.Credentials, error) {
	vals := map[string]string{}
	if path != "" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("S3 credentials file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("S3 credentials file %s has mode %04o: it must not be readable by others (chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("S3 credentials file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				// The line is not echoed: it may hold a secret.
				return nil, fmt.Errorf("S3 credentials file %s, line %d: want KEY=VALUE", path, n)
			}
			vals[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("S3 credentials file: %w", err)
		}
	} else {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
			vals[k] = os.Getenv(k)
		}
	}
	id, secret := vals["AWS_ACCESS_KEY_ID"], vals["AWS_SECRET_ACCESS_KEY"]
	if id == "" || secret == "" {
		from := "the environment"
		if path != "" {
			from = path
		}
		return nil, fmt.Errorf("no S3 credentials in %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --s3-credentials-file", from)
	}
	return credentials.NewStaticV4(id, secret, vals["AWS_SESSION_TOKEN"]), nil
}

// s3Transport bounds the waits on an S3 server that is down or stalls: a
// connection attempt, and the response's headers. A body that stalls is
// bounded by the caller's context.
func s3Transport(secure bool) (*http.Transport, error) {
	t, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = 30 * time.Second
	t.MaxIdleConnsPerHost = 64
	return t, nil
}

func newS3Client(host string, secure bool, l S3Location, creds *credentials.Credentials) (*minio.Client, error) {
	tr, err := s3Transport(secure)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if l.PathStyle {
		lookup = minio.BucketLookupPath
	}
	return minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Region: l.Region, BucketLookup: lookup,
		Transport: tr, MaxRetries: s3MaxRetries,
	})
}

// openS3Blobs returns the S3 blob store at location, for the data
// directory dir. It checks nothing over the network: a bucket that is
// unreachable at start leaves the server up, serving metadata, with 503 for
// blob bytes until it is back.
func openS3Blobs(dir, location string, opts BlobStoreOptions) (BlobStore, error) {
	l, err := ParseS3Location(location)
	if err != nil {
		return nil, err
	}
	creds, err := s3Credentials(opts.CredentialsFile)
	if err != nil {
		return nil, err
	}
	c, err := newS3Client(l.Endpoint, l.Secure, l, creds)
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	public := c
	if opts.PublicEndpoint != "" {
		host, secure, err := parseEndpoint(opts.PublicEndpoint)
		if err != nil {
			return nil, fmt.Errorf("--s3-public-endpoint: %w", err)
		}
		if public, err = newS3Client(host, secure, l, creds); err != nil {
			return nil, fmt.Errorf("S3 client: %w", err)
		}
	}
	return &s3Blobs{
		location: l.String(), bucket: l.Bucket, prefix: l.Prefix,
		core: minio.Core{Client: c}, public: public, uploads: UploadsDir(dir),
	}, nil
}

func (b *s3Blobs) Location() string { return b.location }

// s3Error turns an S3 client error into ErrBlobUnknown (the object is not
// there) or ErrStorageUnavailable (anything else), with what was being done.
func s3Error(what string, err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%w: %s: %v", ErrBlobUnknown, what, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrStorageUnavailable, what, err)
}

func (b *s3Blobs) key(ref BlobRef) string {
	if ref.Key != "" {
		return ref.Key
	}
	// A record without a key on an S3 store cannot come from this code
	// (Open refuses a directory store's records); name something that is
	// surely absent rather than guess.
	return b.prefix + "blobs/unkeyed/" + string(ref.Digest)
}

func (b *s3Blobs) newKey(id string) string { return b.prefix + "blobs/" + id }

func (b *s3Blobs) Open(ctx context.Context, ref BlobRef, off, n int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	switch {
	case n == 0:
		return io.NopCloser(bytes.NewReader(nil)), nil
	case n > 0:
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, err
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	// The response's headers within s3OpTimeout (the transport's bound);
	// the body then streams as fast as the client reads it.
	r, _, _, err := b.core.GetObject(ctx, b.bucket, b.key(ref), opts)
	if err != nil {
		return nil, s3Error("get "+string(ref.Digest), err)
	}
	return &s3Reader{ReadCloser: r, what: string(ref.Digest)}, nil
}

// s3Reader marks a failed read of an object's body as the storage's fault.
type s3Reader struct {
	io.ReadCloser
	what string
}

func (r *s3Reader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = s3Error("read "+r.what, err)
	}
	return n, err
}

func (b *s3Blobs) Stat(ctx context.Context, ref BlobRef) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	info, err := b.core.StatObject(ctx, b.bucket, b.key(ref), minio.StatObjectOptions{})
	if err != nil {
		return 0, s3Error("stat "+string(ref.Digest), err)
	}
	return info.Size, nil
}

func (b *s3Blobs) Delete(ctx context.Context, ref BlobRef) error {
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	err := b.core.RemoveObject(ctx, b.bucket, b.key(ref), minio.RemoveObjectOptions{})
	if err := s3Error("delete "+string(ref.Digest), err); err != nil && !errors.Is(err, ErrBlobUnknown) {
		return err
	}
	return nil
}

func (b *s3Blobs) Walk(ctx context.Context, fn func(StoredObject) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing goroutine when fn stops early
	for obj := range b.core.Client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + "blobs/", Recursive: true}) {
		if obj.Err != nil {
			return s3Error("list blobs", obj.Err)
		}
		if err := fn(StoredObject{Ref: BlobRef{Key: obj.Key}, Size: obj.Size, Modified: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Write streams r to a new object, hashing it on the way; the object is
// deleted when r fails, the size or the digest is wrong.
func (b *s3Blobs) Write(ctx context.Context, d Digest, size int64, r io.Reader) (StagedBlob, error) {
	h := NewHash(d.Algorithm())
	if h == nil {
		return StagedBlob{}, fmt.Errorf("%w: %q", ErrDigestUnsupported, d.Algorithm())
	}
	id, err := newUploadID()
	if err != nil {
		return StagedBlob{}, err
	}
	key := b.newKey(id)
	cr := &countingReader{r: io.TeeReader(r, h)}
	var body io.Reader = cr
	if size >= 0 {
		// One byte more than announced makes a too-long body fail the
		// size check instead of being cut silently.
		body = io.LimitReader(cr, size+1)
	}
	// Sequential parts of s3PartSize: memory stays one part per write.
	_, err = b.core.Client.PutObject(ctx, b.bucket, key, body, -1, minio.PutObjectOptions{
		PartSize: s3PartSize, NumThreads: 1, DisableContentSha256: true,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		b.deleteKey(key)
		if cr.err != nil {
			return StagedBlob{}, cr.err // the client's body failed, not S3
		}
		return StagedBlob{}, s3Error("put "+string(d), err)
	}
	staged := StagedBlob{Digest: d, Size: cr.n, key: key}
	switch {
	case size >= 0 && cr.n != size:
		b.deleteKey(key)
		return StagedBlob{}, fmt.Errorf("%w: got %d bytes, want %d", ErrSizeInvalid, cr.n, size)
	case digestFromHash(d.Algorithm(), h) != d:
		b.deleteKey(key)
		return StagedBlob{}, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, digestFromHash(d.Algorithm(), h), d)
	}
	return staged, nil
}

// countingReader counts what r gave and remembers r's own error, so that a
// client that went away is told from a failing S3 server.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// deleteKey removes an object nothing records, on its own short deadline
// (the request's context may be what ended).
func (b *s3Blobs) deleteKey(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), s3OpTimeout)
	defer cancel()
	b.core.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{})
}

// s3Session is the backend state of an upload session, kept in its record.
type s3Session struct {
	Key      string   `json:"key"`
	UploadID string   `json:"uploadId,omitempty"` // the multipart upload, once a part was sent
	Parts    []s3Part `json:"parts,omitempty"`
}

type s3Part struct {
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

func (s s3Session) partsSize() int64 {
	var n int64
	for _, p := range s.Parts {
		n += p.Size
	}
	return n
}

func decodeS3Session(sess Session) (s3Session, error) {
	var st s3Session
	if err := json.Unmarshal(sess.State, &st); err != nil || st.Key == "" {
		return st, fmt.Errorf("upload %s: no S3 session state", sess.ID)
	}
	if sess.Offset < st.partsSize() {
		return st, fmt.Errorf("upload %s: offset %d is before its parts' end %d", sess.ID, sess.Offset, st.partsSize())
	}
	return st, nil
}

// partSize is the size of part number n (from 1).
func partSize(n int) int {
	if n <= s3SmallParts {
		return s3PartSize
	}
	return s3LargePartSize
}

// tailPath is the file of a session's bytes past its nparts parts.
func (b *s3Blobs) tailPath(id string, nparts int) string {
	return filepath.Join(b.uploads, id+".t"+strconv.Itoa(nparts))
}

// markerPath is the session's empty file in DATA/uploads: GC and verify
// find sessions by it, as they find the directory's session files.
func (b *s3Blobs) markerPath(id string) string { return filepath.Join(b.uploads, id) }

func (b *s3Blobs) StartSession(ctx context.Context, id string) ([]byte, error) {
	f, err := os.OpenFile(b.markerPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	f.Close()
	return json.Marshal(s3Session{Key: b.newKey(id)})
}

// readTail returns the sess.Offset - parts bytes of the session's tail.
func (b *s3Blobs) readTail(sess Session, st s3Session, buf []byte) ([]byte, error) {
	n := sess.Offset - st.partsSize()
	if n == 0 {
		return buf[:0], nil
	}
	f, err := os.Open(b.tailPath(sess.ID, len(st.Parts)))
	if err != nil {
		return nil, fmt.Errorf("open upload tail: %w", err)
	}
	defer f.Close()
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("read upload tail: %w", err)
	}
	return buf, nil
}

// removeStaleTails removes the session's tail files other than keep's
// (those of part sets a later record replaced, or never recorded).
func (b *s3Blobs) removeStaleTails(id, keep string) {
	old, _ := filepath.Glob(filepath.Join(b.uploads, id+".t*"))
	for _, p := range old {
		if p != keep {
			os.Remove(p)
		}
	}
}

func (b *s3Blobs) AppendSession(ctx context.Context, sess Session) (SessionWriter, error) {
	st, err := decodeS3Session(sess)
	if err != nil {
		return nil, err
	}
	b.removeStaleTails(sess.ID, b.tailPath(sess.ID, len(st.Parts)))
	buf, err := b.readTail(sess, st, make([]byte, 0, partSize(len(st.Parts)+1)))
	if err != nil {
		return nil, err
	}
	return &s3SessionWriter{b: b, ctx: ctx, id: sess.ID, st: st, buf: buf}, nil
}

// s3SessionWriter buffers a session's bytes to whole parts and sends each
// as it fills. One part is in flight while the next one fills, so reading
// the client and sending to S3 overlap; memory is two parts per session
// being written.
type s3SessionWriter struct {
	b        *s3Blobs
	ctx      context.Context
	id       string
	st       s3Session // parts sent and acknowledged so far, this request's included
	buf      []byte    // the bytes past the last part sent
	spare    []byte    // the buffer of the last part acknowledged, for reuse
	inflight *s3Inflight
}

// s3Inflight is a part being sent.
type s3Inflight struct {
	done chan struct{}
	buf  []byte
	etag string
	err  error
}

func (w *s3SessionWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		size := partSize(w.nextPart())
		k := min(len(p), size-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		written += k
		if len(w.buf) == size {
			if err := w.startPart(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// nextPart is the number of the part the buffer fills.
func (w *s3SessionWriter) nextPart() int {
	n := len(w.st.Parts) + 1
	if w.inflight != nil {
		n++
	}
	return n
}

// startPart sends the buffer as the next part in the background, once the
// part before it is acknowledged, starting the multipart upload on the
// first part.
func (w *s3SessionWriter) startPart() error {
	if err := w.wait(); err != nil {
		return err
	}
	b := w.b
	if w.st.UploadID == "" {
		ctx, cancel := context.WithTimeout(w.ctx, s3OpTimeout)
		id, err := b.core.NewMultipartUpload(ctx, b.bucket, w.st.Key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
		cancel()
		if err != nil {
			return s3Error("start multipart upload", err)
		}
		w.st.UploadID = id
	}
	n := len(w.st.Parts) + 1
	f := &s3Inflight{done: make(chan struct{}), buf: w.buf}
	w.inflight = f
	go func() {
		defer close(f.done)
		ctx, cancel := context.WithTimeout(w.ctx, s3PartTimeout)
		defer cancel()
		// The payload is not hashed for the signature (minio-go would hash
		// every part a second time): berth hashes the bytes itself, and
		// HTTPS protects them on the way.
		part, err := b.core.PutObjectPart(ctx, b.bucket, w.st.Key, w.st.UploadID, n,
			bytes.NewReader(f.buf), int64(len(f.buf)), minio.PutObjectPartOptions{DisableContentSha256: true})
		f.etag, f.err = part.ETag, s3Error("upload part "+strconv.Itoa(n), err)
	}()
	size := partSize(n + 1)
	if cap(w.spare) < size {
		w.spare = make([]byte, 0, size)
	}
	w.buf, w.spare = w.spare[:0], nil
	return nil
}

// wait waits for the part in flight, if any, and records it.
func (w *s3SessionWriter) wait() error {
	f := w.inflight
	if f == nil {
		return nil
	}
	<-f.done
	w.inflight = nil
	if f.err != nil {
		return f.err
	}
	w.st.Parts = append(w.st.Parts, s3Part{ETag: f.etag, Size: int64(len(f.buf))})
	w.spare = f.buf[:0]
	return nil
}

// Commit waits for the part in flight, writes the tail to the file its
// part count names (synced, then renamed into place) and returns the new
// state. When no part was sent the file keeps its name and grows by the
// new bytes: the record still on disk reads only its own prefix of it.
func (w *s3SessionWriter) Commit() ([]byte, error) {
	if err := w.wait(); err != nil {
		return nil, err
	}
	path := w.b.tailPath(w.id, len(w.st.Parts))
	tail := w.buf
	err := WriteFileAtomic(path, 0o600, func(f io.Writer) error {
		_, err := f.Write(tail)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write upload tail: %w", err)
	}
	w.buf = nil
	return json.Marshal(w.st)
}

// Abort forgets this request's bytes: parts it sent are overwritten by the
// next request's parts of the same numbers, or aborted with the session.
func (w *s3SessionWriter) Abort() error {
	w.wait()
	w.buf = nil
	return nil
}

func (b *s3Blobs) FinishSession(ctx context.Context, sess Session, d Digest) (StagedBlob, error) {
	st, err := decodeS3Session(sess)
	if err != nil {
		return StagedBlob{}, err
	}
	tail, err := b.readTail(sess, st, nil)
	if err != nil {
		return StagedBlob{}, err
	}
	if st.UploadID == "" {
		// Smaller than one part: one PUT.
		pctx, cancel := context.WithTimeout(ctx, s3PartTimeout)
		_, err := b.core.Client.PutObject(pctx, b.bucket, st.Key, bytes.NewReader(tail), int64(len(tail)),
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
		cancel()
		if err != nil {
			return StagedBlob{}, s3Error("put "+string(d), err)
		}
	} else {
		if len(tail) > 0 {
			w := &s3SessionWriter{b: b, ctx: ctx, id: sess.ID, st: st, buf: tail}
			if err := errors.Join(w.startPart(), w.wait()); err != nil {
				return StagedBlob{}, err
			}
			st = w.st
		}
		parts := make([]minio.CompletePart, len(st.Parts))
		for i, p := range st.Parts {
			parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag}
		}
		cctx, cancel := context.WithTimeout(ctx, s3PartTimeout)
		_, err := b.core.CompleteMultipartUpload(cctx, b.bucket, st.Key, st.UploadID, parts, minio.PutObjectOptions{})
		cancel()
		if err != nil {
			return StagedBlob{}, s3Error("complete multipart upload", err)
		}
	}
	// The object holds every byte now; the local tail is of no more use.
	b.removeStaleTails(sess.ID, "")
	os.Remove(b.markerPath(sess.ID))
	return StagedBlob{Digest: d, Size: sess.Offset, key: st.Key}, nil
}

func (b *s3Blobs) AbortSession(ctx context.Context, sess Session) error {
	b.removeStaleTails(sess.ID, "")
	if err := os.Remove(b.markerPath(sess.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove upload file: %w", err)
	}
	st, err := decodeS3Session(sess)
	if err != nil {
		return nil // nothing was sent to S3
	}
	ctx, cancel := context.WithTimeout(ctx, s3OpTimeout)
	defer cancel()
	if st.UploadID != "" {
		err := b.core.AbortMultipartUpload(ctx, b.bucket, st.Key, st.UploadID)
		if c := minio.ToErrorResponse(err).Code; err != nil && c != "NoSuchUpload" {
			return s3Error("abort multipart upload", err)
		}
	}
	// Finished but never recorded (a commit that failed after it).
	b.core.RemoveObject(ctx, b.bucket, st.Key, minio.RemoveObjectOptions{})
	return nil
}

// OpenSession: the parts of an unfinished multipart upload cannot be read
// back; the caller hashes the finished object instead.
func (b *s3Blobs) OpenSession(ctx context.Context, sess Session) (io.ReadCloser, error) {
	return nil, ErrNotSupported
}

func (b *s3Blobs) Discard(ctx context.Context, s StagedBlob) {
	if s.key != "" {
		b.deleteKey(s.key)
	}
}

// place has nothing to do: the object is final once written.
func (b *s3Blobs) place(s StagedBlob) (string, error) { return "", nil }

func (b *s3Blobs) syncPlaced(string) error { return nil }

// URL presigns a GET of ref for ttl, on the public endpoint when one is
// set. Presigning is local: no request to S3.
func (b *s3Blobs) URL(ctx context.Context, ref BlobRef, ttl time.Duration) (string, error) {
	u, err := b.public.PresignedGetObject(ctx, b.bucket, b.key(ref), ttl, nil)
	if err != nil {
		return "", s3Error("presign "+string(ref.Digest), err)
	}
	return u.String(), nil
}
