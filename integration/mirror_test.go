package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// mirrorSetup is a distribution registry upstream, a counting proxy in
// front of it, and a berth mirroring the proxy as namespace "up".
type mirrorSetup struct {
	up    *distribution
	proxy *countingProxy
	berth *server
}

func newMirrorSetup(t *testing.T, mirrorArgs ...string) *mirrorSetup {
	t.Helper()
	up := startDistribution(t, "")
	proxy := startCountingProxy(t, "http://"+up.Addr)
	b := startServer(t, "")
	addMirror(t, b, "up", nil, append([]string{"--url", proxy.srv.URL}, mirrorArgs...)...)
	return &mirrorSetup{up: up, proxy: proxy, berth: b}
}

// TestMirror_PathPrefixCachesEverything: a cold pull through
// berth/up/<repo> fetches each blob and the manifest once; a second pull
// within the tag TTL, and pulls by digest, send nothing upstream; the
// cached repository is in the catalog like pushed content.
func TestMirror_PathPrefixCachesEverything(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "team/app:v1", 256<<10, 3)
	want, _ := img.Digest()

	got, _, err := pullAll(t.Context(), m.berth.ref(t, "up/team/app:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("cold pull through the mirror: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, want %s", d, want)
	}
	blobs := m.proxy.count("GET", "blobs")
	if blobs != 4 { // 3 layers and the config
		t.Errorf("cold pull sent %d blob GETs upstream, want 4", blobs)
	}
	before := m.proxy.total()
	if _, _, err := pullAll(t.Context(), m.berth.ref(t, "up/team/app:v1"), remoteOptions(t)...); err != nil {
		t.Fatalf("warm pull: %v", err)
	}
	if _, _, err := pullAll(t.Context(), m.berth.ref(t, "up/team/app@"+want.String()), remoteOptions(t)...); err != nil {
		t.Fatalf("warm pull by digest: %v", err)
	}
	if after := m.proxy.total(); after != before {
		t.Errorf("warm pulls within the TTL sent %d requests upstream, want 0", after-before)
	}
	r := send(t, m.berth.request(t, "GET", "/v2/_catalog", nil))
	if !strings.Contains(string(r.Body), `"up/team/app"`) {
		t.Errorf("catalog lacks the cached repository: %s", r)
	}
	if lines := m.berth.logLines("cache=hit"); len(lines) == 0 {
		t.Errorf("no access-log line says cache=hit")
	}
	if lines := m.berth.logLines("cache=miss"); len(lines) == 0 {
		t.Errorf("no access-log line says cache=miss")
	}
	metrics := string(send(t, m.berth.request(t, "GET", "/metrics", nil)).Body)
	for _, s := range []string{`berth_mirror_requests_total{kind="blob",mirror="up",result="hit"}`, `berth_mirror_upstream_bytes_total{mirror="up"}`} {
		if !strings.Contains(metrics, s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// TestMirror_NamespaceRouting: containerd's ?ns=<upstream host> routes a
// pull to the mirror of that host, and the cache it fills is the one the
// path prefix reads.
func TestMirror_NamespaceRouting(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "library/tool:1", 1024, 1)
	want, _ := img.Digest()
	accept := "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
	r := send(t, m.berth.request(t, "GET", "/v2/library/tool/manifests/1?ns="+m.proxy.Host(), nil, "Accept", accept))
	if r.Status != 200 || r.Header.Get("Docker-Content-Digest") != want.String() {
		t.Fatalf("GET with ?ns=: %s", r)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	r = send(t, m.berth.request(t, "GET", "/v2/library/tool/blobs/"+ld.String()+"?ns="+m.proxy.Host(), nil))
	if r.Status != 200 || r.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Fatalf("blob GET with ?ns=: %s", r)
	}
	before := m.proxy.total()
	r = send(t, m.berth.request(t, "GET", "/v2/up/library/tool/manifests/1", nil, "Accept", accept))
	if r.Status != 200 || m.proxy.total() != before {
		t.Errorf("the path prefix did not read the cache ?ns= filled: %s, %d upstream requests", r, m.proxy.total()-before)
	}
	// The cache holds the manifest and one layer, not the config: that is
	// whole for a cache, and verify says so.
	if out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", m.berth.Data); err != nil {
		t.Errorf("berth verify of a partly filled cache: %v\n%s%s", err, out, errOut)
	}
	// A name no mirror has stays the registry's own.
	r = send(t, m.berth.request(t, "GET", "/v2/library/tool/manifests/1", nil, "Accept", accept))
	if r.Status != 404 || errorCode(r) != "NAME_UNKNOWN" && errorCode(r) != "MANIFEST_UNKNOWN" {
		t.Errorf("GET without ns or prefix: %s, want 404", r)
	}
}

// TestMirror_TagTTL: within the TTL a tag is served with no upstream
// request; after it, one HEAD revalidates it, and a tag moved upstream is
// fetched again. A digest is never asked again.
func TestMirror_TagTTL(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "300ms")
	img := pushUpstream(t, m.up.Addr, "app:latest", 1024, 1)
	d1, _ := img.Digest()
	ref := m.berth.ref(t, "up/app:latest")
	if _, _, err := pullAll(t.Context(), ref, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	gets := m.proxy.count("GET", "manifests")
	if m.proxy.count("HEAD", "manifests") != 0 || gets != 1 {
		t.Fatalf("cold pull: %d HEAD and %d GET of manifests upstream, want 0 and 1", m.proxy.count("HEAD", "manifests"), gets)
	}
	// Poll until the TTL has passed: a pull then revalidates with a HEAD.
	deadline := time.Now().Add(10 * time.Second)
	for m.proxy.count("HEAD", "manifests") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no revalidating HEAD within 10s of a 300ms TTL")
		}
		if _, err := remote.Head(ref, remoteOptions(t)...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := m.proxy.count("GET", "manifests"); got != gets {
		t.Errorf("an unchanged tag was fetched again: %d manifest GETs, want %d", got, gets)
	}
	// Move the tag upstream; after the TTL the mirror follows.
	img2 := pushUpstream(t, m.up.Addr, "app:latest", 1024, 1)
	d2, _ := img2.Digest()
	deadline = time.Now().Add(10 * time.Second)
	for {
		desc, err := remote.Head(ref, remoteOptions(t)...)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest == d2 {
			break
		}
		if desc.Digest != d1 || time.Now().After(deadline) {
			t.Fatalf("tag serves %s, want %s then %s", desc.Digest, d1, d2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := m.proxy.manifestAsks()
	for range 3 {
		if _, err := remote.Image(m.berth.ref(t, "up/app@"+d1.String()), remoteOptions(t)...); err != nil {
			t.Fatalf("pull of the old digest: %v", err)
		}
	}
	if after := m.proxy.manifestAsks(); after != before {
		t.Errorf("a cached digest was asked upstream %d times", after-before)
	}
}

// TestMirror_ConcurrentColdPulls: ten clients pulling one uncached image
// at once cause one upstream fetch of each blob.
func TestMirror_ConcurrentColdPulls(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "big:1", 4<<20, 3)
	want, _ := img.Digest()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := pullAll(t.Context(), m.berth.ref(t, "up/big:1"), remoteOptions(t)...)
			if err == nil {
				if d, _ := got.Digest(); d != want {
					err = fmt.Errorf("pulled %s, want %s", d, want)
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v", i, err)
		}
	}
	layers, _ := img.Layers()
	cfg, _ := img.ConfigName()
	for _, l := range layers {
		d, _ := l.Digest()
		if n := m.proxy.count("GET", "/v2/big/blobs/"+d.String()); n != 1 {
			t.Errorf("layer %s fetched %d times upstream, want 1", d, n)
		}
	}
	if n := m.proxy.count("GET", "/v2/big/blobs/"+cfg.String()); n != 1 {
		t.Errorf("config fetched %d times upstream, want 1", n)
	}
	t.Logf("10 concurrent cold pulls: %d upstream requests (%d manifest GETs, %d blob GETs, %d pings)",
		m.proxy.total(), m.proxy.count("GET", "manifests"), m.proxy.count("GET", "blobs"), m.proxy.count("GET", "base"))
}

// TestMirror_UpstreamFailures: with the upstream failing in each way, a
// cached tag is still served (stale, logged), and uncached content gets an
// error that names the upstream, with the code its failure calls for.
func TestMirror_UpstreamFailures(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1ms")
	pushUpstream(t, m.up.Addr, "app:v1", 1024, 1)
	ref := m.berth.ref(t, "up/app:v1")
	if _, _, err := pullAll(t.Context(), ref, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	accept := "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
	for _, tc := range []struct {
		name   string
		fault  fault
		status int
		code   string
	}{
		{"500", fault{status: 500}, 502, "UNKNOWN"},
		{"429", fault{status: 429}, 429, "TOOMANYREQUESTS"},
		{"404", fault{status: 404}, 404, "MANIFEST_UNKNOWN"},
		{"401", fault{status: 401}, 403, "DENIED"},
		{"down", fault{down: true}, 502, "UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.proxy.set(tc.fault)
			defer m.proxy.set(fault{})
			if _, _, err := pullAll(t.Context(), ref, remoteOptions(t)...); err != nil {
				t.Errorf("cached tag not served while the upstream fails: %v", err)
			}
			r := send(t, m.berth.request(t, "GET", "/v2/up/app/manifests/v2", nil, "Accept", accept))
			if r.Status != tc.status || errorCode(r) != tc.code || !strings.Contains(string(r.Body), m.proxy.Host()) {
				t.Errorf("uncached tag: %s, want %d %s naming %s", r, tc.status, tc.code, m.proxy.Host())
			}
		})
	}
	if lines := m.berth.logLines("mirror serves a stale tag"); len(lines) == 0 {
		t.Errorf("no log line for the stale tags served")
	}
	metrics := string(send(t, m.berth.request(t, "GET", "/metrics", nil)).Body)
	if !strings.Contains(metrics, `berth_mirror_requests_total{kind="manifest",mirror="up",result="stale"}`) ||
		!strings.Contains(metrics, `berth_mirror_upstream_errors_total{mirror="up",reason="429"}`) {
		t.Errorf("/metrics lacks the stale and error counts")
	}
}

// TestMirror_StrictDropsTagsUpstreamLost: with --strict an upstream 404
// for a cached tag is final.
func TestMirror_StrictDropsTagsUpstreamLost(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1ms", "--strict")
	pushUpstream(t, m.up.Addr, "app:v1", 1024, 1)
	ref := m.berth.ref(t, "up/app:v1")
	if _, _, err := pullAll(t.Context(), ref, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	m.proxy.set(fault{status: 404})
	_, err := remote.Image(ref, remoteOptions(t)...)
	wantStatusCode(t, "strict mirror, upstream 404", err, 404)
	m.proxy.set(fault{status: 500})
	if _, err := remote.Image(ref, remoteOptions(t)...); err != nil {
		t.Errorf("strict mirror, upstream 500: the cache must still serve: %v", err)
	}
}

// TestMirror_BadUpstreamBlobs: a blob whose bytes do not hash to its
// digest, and one the upstream stops sending midway, fail the pull and
// leave nothing cached; the next pull fetches them again, whole.
func TestMirror_BadUpstreamBlobs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fault
	}{
		{"corrupt", fault{corruptBlob: true}},
		{"cut", fault{cutBlobAt: 100 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMirrorSetup(t, "--tag-ttl", "1h")
			img := pushUpstream(t, m.up.Addr, "app:v1", 1<<20, 1)
			layers, _ := img.Layers()
			ld, _ := layers[0].Digest()
			m.proxy.set(tc.fault)
			if _, _, err := pullAll(t.Context(), m.berth.ref(t, "up/app:v1"), remoteOptions(t)...); err == nil {
				t.Fatal("pull succeeded though the upstream sent a bad layer")
			}
			m.proxy.set(fault{})
			before := m.proxy.count("GET", "/v2/app/blobs/"+ld.String())
			got, _, err := pullAll(t.Context(), m.berth.ref(t, "up/app:v1"), remoteOptions(t)...)
			if err != nil {
				t.Fatalf("pull after the upstream healed: %v", err)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("validate: %v", err)
			}
			if after := m.proxy.count("GET", "/v2/app/blobs/"+ld.String()); after != before+1 {
				t.Errorf("the layer was fetched %d more times, want 1: the bad copy was cached", after-before)
			}
			out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", m.berth.Data)
			if err != nil {
				t.Errorf("berth verify after the bad fill: %v\n%s%s", err, out, errOut)
			}
		})
	}
}

// TestMirror_PushRefused: a mirror's namespace is pull-only.
func TestMirror_PushRefused(t *testing.T) {
	m := newMirrorSetup(t)
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(m.berth.ref(t, "up/mine:v1"), img, remoteOptions(t)...)
	wantStatusCode(t, "push into a mirror's namespace", err, http.StatusForbidden)
	if err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("push error %v, want DENIED", err)
	}
	r := send(t, m.berth.request(t, "DELETE", "/v2/up/mine/manifests/v1", nil))
	if r.Status != 403 || errorCode(r) != "DENIED" {
		t.Errorf("DELETE in a mirror's namespace: %s", r)
	}
	// Outside the namespace pushes work as before.
	if err := remote.Write(m.berth.ref(t, "mine/app:v1"), img, remoteOptions(t)...); err != nil {
		t.Errorf("push outside the mirror's namespace: %v", err)
	}
}

// TestMirror_Prefetch: berth mirror prefetch fills the cache with every
// manifest and blob of an image, so a later pull sends nothing upstream;
// a name outside any mirror is refused with a message.
func TestMirror_Prefetch(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "pre/app:v1", 64<<10, 2)
	want, _ := img.Digest()
	out, errOut, err := runBerth(t, t.Context(), nil, "--data", m.berth.Data, "mirror", "prefetch", "up/pre/app:v1")
	if err != nil || !strings.Contains(out, "1 manifests, 3 blobs") {
		t.Fatalf("mirror prefetch: %v\n%s%s", err, out, errOut)
	}
	before := m.proxy.total()
	got, _, err := pullAll(t.Context(), m.berth.ref(t, "up/pre/app:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, want %s", d, want)
	}
	if n := m.proxy.total() - before; n != 0 {
		t.Errorf("a pull after prefetch sent %d requests upstream", n)
	}
	if _, errOut, err := runBerth(t, t.Context(), nil, "--data", m.berth.Data, "mirror", "prefetch", "mine/app:v1"); err == nil || !strings.Contains(errOut, "not in a mirror's namespace") {
		t.Errorf("prefetch outside a mirror: %v %q", err, errOut)
	}
}

// TestMirror_Skopeo: skopeo copies an image out of a mirror's namespace.
func TestMirror_Skopeo(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "sk/app:v1", 64<<10, 2)
	layers, _ := img.Layers()
	dest := t.TempDir()
	out, err := skopeoRun(t, t.TempDir(), "", "copy", "--src-tls-verify=false", "docker://"+m.berth.Addr+"/up/sk/app:v1", "dir:"+dest)
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if _, err := os.Stat(filepath.Join(dest, d.Hex)); err != nil {
			t.Errorf("skopeo's copy lacks layer %s: %v", d, err)
		}
	}
	if m.proxy.count("GET", "blobs") != 3 {
		t.Errorf("%d blob GETs upstream, want 3", m.proxy.count("GET", "blobs"))
	}
}

// TestMirror_EvictionUnderPulls: with --max-size, the least recently
// pulled tags are evicted through GC until the cache fits, while clients
// keep pulling — none of them fails, what they pull stays whole.
func TestMirror_EvictionUnderPulls(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h", "--max-size", "3MiB")
	for i := range 5 {
		pushUpstream(t, m.up.Addr, fmt.Sprintf("img%d:v1", i), 1<<20, 1)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := pullAll(t.Context(), m.berth.ref(t, "up/img4:v1"), remoteOptions(t)...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 4 {
		got, _, err := pullAll(t.Context(), m.berth.ref(t, fmt.Sprintf("up/img%d:v1", i)), remoteOptions(t)...)
		if err != nil {
			t.Errorf("pull img%d while evicting: %v", i, err)
			continue
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("img%d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent pull of img4 during eviction: %v", err)
	}
	cacheBytes := func() int64 {
		out := m.berth.berth(t, "", "du", "--json")
		var du []struct {
			Repository string `json:"repository"`
			Exclusive  int64  `json:"exclusive_bytes"`
		}
		if err := json.Unmarshal([]byte(out), &du); err != nil {
			t.Fatalf("du --json: %v\n%s", err, out)
		}
		var n int64
		for _, r := range du {
			if strings.HasPrefix(r.Repository, "up/") {
				n += r.Exclusive
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for cacheBytes() > 3<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the cache holds %d bytes 30s after the pulls, over its 3 MiB cap", cacheBytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tagged := func(repo string) bool {
		r := send(t, m.berth.request(t, "GET", "/v2/"+repo+"/tags/list", nil))
		return r.Status == 200 && strings.Contains(string(r.Body), `"v1"`)
	}
	if tagged("up/img0") || tagged("up/img1") {
		t.Errorf("the least recently pulled images were not evicted")
	}
	if !tagged("up/img4") {
		t.Errorf("the most recently pulled image was evicted")
	}
	if len(m.berth.logLines("mirror evicted a tag")) == 0 {
		t.Errorf("no eviction in the log")
	}
	if out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", m.berth.Data); err != nil {
		t.Errorf("berth verify after eviction: %v\n%s%s", err, out, errOut)
	}
}

// TestMirror_Referrers: a referrers listing of a mirror's repository
// brings the upstream's referrers (a signature) into the cache, where they
// stay listed when the upstream is down.
func TestMirror_Referrers(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1ms")
	img := pushUpstream(t, m.up.Addr, "signed/app:v1", 1024, 1)
	d, _ := img.Digest()
	size, _ := img.Size()
	mt, _ := img.MediaType()
	sig, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	signed, ok := mutate.Subject(sig, v1.Descriptor{MediaType: mt, Digest: d, Size: size}).(v1.Image)
	if !ok {
		t.Fatal("mutate.Subject of an image is no image")
	}
	sd, _ := signed.Digest()
	sref, err := name.ParseReference(m.up.Addr+"/signed/app:sig", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sref, signed, remoteOptions(t)...); err != nil {
		t.Fatalf("push the signature upstream: %v", err)
	}
	list := func() reply {
		return send(t, m.berth.request(t, "GET", "/v2/up/signed/app/referrers/"+d.String(), nil))
	}
	if r := list(); r.Status != 200 || !strings.Contains(string(r.Body), sd.String()) {
		t.Fatalf("referrers through the mirror: %s, want %s listed", r, sd)
	}
	m.proxy.set(fault{down: true})
	if r := list(); r.Status != 200 || !strings.Contains(string(r.Body), sd.String()) {
		t.Errorf("referrers with the upstream down: %s, want %s still listed", r, sd)
	}
	r := send(t, m.berth.request(t, "GET", "/v2/up/signed/app/manifests/"+sd.String(), nil, "Accept", string(mt)))
	if r.Status != 200 {
		t.Errorf("the cached signature with the upstream down: %s", r)
	}
}

// TestMirror_ColdHeadAndRange: while a cold layer's fill runs, held by
// the upstream after its first 256 KiB, a HEAD answers from the size the
// upstream announced and a Range inside what has arrived is served; the
// fill then completes, once, and the layer is cached.
func TestMirror_ColdHeadAndRange(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "app:v1", 1<<20, 1)
	layers, _ := img.Layers()
	layer := layers[0]
	ld, _ := layer.Digest()
	size, _ := layer.Size()
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	released := false
	free := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(free)
	m.proxy.set(fault{holdBlobAt: 256 << 10, release: release})
	path := "/v2/up/app/blobs/" + ld.String()
	// ask sends a request on its own goroutine and gives up after 20s, so
	// an answer that waits for the held fill fails instead of hanging.
	ask := func(method string, headers ...string) (*http.Response, []byte) {
		t.Helper()
		type answer struct {
			res  *http.Response
			body []byte
			err  error
		}
		ch := make(chan answer, 1)
		req := m.berth.request(t, method, path, nil, headers...)
		go func() {
			res, err := httpClient.Do(req)
			if err != nil {
				ch <- answer{err: err}
				return
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			ch <- answer{res, body, err}
		}()
		select {
		case a := <-ch:
			if a.err != nil {
				t.Fatalf("%s %s: %v", method, path, a.err)
			}
			return a.res, a.body
		case <-time.After(20 * time.Second):
			free()
			t.Fatalf("%s %s waited for the whole fill", method, path)
			return nil, nil
		}
	}
	res, _ := ask(http.MethodHead)
	if res.StatusCode != 200 || res.ContentLength != size || res.Header.Get("Docker-Content-Digest") != ld.String() {
		t.Errorf("cold HEAD: %d, length %d, digest %q; want 200, %d, %s", res.StatusCode, res.ContentLength, res.Header.Get("Docker-Content-Digest"), size, ld)
	}
	res, body := ask(http.MethodGet, "Range", "bytes=1000-99999")
	if res.StatusCode != 206 || !bytes.Equal(body, whole[1000:100000]) {
		t.Errorf("cold Range: %d, %d bytes (equal: %v); want 206 and bytes 1000-99999", res.StatusCode, len(body), bytes.Equal(body, whole[1000:100000]))
	}
	if got, want := res.Header.Get("Content-Range"), fmt.Sprintf("bytes 1000-99999/%d", size); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	free()
	m.proxy.set(fault{})
	// The fill goes on without the clients; once it is placed, a GET is a
	// hit and the upstream saw one GET of the layer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := send(t, m.berth.request(t, "GET", path, nil))
		if r.Status == 200 && bytes.Equal(r.Body, whole) && hitLogged(m.berth, path) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the layer was not served as a hit after the fill: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := m.proxy.count("GET", "/v2/app/blobs/"+ld.String()); n != 1 {
		t.Errorf("the upstream saw %d GETs of the layer, want 1", n)
	}
}

// hitLogged reports whether s's access log has a cache hit on path.
func hitLogged(s *server, path string) bool {
	for _, line := range s.logLines("cache=hit") {
		if strings.Contains(line, path) {
			return true
		}
	}
	return false
}

// TestMirror_TagChecksSurviveRestart: a tag confirmed before a restart is
// served after it, within its TTL, without asking the upstream again.
func TestMirror_TagChecksSurviveRestart(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	pushUpstream(t, m.up.Addr, "app:v1", 1024, 1)
	if _, _, err := pullAll(t.Context(), m.berth.ref(t, "up/app:v1"), remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	m.berth.stop(t)
	b := startServer(t, m.berth.Data)
	before := m.proxy.manifestAsks()
	got, _, err := pullAll(t.Context(), b.ref(t, "up/app:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatalf("pull after the restart: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate: %v", err)
	}
	if after := m.proxy.manifestAsks(); after != before {
		t.Errorf("the restarted mirror asked the upstream about a tag confirmed within its TTL (%d requests)", after-before)
	}
}

// TestMirror_PrefetchSchedule: berth mirror schedule makes the running
// server fetch the images into the cache every interval, without a
// client, logged and counted; mirror list shows it; a later pull sends
// nothing upstream; no --prefetch clears it; the server still stops
// promptly (the cleanup's stop fails after 10s).
func TestMirror_PrefetchSchedule(t *testing.T) {
	m := newMirrorSetup(t, "--tag-ttl", "1h")
	img := pushUpstream(t, m.up.Addr, "pre/app:v1", 64<<10, 2)
	want, _ := img.Digest()
	if _, errOut, err := runBerth(t, t.Context(), nil, "--data", m.berth.Data, "mirror", "schedule", "up", "--prefetch", "pre/app:v1", "--every", "100ms"); err == nil || !strings.Contains(errOut, "at least 1s") {
		t.Errorf("schedule every 100ms: %v %q, want refused", err, errOut)
	}
	out := m.berth.berth(t, "", "mirror", "schedule", "up", "--prefetch", "pre/app:v1,pre/app:nosuchtag", "--every", "1s")
	if !strings.Contains(out, "every 1s") {
		t.Errorf("mirror schedule: %q", out)
	}
	if out := m.berth.berth(t, "", "mirror", "list"); !strings.Contains(out, "pre/app:v1,pre/app:nosuchtag every 1s") {
		t.Errorf("mirror list does not show the schedule:\n%s", out)
	}
	runs := func() []string { return m.berth.logLines(`msg="mirror scheduled prefetch"`) }
	deadline := time.Now().Add(30 * time.Second)
	for len(runs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 2 scheduled prefetch runs within 30s of a 1s schedule:\n%s", strings.Join(runs(), "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := m.berth.metric(t, `berth_mirror_prefetch_runs_total{mirror="up",result="error"}`); got < 2 {
		t.Errorf("prefetch runs counted with result=error: %v, want at least 2 (one image does not exist)", got)
	}
	if len(m.berth.logLines("mirror scheduled prefetch failed")) == 0 {
		t.Errorf("the missing image's failure is not logged")
	}
	before := m.proxy.total()
	got, _, err := pullAll(t.Context(), m.berth.ref(t, "up/pre/app:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, want %s", d, want)
	}
	if n := m.proxy.total() - before; n != 0 {
		t.Errorf("a pull after scheduled prefetches sent %d requests upstream", n)
	}
	m.berth.berth(t, "", "mirror", "schedule", "up")
	if out := m.berth.berth(t, "", "mirror", "list"); strings.Contains(out, "every") {
		t.Errorf("mirror list after clearing the schedule:\n%s", out)
	}
}
