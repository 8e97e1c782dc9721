package integration

// A lean load generator for the small-request rows of bench-compare. Go's
// net/http client spends about as much CPU on a manifest HEAD as berth's
// server does to answer it, and client and servers share the machine's two
// cores, so with it a rate measured the client as much as the server. Here
// each worker owns one keep-alive connection, writes request bytes built
// into a reused buffer, and reads the response with a minimal parser:
// status line, the few headers a check needs (Content-Length, Location,
// Docker-Content-Digest, Transfer-Encoding, Connection), and the body read
// into a reused buffer or discarded. No allocation per request on the
// client's side. Both servers are driven by the same code.
//
// The checks that make a figure mean something stay: the status code, the
// Content-Length, and, where the workload has one, the body or the digest
// header compared with the bytes expected on every response.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// leanConn is one keep-alive HTTP/1.1 connection of the load generator.
// It is not safe for concurrent use: each worker has its own.
type leanConn struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	req  []byte // a request being built, reused
	head []byte // a request built once for the connection (leanManifest)
	auth []byte // an "Authorization: ...\r\n" line added by the builders, or nil

	// The last response; the slices are reused by the next one.
	status   int
	length   int64
	location []byte // Location, reduced to its path and query
	digest   []byte // Docker-Content-Digest
	body     []byte // the body, when the caller kept it
	closing  bool   // the server said Connection: close
}

func dialLean(addr string) (*leanConn, error) {
	lc := &leanConn{addr: addr}
	return lc, lc.redial()
}

func (lc *leanConn) redial() error {
	if lc.conn != nil {
		lc.conn.Close()
	}
	c, err := net.Dial("tcp", lc.addr)
	if err != nil {
		return err
	}
	lc.conn, lc.closing = c, false
	if lc.r == nil {
		lc.r = bufio.NewReaderSize(c, 64<<10)
	} else {
		lc.r.Reset(c)
	}
	return nil
}

func (lc *leanConn) Close() {
	if lc.conn != nil {
		lc.conn.Close()
	}
}

// start begins a request in lc.req: the request line for path followed
// by the tail parts, Host and, when set, the Authorization line. The
// caller appends further headers and ends the head with end.
func (lc *leanConn) start(method, path string, tail ...[]byte) {
	lc.req = append(lc.req[:0], method...)
	lc.req = append(lc.req, ' ')
	lc.req = append(lc.req, path...)
	for _, p := range tail {
		lc.req = append(lc.req, p...)
	}
	lc.req = append(lc.req, " HTTP/1.1\r\nHost: "...)
	lc.req = append(lc.req, lc.addr...)
	lc.req = append(lc.req, "\r\n"...)
	lc.req = append(lc.req, lc.auth...)
}

// end closes the head with Content-Length and appends body.
func (lc *leanConn) end(body []byte) {
	lc.req = append(lc.req, "Content-Length: "...)
	lc.req = strconv.AppendInt(lc.req, int64(len(body)), 10)
	lc.req = append(lc.req, "\r\n\r\n"...)
	lc.req = append(lc.req, body...)
}

// send writes lc.req and reads the response, failing unless its status is
// want. head says the request was a HEAD (no body follows); keep reads the
// body into lc.body, else it is discarded.
func (lc *leanConn) send(want int, head, keep bool) error {
	return lc.roundTrip(lc.req, want, head, keep)
}

// roundTrip writes req, a whole request, and reads the response like send.
func (lc *leanConn) roundTrip(req []byte, want int, head, keep bool) error {
	if lc.closing {
		if err := lc.redial(); err != nil {
			return err
		}
	}
	if _, err := lc.conn.Write(req); err != nil {
		return err
	}
	if err := lc.readResponse(head, keep); err != nil {
		return err
	}
	if lc.status != want {
		return fmt.Errorf("%s: status %d, want %d: %.300s", requestLine(req), lc.status, want, lc.body)
	}
	return nil
}

func requestLine(req []byte) []byte {
	if i := bytes.Index(req, []byte(" HTTP/1.1")); i > 0 {
		return req[:i]
	}
	return req
}

var (
	hdrContentLength    = []byte("content-length")
	hdrLocation         = []byte("location")
	hdrDigest           = []byte("docker-content-digest")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrConnection       = []byte("connection")
	errNoLength         = errors.New("response has neither Content-Length nor chunked encoding")
)

// readResponse reads one response: its status, the headers the checks
// need, and its body into lc.body when keep (or when the status is an
// error, so the message can be shown), else discarded.
func (lc *leanConn) readResponse(head, keep bool) error {
	line, err := lc.r.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("read status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return fmt.Errorf("bad status line %q", line)
	}
	lc.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	lc.length = -1
	lc.location, lc.digest, lc.body = lc.location[:0], lc.digest[:0], lc.body[:0]
	chunked := false
	for {
		line, err = lc.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return fmt.Errorf("bad header line %q", line)
		}
		name, value := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			n, err := parseDecimal(value)
			if err != nil {
				return fmt.Errorf("bad Content-Length %q", value)
			}
			lc.length = n
		case bytes.EqualFold(name, hdrLocation):
			// distribution's Location is absolute; keep the path.
			if i := bytes.Index(value, []byte("/v2/")); i > 0 {
				value = value[i:]
			}
			lc.location = append(lc.location, value...)
		case bytes.EqualFold(name, hdrDigest):
			lc.digest = append(lc.digest, value...)
		case bytes.EqualFold(name, hdrTransferEncoding):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, hdrConnection):
			lc.closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	keep = keep || lc.status >= 400
	switch {
	case head || lc.status == 204 || lc.status == 304 || lc.status < 200:
		return nil
	case chunked:
		return lc.readChunked(keep)
	case lc.length < 0:
		return errNoLength
	case keep:
		lc.body = growTo(lc.body, int(lc.length))
		_, err = io.ReadFull(lc.r, lc.body)
	default:
		_, err = lc.r.Discard(int(lc.length))
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// readChunked reads a chunked body (RFC 9112 section 7.1), without
// trailers of interest.
func (lc *leanConn) readChunked(keep bool) error {
	for {
		line, err := lc.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := lc.r.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if keep {
			old := len(lc.body)
			lc.body = growTo(lc.body, old+int(n))
			_, err = io.ReadFull(lc.r, lc.body[old:])
		} else {
			_, err = lc.r.Discard(int(n))
		}
		if err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
		if _, err := lc.r.Discard(2); err != nil {
			return fmt.Errorf("read chunk end: %w", err)
		}
	}
}

// growTo returns b resized to n bytes, reusing its array when large enough.
func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}

func parseDecimal(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, errNoLength
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNoLength
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// wantLength checks the last response's Content-Length.
func (lc *leanConn) wantLength(n int) error {
	if lc.length != int64(n) {
		return fmt.Errorf("Content-Length %d, want %d", lc.length, n)
	}
	return nil
}

// wantDigest checks the last response's Docker-Content-Digest.
func (lc *leanConn) wantDigest(d []byte) error {
	if !bytes.Equal(lc.digest, d) {
		return fmt.Errorf("Docker-Content-Digest %q, want %q", lc.digest, d)
	}
	return nil
}

// leanToken fetches a pull token for repo from s's /token with Basic auth,
// on lc, and makes lc send it as a Bearer token from then on: once per
// connection, as docker fetches one per pull.
func leanToken(lc *leanConn, repo, basic string) error {
	lc.auth = nil
	lc.start("GET", "/token?service=berth&scope=repository:"+repo+":pull")
	lc.req = append(lc.req, "Authorization: "+basic+"\r\n"...)
	lc.end(nil)
	if err := lc.send(200, false, true); err != nil {
		return err
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(lc.body, &resp); err != nil || resp.Token == "" {
		return fmt.Errorf("token response %q: %v", lc.body, err)
	}
	lc.auth = []byte("Authorization: Bearer " + resp.Token + "\r\n")
	return nil
}

// leanResult is one run of the load generator against one server.
type leanResult struct {
	rate      float64       // operations per second, wall clock
	serverCPU time.Duration // the server's CPU (user+system) per operation
	clientCPU time.Duration // this process's CPU per operation: the generator's cost
	p50       time.Duration
}

// leanRun runs op(conn, 0) … op(conn, n-1) from c workers, each with its
// own connection to s (prepared by prepare, when not nil, before the clock
// starts), and measures the rate, the median latency, and the CPU time of
// the server and of this process per operation. The first error ends the
// test: a figure from a run that failed would mean nothing.
func leanRun(t testing.TB, s *server, c, n int, prepare func(lc *leanConn) error, op func(lc *leanConn, i int) error) leanResult {
	t.Helper()
	conns := make([]*leanConn, c)
	for w := range conns {
		lc, err := dialLean(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		if prepare != nil {
			if err := prepare(lc); err != nil {
				t.Fatal(err)
			}
		}
		conns[w] = lc
	}
	server0, client0 := serverCPU(t, s), selfCPU(t)
	lat, took, err := runWorkers(c, n, func(w, i int) error { return op(conns[w], i) })
	server1, client1 := serverCPU(t, s), selfCPU(t)
	if err != nil {
		t.Fatal(err)
	}
	return leanResult{
		rate:      float64(n) / took.Seconds(),
		serverCPU: (server1 - server0) / time.Duration(n),
		clientCPU: (client1 - client0) / time.Duration(n),
		p50:       lat[len(lat)/2],
	}
}

// selfCPU is the CPU time, user and system, this test process has used.
func selfCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The workloads, written once for both servers.

// leanManifest reads manifest by tag from repo (HEAD, or GET with the body
// compared), checking status, Content-Length and Docker-Content-Digest on
// every response. The request bytes are built once per connection.
func leanManifest(method, repo, tag string, manifest []byte) func(lc *leanConn, i int) error {
	d := []byte(sha256Digest(manifest))
	head := method == "HEAD"
	path := "/v2/" + repo + "/manifests/" + tag
	return func(lc *leanConn, _ int) error {
		if lc.head == nil {
			lc.start(method, path)
			lc.req = append(lc.req, "Accept: "+mediaTypeOCIManifest+"\r\n\r\n"...)
			lc.head = bytes.Clone(lc.req)
		}
		if err := lc.roundTrip(lc.head, 200, head, !head); err != nil {
			return err
		}
		if err := lc.wantLength(len(manifest)); err != nil {
			return err
		}
		if err := lc.wantDigest(d); err != nil {
			return err
		}
		if !head && !bytes.Equal(lc.body, manifest) {
			return fmt.Errorf("GET manifest %s:%s: body differs from the one pushed", repo, tag)
		}
		return nil
	}
}

// leanRepo holds the request paths of one repository, built once so that
// a request costs no string concatenation.
type leanRepo struct {
	name, uploads, uploadsDigest, blobs, manifests string
}

func newLeanRepo(name string) leanRepo {
	return leanRepo{
		name:          name,
		uploads:       "/v2/" + name + "/blobs/uploads/",
		uploadsDigest: "/v2/" + name + "/blobs/uploads/?digest=",
		blobs:         "/v2/" + name + "/blobs/",
		manifests:     "/v2/" + name + "/manifests/",
	}
}

// leanPushPostPut pushes blob as POST for a session, then one PUT with the
// body and ?digest=, each answered as the spec says (202, 201).
func leanPushPostPut(lc *leanConn, repo leanRepo, blob, d []byte) error {
	lc.start("POST", repo.uploads)
	lc.end(nil)
	if err := lc.send(202, false, false); err != nil {
		return err
	}
	return leanPutSession(lc, blob, d)
}

// leanPutSession PUTs blob to the session at lc.location with ?digest=d.
func leanPutSession(lc *leanConn, blob, d []byte) error {
	if len(lc.location) == 0 {
		return errors.New("no Location in the answer to POST")
	}
	sep := queryDigest
	if bytes.IndexByte(lc.location, '?') >= 0 {
		sep = andDigest
	}
	lc.start("PUT", "", lc.location, sep, d)
	lc.req = append(lc.req, "Content-Type: application/octet-stream\r\n"...)
	lc.end(blob)
	return lc.send(201, false, false)
}

var queryDigest, andDigest = []byte("?digest="), []byte("&digest=")

// leanPushOneRequest pushes blob in one POST with ?digest=; a registry
// that answers 202 (distribution ignores the body) gets it again in a PUT
// to the session, the fallback go-containerregistry and containerd take.
func leanPushOneRequest(lc *leanConn, repo leanRepo, blob, d []byte) error {
	lc.start("POST", repo.uploadsDigest, d)
	lc.req = append(lc.req, "Content-Type: application/octet-stream\r\n"...)
	lc.end(blob)
	err := lc.send(201, false, false)
	if err != nil && lc.status == 202 {
		return leanPutSession(lc, blob, d)
	}
	return err
}

// leanPull GETs blob d and compares the body with want.
func leanPull(lc *leanConn, repo leanRepo, d, want []byte) error {
	lc.start("GET", repo.blobs, d)
	lc.req = append(lc.req, "\r\n"...)
	if err := lc.send(200, false, true); err != nil {
		return err
	}
	if !bytes.Equal(lc.body, want) {
		return fmt.Errorf("blob %s: pulled %d bytes that differ from the %d pushed", d, len(lc.body), len(want))
	}
	return nil
}

// leanPutManifest PUTs body as an OCI manifest under ref.
func leanPutManifest(lc *leanConn, repo leanRepo, ref, body []byte) error {
	lc.start("PUT", repo.manifests, ref)
	lc.req = append(lc.req, "Content-Type: "+mediaTypeOCIManifest+"\r\n"...)
	lc.end(body)
	return lc.send(201, false, false)
}

// TestLeanLoadGen drives berth through the lean load generator and checks
// that each workload succeeds and that its checks catch a wrong answer.
func TestLeanLoadGen(t *testing.T) {
	s := startServer(t, "")
	repo := newLeanRepo("lean/test")
	blobs, digests := newSmallBlobs("lean-", 3)
	lc, err := dialLean(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if err := leanPushPostPut(lc, repo, blobs[0], digests[0]); err != nil {
		t.Fatalf("POST+PUT: %v", err)
	}
	if err := leanPushOneRequest(lc, repo, blobs[1], digests[1]); err != nil {
		t.Fatalf("monolithic POST: %v", err)
	}
	for i := range 2 {
		if err := leanPull(lc, repo, digests[i], blobs[i]); err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
	}
	if err := leanPull(lc, repo, digests[0], blobs[1]); err == nil {
		t.Fatal("pull compared with the wrong content: no error")
	}
	if err := leanPull(lc, repo, digests[2], blobs[2]); err == nil || lc.status != 404 {
		t.Fatalf("pull of a blob never pushed: err %v, status %d, want a 404", err, lc.status)
	}
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":%s,"layers":[%s]}`, mediaTypeOCIManifest,
		descJSON(descriptor{MediaType: mediaTypeOCIConfig, Digest: string(digests[0]), Size: 4096}),
		descJSON(descriptor{MediaType: mediaTypeOCILayer, Digest: string(digests[1]), Size: 4096})))
	if err := leanPutManifest(lc, repo, []byte("v1"), manifest); err != nil {
		t.Fatalf("manifest PUT: %v", err)
	}
	for _, method := range []string{"HEAD", "GET"} {
		res := leanRun(t, s, 4, 200, nil, leanManifest(method, repo.name, "v1", manifest))
		if res.rate <= 0 {
			t.Errorf("%s: rate %v", method, res.rate)
		}
		other := bytes.Replace(manifest, []byte(`"schemaVersion":2`), []byte(`"schemaVersion": 2`), 1)
		if err := leanManifest(method, repo.name, "v1", other)(lc, 0); err == nil {
			t.Errorf("%s checked against another manifest: no error", method)
		}
		lc.head = nil
	}

	tok := benchRegistry(t, "token")
	lc2, err := dialLean(tok.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer lc2.Close()
	if err := leanManifest("HEAD", benchRepo, "v0", nil)(lc2, 0); err == nil || lc2.status != 401 {
		t.Fatalf("HEAD without a token: err %v, status %d, want a 401", err, lc2.status)
	}
	lc2.head = nil
	if err := leanToken(lc2, benchRepo, basicAuth(benchUser, benchPassword)); err != nil {
		t.Fatal(err)
	}
	if err := leanManifest("HEAD", benchRepo, "v0", nil)(lc2, 0); err == nil || lc2.status != 200 {
		t.Fatalf("HEAD with a token: err %v, status %d; want 200 and a mismatch against an empty manifest", err, lc2.status)
	}
}

// BenchmarkLeanManifest is manifest HEAD and GET by tag at c=32 through the
// lean load generator, with --auth none and with a Bearer token fetched
// once per connection, reporting the server's CPU per request: the rows of
// bench-compare's token table without distribution, for profiling.
func BenchmarkLeanManifest(b *testing.B) {
	modes, manifest := leanAuthModes(b)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		for _, m := range modes {
			b.Run("auth="+m.name+"/"+method, func(b *testing.B) {
				res := leanRun(b, m.s, benchConcurrency, max(b.N, 1000), m.prepare,
					leanManifest(method, benchRepo, "v0", manifest))
				b.ReportMetric(res.rate, "req/s")
				b.ReportMetric(micros(res.serverCPU), "server-cpu-us/op")
				b.ReportMetric(micros(res.clientCPU), "client-cpu-us/op")
			})
		}
	}
}

// BenchmarkLeanSmallPush pushes distinct 4 KiB blobs at c=32 through the
// lean load generator, as POST then PUT and as one monolithic POST,
// reporting the rate and the server's CPU per push. With BERTH_TEST_BIN
// naming another build it measures that one: run old and new in turn for
// an A/B.
func BenchmarkLeanSmallPush(b *testing.B) {
	s := startBenchServer(b, "")
	repo := newLeanRepo("bench/small")
	var run atomic.Uint64
	for _, flow := range []string{"post-put", "monolithic"} {
		b.Run(flow, func(b *testing.B) {
			blobs, digests := newSmallBlobs(fmt.Sprintf("%s-%d-", flow, run.Add(1)), max(b.N, 1000))
			res := leanRun(b, s, benchConcurrency, len(blobs), nil, func(lc *leanConn, i int) error {
				if flow == "post-put" {
					return leanPushPostPut(lc, repo, blobs[i], digests[i])
				}
				return leanPushOneRequest(lc, repo, blobs[i], digests[i])
			})
			b.ReportMetric(res.rate, "ops/s")
			b.ReportMetric(micros(res.serverCPU), "server-cpu-us/op")
			b.ReportMetric(micros(res.clientCPU), "client-cpu-us/op")
		})
	}
}

// leanAuthMode is a berth and how a connection to it signs in.
type leanAuthMode struct {
	name    string
	s       *server
	prepare func(lc *leanConn) error // nil: no sign-in
}

// leanAuthModes starts two berths holding the same image (benchRegistry's
// benchRepo:v0), one with --auth none and one with token auth, where each
// connection fetches a pull token once (as docker does once per pull) and
// sends it as Bearer on every request; it returns them, named "none" and
// "bearer", and the image's manifest.
func leanAuthModes(t testing.TB) ([]leanAuthMode, []byte) {
	none, token := benchRegistry(t, "none"), benchRegistry(t, "token")
	req, _ := http.NewRequest(http.MethodGet, none.URL("/v2/"+benchRepo+"/manifests/v0"), nil)
	req.Header.Set("Accept", mediaTypeOCIManifest)
	var manifest bytes.Buffer
	if _, _, err := benchCall(benchClient(t), req, http.StatusOK, &manifest); err != nil {
		t.Fatal(err)
	}
	basic := basicAuth(benchUser, benchPassword)
	return []leanAuthMode{
		{"none", none, nil},
		{"bearer", token, func(lc *leanConn) error { return leanToken(lc, benchRepo, basic) }},
	}, manifest.Bytes()
}

// BenchmarkLeanSmallPull pulls 512 stored 4 KiB blobs round and round at
// c=32 through the lean load generator, each compared byte for byte,
// reporting the rate and the server's CPU per pull. BERTH_TEST_BIN makes it
// an A/B like BenchmarkLeanSmallPush.
func BenchmarkLeanSmallPull(b *testing.B) {
	s := startBenchServer(b, "")
	blobs, digests := newSmallBlobs("lean-pull-", 512)
	for i, blob := range blobs {
		if err := benchPush(benchClient(b), s, "bench/pull", string(digests[i]), bytes.NewReader(blob), false); err != nil {
			b.Fatal(err)
		}
	}
	repo := newLeanRepo("bench/pull")
	res := leanRun(b, s, benchConcurrency, max(b.N, 10000), nil, func(lc *leanConn, i int) error {
		k := i % len(blobs)
		return leanPull(lc, repo, digests[k], blobs[k])
	})
	b.ReportMetric(res.rate, "ops/s")
	b.ReportMetric(micros(res.serverCPU), "server-cpu-us/op")
	b.ReportMetric(micros(res.clientCPU), "client-cpu-us/op")
}
