package integration

// Retention, immutable tags and last-pull times against the real binary:
// go-containerregistry and skopeo pushes, a multi-arch index, shared
// layers, several tags per digest and cosign-style referrers and fallback
// tags; rules managed and run through the control socket.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/store"
)

// berthOK runs a berth command on s's data dir (through its control
// socket while it serves) and fails the test unless it exits 0.
func (s *server) berthOK(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := runBerth(t, t.Context(), nil, append(args, "--data", s.Data)...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (s *server) push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	if err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// wantDenied checks that err is a 403 DENIED whose message contains want.
func wantDenied(t testing.TB, what string, err error, want string) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusForbidden || len(terr.Errors) == 0 ||
		terr.Errors[0].Code != transport.DeniedErrorCode || !strings.Contains(terr.Errors[0].Message, want) {
		t.Fatalf("%s: %v, want 403 DENIED mentioning %q", what, err, want)
	}
}

func TestRetention_EndToEnd(t *testing.T) {
	fixtures.RequireTool(t, "skopeo")
	s := startRegistry(t, "")
	shared := mustLayer(t, 4096)
	imgs, digests := map[string]v1.Image{}, map[string]string{}
	for _, tag := range []string{"b1", "b2", "b3", "b4"} {
		imgs[tag] = mustImage(t, shared, mustLayer(t, 1024))
		digests[tag] = s.push(t, "ci/app:"+tag, imgs[tag])
		if tag == "b1" { // several tags on one digest
			s.push(t, "ci/app:also-b1", imgs[tag])
		}
	}
	// Cosign-style signatures under fallback tags, and referrers.
	sigTag := func(d string) string { return "sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig" }
	sig1 := s.push(t, "ci/app:"+sigTag(digests["b1"]), mustImage(t, mustLayer(t, 256)))
	sig4 := s.push(t, "ci/app:"+sigTag(digests["b4"]), mustImage(t, mustLayer(t, 256)))
	ref1 := s.pushRawArtifact(t, "ci/app", digests["b1"])
	ref4 := s.pushRawArtifact(t, "ci/app", digests["b4"])
	// A multi-arch index, pushed by skopeo, with a referrer.
	skopeoCmd(t, "copy", "--all", "--dest-tls-verify=false", "oci:"+fixtures.Path(fixtures.Multiarch)+":latest", "docker://"+s.Addr+"/ci/app:multi")
	_, multi := fixtureDescriptor(t, fixtures.Multiarch, "latest")
	refMulti := s.pushRawArtifact(t, "ci/app", multi.Digest.String())

	// A HEAD is no pull; a GET by digest is.
	wantStatus(t, s.do(t, http.MethodHead, "/v2/ci/app/manifests/b2", nil), http.StatusOK)
	wantStatus(t, s.do(t, http.MethodGet, "/v2/ci/app/manifests/"+digests["b3"], nil), http.StatusOK)
	long := s.berthOK(t, "tag", "list", "ci/app", "--long")
	for _, want := range []string{"b2 .* never", "b3 .* 20"} {
		if !lineMatches(long, want) {
			t.Fatalf("tag list --long has no line like %q:\n%s", want, long)
		}
	}

	s.berthOK(t, "retention", "add", "ci", "--repos", "ci/**", "--keep-last", "2", "--keep-pulled", "1")
	gone := []string{"tag ci/app:b1 ", "tag ci/app:also-b1 ", "tag ci/app:b2 ", "tag ci/app:" + sigTag(digests["b1"]),
		"manifest ci/app@" + digests["b1"], "manifest ci/app@" + digests["b2"], "manifest ci/app@" + sig1, "manifest ci/app@" + ref1}
	kept := []string{"ci/app:b3", "ci/app:b4", "ci/app:multi", sigTag(digests["b4"]), digests["b3"], digests["b4"], sig4, ref4, refMulti, multi.Digest.String()}
	dry := s.berthOK(t, "retention", "run", "--dry-run")
	run := s.berthOK(t, "retention", "run")
	for _, out := range []struct{ verb, text string }{{"would remove ", dry}, {"removed ", run}} {
		for _, g := range gone {
			if !strings.Contains(out.text, out.verb+g) {
				t.Errorf("retention output lacks %q:\n%s", out.verb+g, out.text)
			}
		}
		for _, k := range kept {
			if strings.Contains(out.text, k) {
				t.Errorf("retention output names kept %s:\n%s", k, out.text)
			}
		}
	}
	if !strings.Contains(run, "retention: removed 4 tags, 4 manifests in 1 repository") {
		t.Errorf("summary:\n%s", run)
	}
	r := s.do(t, http.MethodGet, "/v2/ci/app/manifests/"+digests["b1"], nil)
	if r.Status != http.StatusNotFound || errorCode(r) != "MANIFEST_UNKNOWN" {
		t.Errorf("removed b1: %s", r)
	}
	for _, d := range []string{ref4, refMulti, sig4} {
		wantStatus(t, s.do(t, http.MethodGet, "/v2/ci/app/manifests/"+d, nil, "Accept", mediaTypeOCIManifest), http.StatusOK)
	}
	pullAndValidate(t, s, "ci/app:b3", imgs["b3"])
	pullAndValidate(t, s, "ci/app:b4", imgs["b4"])
	idx, err := remote.Index(s.ref(t, "ci/app:multi"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the kept index lost content: %v", err)
	}

	// Immutable tags: no overwrite, no delete, signatures not caught, an
	// admin's lift lets one change through.
	s.berthOK(t, "immutable", "add", "rel", "--repos", "ci/**", "--tags", "b*")
	err = remote.Write(s.ref(t, "ci/app:b4"), imgs["b3"], remoteOptions(t)...)
	wantDenied(t, "overwrite of an immutable tag", err, `rule "rel"`)
	wantDenied(t, "delete of an immutable tag", remote.Delete(s.ref(t, "ci/app:b4"), remoteOptions(t)...), `rule "rel"`)
	s.push(t, "ci/app:b5", imgs["b3"]) // a new tag is fine
	s.push(t, "ci/app:"+sigTag(digests["b4"]), mustImage(t, mustLayer(t, 256)))
	s.berthOK(t, "immutable", "lift", "ci/app:b4")
	s.push(t, "ci/app:b4", imgs["b3"])
	err = remote.Write(s.ref(t, "ci/app:b4"), imgs["b4"], remoteOptions(t)...)
	wantDenied(t, "second overwrite after one lift", err, `rule "rel"`)

	s.stop(t)
	checkStore(t, s.Data)
	if out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", s.Data); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out, errOut)
	}
	// The pull was written at shutdown at the latest.
	st, err := store.Open(s.Data, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	infos, err := st.TagInfos("ci/app")
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if ti.Tag == "b3" && ti.Pulled.IsZero() {
			t.Error("b3's pull was not written")
		}
	}
}

// lineMatches reports whether a line of text has the words of pattern, in
// order, where " .* " stands for anything.
func lineMatches(text, pattern string) bool {
	parts := strings.Split(pattern, " .* ")
	for _, line := range strings.Split(text, "\n") {
		rest, ok := line, strings.HasPrefix(line, parts[0]+" ")
		for _, p := range parts[1:] {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestRetention_WhilePushingAndPulling runs `berth retention run` in a
// loop through the control socket while clients push tags a rule keeps
// and tags it does not, with shared layers, and others pull: no
// acknowledged kept tag is lost, every one pulls whole, and the store
// passes verify.
func TestRetention_WhilePushingAndPulling(t *testing.T) {
	s := startRegistry(t, "")
	s.berthOK(t, "retention", "add", "race", "--repos", "race/**", "--keep-tags", "keep-.*")
	const pushers, rounds = 3, 12
	shared := mustLayer(t, 2048)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]v1.Image{}
	var retries atomic.Int64
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				img := mustImage(t, shared, mustLayer(t, 512))
				tag := fmt.Sprintf("keep-%d-%d", p, i)
				if i%2 == 1 {
					tag = fmt.Sprintf("drop-%d-%d", p, i)
				}
				if pushAcked(t, s, "race/app:"+tag, img, &retries) && strings.HasPrefix(tag, "keep-") {
					mu.Lock()
					acked[tag] = img
					mu.Unlock()
				}
			}
		}()
	}
	done := make(chan struct{})
	var pulls atomic.Int64
	go func() { // a puller of what is acknowledged so far
		for {
			select {
			case <-done:
				return
			default:
			}
			mu.Lock()
			var tag string
			for tag = range acked {
				break
			}
			mu.Unlock()
			if tag == "" {
				continue
			}
			if r, err := s.try(t.Context(), http.MethodGet, "/v2/race/app/manifests/"+tag, nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json"); err == nil && r.Status == http.StatusOK {
				pulls.Add(1)
			} else {
				t.Errorf("pull of acknowledged %s: %v %v", tag, r, err)
				return
			}
		}
	}()
	pushDone := make(chan struct{})
	go func() { wg.Wait(); close(pushDone) }()
	runs := 0
	for loop := true; loop && runs < 200; runs++ {
		select {
		case <-pushDone:
			loop = false
		default:
		}
		s.berthOK(t, "retention", "run")
	}
	<-pushDone
	close(done)
	s.berthOK(t, "retention", "run")
	for tag, img := range acked {
		pullAndValidate(t, s, "race/app:"+tag, img)
	}
	tags, err := remote.List(s.repoRef(t, "race/app"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != len(acked) {
		t.Errorf("%d tags left %v, want the %d acknowledged kept ones", len(tags), tags, len(acked))
	}
	t.Logf("%d retention runs, %d pulls, %d pushes retried during %d pushes", runs, pulls.Load(), retries.Load(), pushers*rounds)
	s.stop(t)
	checkStore(t, s.Data)
	if out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", s.Data); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out, errOut)
	}
}
