package integration

// Benchmarks behind the numbers of docs/performance.md: the physical limits
// of the machine next to push and pull throughput of the real binary over
// loopback, request rates at concurrency 32 with latency percentiles, the
// server's memory and its start-up time. Client and server share the
// machine's cores, so every rate here is for both together. Numbers are
// reported, never asserted. BERTH_BENCH_LARGE=1 adds the 4 GiB layer run.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

const (
	benchConcurrency = 32
	benchUser        = "bench"
	benchPassword    = "bench-password"
	benchRepo        = "bench/small" // the bench user may push here under the default rules
	blockSize        = 1 << 20
)

// BenchmarkLimits measures what bounds a push on this machine: sha256 on one
// core, and writing to the data dir's filesystem (the temp dirs of the
// servers below) including the fsync a push ends with.
func BenchmarkLimits(b *testing.B) {
	b.Run("sha256", func(b *testing.B) {
		buf := seededBytes(1, 64<<20)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for range b.N {
			sha256.Sum256(buf)
		}
	})
	b.Run("disk-write-fsync", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(1 << 30)
		for i := range b.N {
			path := filepath.Join(dir, fmt.Sprint(i))
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, newPatternReader(uint64(i), 1<<30)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			b.StopTimer()
			os.Remove(path)
			b.StartTimer()
		}
	})
}

// BenchmarkLargeBlob pushes and pulls a 1 GiB blob: POST then one PUT with
// the whole body, POST then a chunked PATCH and an empty PUT (what docker
// sends), and GET, its body hashed and checked as a client does. Every push
// is of new content, so it takes the path of a new blob (rename, directory
// fsync) rather than that of a blob already stored (drop the upload).
// pull-unchecked discards the body unhashed: the server's side alone, since
// the client's sha256 shares the two cores with it.
func BenchmarkLargeBlob(b *testing.B) {
	const size = 1 << 30
	s := startServer(b, "")
	client := benchClient(b)
	pushes := []struct {
		name    string
		chunked bool
	}{{"push-post-put", false}, {"push-post-patch-chunked", true}}
	for _, push := range pushes {
		b.Run(push.name, func(b *testing.B) {
			b.SetBytes(size)
			var cpu time.Duration
			for range b.N {
				b.StopTimer()
				seed := benchSeed.Add(1)
				d := patternDigest(b, seed, size)
				before := serverCPU(b, s)
				b.StartTimer()
				if err := benchPush(client, s, "bench/large", d, newPatternReader(seed, size), push.chunked); err != nil {
					b.Fatal(err)
				}
				cpu += serverCPU(b, s) - before
			}
			reportServerCPU(b, cpu)
		})
	}
	seed := benchSeed.Add(1)
	d := patternDigest(b, seed, size)
	if err := benchPush(client, s, "bench/large", d, newPatternReader(seed, size), false); err != nil {
		b.Fatal(err)
	}
	pulls := []struct {
		name  string
		check bool
	}{{"pull", true}, {"pull-unchecked", false}}
	for _, pull := range pulls {
		b.Run(pull.name, func(b *testing.B) {
			b.SetBytes(size)
			before := serverCPU(b, s)
			for range b.N {
				if err := benchPull(client, s, "bench/large", d, size, pull.check); err != nil {
					b.Fatal(err)
				}
			}
			reportServerCPU(b, serverCPU(b, s)-before)
		})
	}
}

// BenchmarkLargeLayerRSS pushes a 4 GiB layer both ways (POST+PUT, then a
// chunked PATCH) and pulls it, then reports the server's peak resident set
// (VmHWM): the check that bodies are streamed, not buffered. It needs
// BERTH_BENCH_LARGE=1, 8 GiB of free disk and about a minute.
func BenchmarkLargeLayerRSS(b *testing.B) {
	if os.Getenv("BERTH_BENCH_LARGE") != "1" {
		b.Skip("set BERTH_BENCH_LARGE=1 to push and pull a 4 GiB layer")
	}
	const size = 4 << 30
	s := startServer(b, "")
	client := benchClient(b)
	seed := benchSeed.Add(1)
	d := patternDigest(b, seed, size)
	b.SetBytes(3 * size)
	b.ResetTimer()
	for range b.N {
		// The second push, of the same content, streams as much but ends
		// by dropping the upload: the blob is stored already.
		for _, chunked := range []bool{false, true} {
			if err := benchPush(client, s, "bench/huge", d, newPatternReader(seed, size), chunked); err != nil {
				b.Fatal(err)
			}
		}
		if err := benchPull(client, s, "bench/huge", d, size, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(procStatusKiB(b, s, "VmHWM"))/1024, "peak-RSS-MiB")
}

// BenchmarkSmallBlob pushes distinct 4 KiB blobs (monolithic POST with
// ?digest=, and POST then PUT) and pulls them, at concurrency 32.
func BenchmarkSmallBlob(b *testing.B) {
	s := startServer(b, "")
	client := benchClient(b)
	// A random prefix and a run number make every pushed blob new, even
	// across the reruns that testing.B makes of each sub-benchmark.
	prefix := make([]byte, 16)
	rand.Read(prefix[:8])
	var run uint64
	for _, flow := range []string{"push-post", "push-post-put"} {
		b.Run(flow, func(b *testing.B) {
			run++
			binary.BigEndian.PutUint64(prefix[8:], run)
			runConcurrently(b, s, "ops/s", func(i int) error {
				blob := smallBlob(prefix, i)
				d := sha256Digest(blob)
				if flow == "push-post-put" {
					return benchPush(client, s, benchRepo, d, bytes.NewReader(blob), false)
				}
				req, _ := http.NewRequest(http.MethodPost, s.URL("/v2/"+benchRepo+"/blobs/uploads/?digest="+d), bytes.NewReader(blob))
				_, _, err := benchCall(client, req, http.StatusCreated, nil)
				return err
			})
		})
	}
	const pulled = 512
	digests := make([]string, pulled)
	for i := range digests {
		blob := smallBlob([]byte("pull"), i)
		digests[i] = sha256Digest(blob)
		if err := benchPush(client, s, benchRepo, digests[i], bytes.NewReader(blob), false); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("pull", func(b *testing.B) {
		runConcurrently(b, s, "ops/s", func(i int) error {
			return benchPull(client, s, benchRepo, digests[i%pulled], 4<<10, true)
		})
		// The server's peak over the pushes and pulls so far.
		b.ReportMetric(float64(procStatusKiB(b, s, "VmHWM"))/1024, "peak-RSS-MiB")
	})
}

// smallBlob is 4 KiB starting with prefix and i, so each (prefix, i) gives
// a different digest.
func smallBlob(prefix []byte, i int) []byte {
	blob := make([]byte, 4<<10)
	n := copy(blob, prefix)
	binary.BigEndian.PutUint64(blob[n:], uint64(i))
	return blob
}

// BenchmarkManifest reads a small manifest by tag, HEAD and GET at
// concurrency 32, with --auth none, and with --auth token both with a
// Bearer token fetched once and with Basic auth on every request.
func BenchmarkManifest(b *testing.B) {
	none := benchRegistry(b, "none")
	token := benchRegistry(b, "token")
	noPulls := benchRegistry(b, "none", "--no-pull-times")
	modes := []struct {
		name          string
		s             *server
		authorization string
	}{
		{"auth=none", none, ""},
		// The cost of noting last-pull times for retention (GET only).
		{"auth=none,no-pull-times", noPulls, ""},
		{"auth=bearer", token, "Bearer " + fetchToken(b, token)},
		{"auth=basic", token, basicAuth(benchUser, benchPassword)},
	}
	for _, m := range modes {
		client := benchClient(b)
		for _, method := range []string{http.MethodHead, http.MethodGet} {
			b.Run(m.name+"/"+method, func(b *testing.B) {
				runConcurrently(b, m.s, "req/s", func(int) error {
					req, _ := http.NewRequest(method, m.s.URL("/v2/"+benchRepo+"/manifests/v0"), nil)
					if m.authorization != "" {
						req.Header.Set("Authorization", m.authorization)
					}
					h, _, err := benchCall(client, req, http.StatusOK, nil)
					if err == nil && h.Get("Docker-Content-Digest") == "" {
						err = fmt.Errorf("%s manifest: no Docker-Content-Digest", method)
					}
					return err
				})
			})
		}
	}
}

// BenchmarkToken asks /token for a pull token with Basic auth, at
// concurrency 32: what every docker pull starts with.
func BenchmarkToken(b *testing.B) {
	s := benchRegistry(b, "token")
	client := benchClient(b)
	// One request first puts the password check in the server's cache, as
	// the first pull after a login does; without it the 32 first requests
	// would all run bcrypt at once and make the p99 of a short run.
	fetchToken(b, s)
	runConcurrently(b, s, "req/s", func(int) error {
		_, err := requestToken(client, s)
		return err
	})
}

// BenchmarkStartup times `berth serve` from process start to the first
// /healthz 200, with an empty store and with 100,000 tags (100 repositories
// of 1,000), with --auth none and token, and reports the resident set right
// after start.
func BenchmarkStartup(b *testing.B) {
	for _, repos := range []int{0, 100} {
		data := filepath.Join(b.TempDir(), "data")
		names := make([]string, repos)
		for i := range names {
			names[i] = fmt.Sprintf("bench/repo%03d", i)
		}
		fillTags(b, data, names, 1000)
		for _, mode := range []string{"none", "token"} {
			b.Run(fmt.Sprintf("tags=%d/auth=%s", repos*1000, mode), func(b *testing.B) {
				// The first start with token auth creates the admin user and
				// the signing key; the starts measured are the later ones.
				launchServer(b, data, "--auth", mode).stop(b)
				var rss int64
				b.ResetTimer()
				for range b.N {
					s := launchServer(b, data, "--auth", mode)
					b.StopTimer()
					rss = procStatusKiB(b, s, "VmRSS")
					s.stop(b)
					b.StartTimer()
				}
				b.ReportMetric(float64(rss)/1024, "idle-RSS-MiB")
			})
		}
	}
}

// launchServer starts `berth serve` on data and returns once /healthz
// answers 200. It polls every millisecond, where startServer polls every
// 20 ms, so that BenchmarkStartup can time a start.
func launchServer(b *testing.B, data string, args ...string) *server {
	b.Helper()
	addr := freeAddr(b)
	s := &server{Addr: addr, Data: data, log: &storetest.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(berthBin, append([]string{"serve", "--data", data, "--addr", addr}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	poll := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		b.Fatalf("start berth: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	b.Cleanup(func() { s.stop(b) })
	for time.Since(start) < 15*time.Second {
		select {
		case <-s.done:
			b.Fatalf("berth exited before it was ready:\n%s", s.Log())
		default:
		}
		if resp, err := poll.Get(s.URL("/healthz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("berth did not become ready in 15s:\n%s", s.Log())
	return nil
}

// benchRegistry starts berth with --auth mode on a store holding one small
// image in benchRepo, tagged v0, and the user benchUser.
func benchRegistry(b testing.TB, mode string, extra ...string) *server {
	b.Helper()
	data := b.TempDir()
	fillTags(b, data, []string{benchRepo}, 1)
	if mode == "none" {
		return startBenchServer(b, data, extra...)
	}
	_, stderr, err := runBerth(b, b.Context(), bytes.NewReader([]byte(benchPassword+"\n")),
		"user", "add", benchUser, "--password-stdin", "--data", data)
	if err != nil {
		b.Fatalf("berth user add: %v: %s", err, stderr)
	}
	return startBenchServer(b, data, "--auth", mode)
}

// fillTags writes one small image into each of repos through the store
// API, tagged v0 … v<tags-1>, with the server stopped: a way to 100,000
// tags that does not take 100,000 requests. Each PutManifest call adds a
// thousand tags (the ?tag= parameters of a put by digest).
func fillTags(b testing.TB, dir string, repos []string, tags int) {
	b.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if len(repos) == 0 {
		return
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := seededBytes(3, 4<<10)
	var descs []descriptor
	for _, blob := range [][]byte{config, layer} {
		d := store.DigestOf(store.SHA256, blob)
		if _, err := st.PutBlob(repos[0], d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
			b.Fatal(err)
		}
		for _, repo := range repos[1:] {
			if _, err := st.MountBlob(repo, repos[0], d); err != nil {
				b.Fatal(err)
			}
		}
		descs = append(descs, descriptor{MediaType: mediaTypeOCILayer, Digest: string(d), Size: int64(len(blob))})
	}
	descs[0].MediaType = mediaTypeOCIConfig
	manifest := ociManifest(b, descs[0], descs[1:])
	ref := store.Reference{Digest: store.DigestOf(store.SHA256, manifest)}
	for _, repo := range repos {
		for start := 0; start < tags; start += 1000 {
			var batch []string
			for i := start; i < min(start+1000, tags); i++ {
				batch = append(batch, fmt.Sprintf("v%d", i))
			}
			if _, _, err := st.PutManifest(repo, ref, batch, mediaTypeOCIManifest, manifest); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// fetchToken returns a pull token for benchRepo from s's /token.
func fetchToken(b *testing.B, s *server) string {
	b.Helper()
	tok, err := requestToken(benchClient(b), s)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// requestToken is GET /token for pull of benchRepo with Basic auth.
func requestToken(client *http.Client, s *server) (string, error) {
	q := url.Values{"service": {"berth"}, "scope": {"repository:" + benchRepo + ":pull"}}
	req, _ := http.NewRequest(http.MethodGet, s.URL("/token?"+q.Encode()), nil)
	req.Header.Set("Authorization", basicAuth(benchUser, benchPassword))
	var body bytes.Buffer
	if _, _, err := benchCall(client, req, http.StatusOK, &body); err != nil {
		return "", err
	}
	var resp struct{ Token string }
	if err := json.Unmarshal(body.Bytes(), &resp); err != nil || resp.Token == "" {
		return "", fmt.Errorf("token response %q: %v", body.String(), err)
	}
	return resp.Token, nil
}

// benchClient is a client with a connection for each of the concurrent
// workers (Go keeps 2 idle per host by default, and a benchmark that
// redials measures dialing). Its connections are closed before the server
// is stopped, as startRegistry does.
func benchClient(b testing.TB) *http.Client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 2 * benchConcurrency,
		DisableCompression:  true,
		// Larger than the 4 KiB defaults: fewer syscalls per large body.
		WriteBufferSize: 256 << 10,
		ReadBufferSize:  256 << 10,
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// benchCall sends req, copies the response body to sink (discarded when
// nil) and returns the headers and the body's length, or an error when the
// status is not want.
func benchCall(client *http.Client, req *http.Request, want int, sink io.Writer) (http.Header, int64, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, 0, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, msg)
	}
	if sink == nil {
		sink = io.Discard
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	n, err := io.CopyBuffer(sink, resp.Body, *buf)
	if err != nil {
		return nil, n, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	return resp.Header, n, nil
}

// copyBuffers hold the buffers of benchCall: large, so that a 1 GiB pull
// takes few reads, and reused, so that a 4 KiB one does not allocate them.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// benchPush uploads body as blob d to repo: POST for a session, then one PUT
// with the whole body and its length, or, when chunked, a PATCH streamed
// with chunked transfer encoding and an empty PUT.
func benchPush(client *http.Client, s *server, repo, d string, body io.Reader, chunked bool) error {
	req, _ := http.NewRequest(http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/"), nil)
	h, _, err := benchCall(client, req, http.StatusAccepted, nil)
	if err != nil {
		return err
	}
	loc := h.Get("Location")
	if chunked {
		// net/http knows the length of a *bytes.Reader, *bytes.Buffer or
		// *strings.Reader body only; wrapped, any body goes chunked.
		req, _ = http.NewRequest(http.MethodPatch, s.URL(loc), struct{ io.Reader }{body})
		if h, _, err = benchCall(client, req, http.StatusAccepted, nil); err != nil {
			return err
		}
		loc, body = h.Get("Location"), http.NoBody
	}
	req, _ = http.NewRequest(http.MethodPut, s.URL(withQuery(loc, "digest", d)), body)
	if r, ok := body.(*patternReader); ok {
		req.ContentLength = r.size
	}
	_, _, err = benchCall(client, req, http.StatusCreated, nil)
	return err
}

// benchPull GETs blob d of repo and checks its length and, when check is
// set, its digest.
func benchPull(client *http.Client, s *server, repo, d string, size int64, check bool) error {
	req, _ := http.NewRequest(http.MethodGet, s.URL("/v2/"+repo+"/blobs/"+d), nil)
	h := sha256.New()
	sink := io.Writer(h)
	if !check {
		sink = io.Discard
	}
	_, n, err := benchCall(client, req, http.StatusOK, sink)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("pulled %d bytes of %s, want %d", n, d, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); check && got != d {
		return fmt.Errorf("pulled %s, want %s", got, d)
	}
	return nil
}

// runConcurrently calls op(0) … op(b.N-1) from benchConcurrency goroutines
// and reports the rate as unit, the p50 and p99 latency of one call and the
// server's CPU time per call. The first error stops the run and fails the
// benchmark.
func runConcurrently(b *testing.B, s *server, unit string, op func(i int) error) {
	b.Helper()
	var (
		next      atomic.Int64
		latencies = make([][]time.Duration, benchConcurrency)
		firstErr  error
		errOnce   sync.Once
		wg        sync.WaitGroup
	)
	cpu := serverCPU(b, s)
	b.ResetTimer()
	for w := range benchConcurrency {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				start := time.Now()
				if err := op(int(i)); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(b.N))
					return
				}
				latencies[w] = append(latencies[w], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-us")
	reportServerCPU(b, serverCPU(b, s)-cpu)
}

// serverCPU returns the CPU time, user and system, that s has used so far,
// from /proc/<pid>/stat. Client and server share the cores, so this is the
// server's own cost, which the rates mix with the client's. The unit is the
// kernel's USER_HZ tick, 10 ms on Linux.
func serverCPU(b testing.TB, s *server) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the ")" that ends the command name start at field 3;
	// utime and stime are fields 14 and 15.
	_, rest, _ := strings.Cut(string(raw), ") ")
	var ticks int64
	for _, f := range strings.Fields(rest)[11:13] {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/stat: %v", s.cmd.Process.Pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// reportServerCPU reports cpu, the server's CPU time over the whole run, per
// operation.
func reportServerCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "server-cpu-ms/op")
}

// benchSeed numbers the contents of large pushes, so that each is new even
// across the reruns that testing.B makes of a benchmark.
var benchSeed atomic.Uint64

// patternReader yields size bytes made of a seeded 1 MiB block, each MiB
// stamped with its index so none repeats. It costs a copy per byte, so the
// client, which shares the cores with the server, spends little on it.
type patternReader struct {
	block     []byte
	size, off int64
}

func newPatternReader(seed uint64, size int64) *patternReader {
	return &patternReader{block: seededBytes(seed, blockSize), size: size}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	i := r.off % blockSize
	if i == 0 {
		// Reads never cross a block's end (below), so the first read of
		// every block starts here.
		binary.BigEndian.PutUint64(r.block, uint64(r.off/blockSize))
	}
	n := copy(p, r.block[i:min(blockSize, i+r.size-r.off)])
	r.off += int64(n)
	return n, nil
}

// patternDigest is the sha256 digest of newPatternReader(seed, size).
func patternDigest(b testing.TB, seed uint64, size int64) string {
	b.Helper()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, newPatternReader(seed, size), make([]byte, blockSize)); err != nil {
		b.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// procStatusKiB reads a kB field of /proc/<pid>/status of the server, such
// as VmRSS (resident now) or VmHWM (the peak).
func procStatusKiB(b testing.TB, s *server, field string) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", field, err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, s.cmd.Process.Pid)
	return 0
}
