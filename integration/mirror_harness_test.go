package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// countingProxy stands in front of an upstream registry: it counts the
// requests berth sends (by method and /v2 kind) and can be told to fail
// them in the ways an upstream does.
type countingProxy struct {
	srv   *httptest.Server
	proxy *httputil.ReverseProxy

	mu     sync.Mutex
	counts map[string]int // "GET blobs sha256:..." → requests
	fault  fault
}

// fault is what the proxy does to the requests after it is set.
type fault struct {
	status      int           // answer this status to every /v2/<repo>/... request
	down        bool          // close connections without an answer
	corruptBlob bool          // flip a byte of every blob body
	cutBlobAt   int64         // end every blob body with an error after this many bytes (0: never)
	holdBlobAt  int64         // after this many bytes of every blob body (0: never)…
	release     chan struct{} // …send nothing more until this closes
}

func startCountingProxy(t testing.TB, upstream string) *countingProxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}, proxy: httputil.NewSingleHostReverseProxy(u)}
	p.proxy.ErrorLog = log.New(io.Discard, "", 0) // the cut and corrupt faults are meant
	p.proxy.ModifyResponse = p.modify
	p.proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// Host is the proxy's host:port, what containerd sends as ?ns=.
func (p *countingProxy) Host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *countingProxy) set(f fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

func (p *countingProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.counts[r.Method+" "+kindOf(r.URL.Path)]++
	p.counts[r.Method+" "+r.URL.Path]++
	f := p.fault
	p.mu.Unlock()
	switch {
	case f.down:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case f.status != 0 && r.URL.Path != "/v2/":
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected %d"}]}`, f.status)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *countingProxy) modify(res *http.Response) error {
	p.mu.Lock()
	f := p.fault
	p.mu.Unlock()
	if res.Request.Method != http.MethodGet || kindOf(res.Request.URL.Path) != "blobs" || res.StatusCode != http.StatusOK {
		return nil
	}
	if f.corruptBlob {
		res.Body = &corrupter{r: res.Body}
	}
	if f.cutBlobAt > 0 {
		res.Body = &cutter{r: res.Body, left: f.cutBlobAt}
	}
	if f.holdBlobAt > 0 {
		res.Body = &holder{r: res.Body, left: f.holdBlobAt, release: f.release}
	}
	return nil
}

// count returns how many requests of method for key (a kind such as
// "blobs", or a path) the proxy saw.
func (p *countingProxy) count(method, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method+" "+key]
}

// manifestAsks counts the manifest requests (HEAD and GET) the proxy saw:
// what a cached tag or digest must not cause.
func (p *countingProxy) manifestAsks() int {
	return p.count("HEAD", "manifests") + p.count("GET", "manifests")
}

func (p *countingProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.counts {
		if !strings.Contains(k, "/") {
			n += v
		}
	}
	return n
}

// kindOf is "blobs", "manifests", "base" or "other" for a /v2 path.
func kindOf(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "base"
	case strings.Contains(path, "/blobs/"):
		return "blobs"
	case strings.Contains(path, "/manifests/"):
		return "manifests"
	}
	return "other"
}

type corrupter struct {
	r    io.ReadCloser
	done bool
}

func (c *corrupter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.done {
		p[0] ^= 0xff
		c.done = true
	}
	return n, err
}

func (c *corrupter) Close() error { return c.r.Close() }

type cutter struct {
	r    io.ReadCloser
	left int64
}

func (c *cutter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("upstream stopped mid-layer")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutter) Close() error { return c.r.Close() }

// holder sends left bytes, then waits for release before the rest.
type holder struct {
	r       io.ReadCloser
	left    int64
	release chan struct{}
}

func (h *holder) Read(p []byte) (int, error) {
	if h.left <= 0 {
		<-h.release
		return h.r.Read(p)
	}
	if int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= int64(n)
	return n, err
}

func (h *holder) Close() error { return h.r.Close() }

// pushUpstream writes a random image of layers layers of size bytes each
// to the registry at addr as repo:tag and returns it.
func pushUpstream(t testing.TB, addr, ref string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(addr+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remoteOptions(t)...); err != nil {
		t.Fatalf("push %s upstream: %v", ref, err)
	}
	return img
}

// pullAll pulls ref through whatever opts say and reads every layer whole,
// as a client unpacking the image would; it returns the bytes read.
func pullAll(ctx context.Context, ref name.Reference, opts ...remote.Option) (v1.Image, int64, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, 0, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, 0, err
	}
	var total int64
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, total, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		total += n
		if err != nil {
			return nil, total, err
		}
	}
	if _, err := img.RawConfigFile(); err != nil {
		return nil, total, err
	}
	return img, total, nil
}

// addMirror runs berth mirror add against s with args after NAME.
func addMirror(t testing.TB, s *server, name string, stdin io.Reader, args ...string) {
	t.Helper()
	out, errOut, err := runBerth(t, t.Context(), stdin, append([]string{"mirror", "add", "--data", s.Data, name}, args...)...)
	if err != nil {
		t.Fatalf("berth mirror add %s: %v\n%s%s", name, err, out, errOut)
	}
}
