package integration

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-registry/berth/fixtures"
)

// pushOutcome pushes img to ref (again after MANIFEST_BLOB_UNKNOWN, which a
// gc with no grace may cause) and returns "" when acknowledged, else the
// code and message of the refusal.
func pushOutcome(t *testing.T, s *server, ref string, img v1.Image) string {
	t.Helper()
	for range 10 {
		err := remote.Write(s.ref(t, ref), img, remoteOptions(t)...)
		if err == nil {
			return ""
		}
		var terr *transport.Error
		if !errors.As(err, &terr) || len(terr.Errors) == 0 {
			t.Fatalf("push %s: %v", ref, err)
		}
		if terr.Errors[0].Code != transport.ManifestBlobUnknownErrorCode {
			return fmt.Sprintf("%d %s: %s", terr.StatusCode, terr.Errors[0].Code, terr.Errors[0].Message)
		}
	}
	t.Fatalf("push %s: MANIFEST_BLOB_UNKNOWN 10 times", ref)
	return ""
}

// TestWatermark_Tmpfs fills a 64 MiB filesystem with pushes of 4 MiB
// images, first with no watermark (pushes fail on the full disk), then
// with one: the least recently used tags of a repository a retention rule
// covers are pruned and pushes go on; once only content no rule covers is
// left, pushes are refused early with a clear error, pulls go on, and the
// store passes verify.
func TestWatermark_Tmpfs(t *testing.T) {
	fixtures.RequireRoot(t, "mounting a 64 MiB tmpfs")
	const layer = 4 << 20

	t.Run("no watermark", func(t *testing.T) {
		data := mountTmpfs(t, "64m")
		s := startRegistry(t, data)
		first := mustImage(t, mustLayer(t, layer))
		s.push(t, "ci/app:0", first)
		acked, refusal := 1, ""
		for i := 1; i < 40 && refusal == ""; i++ {
			if refusal = pushOutcome(t, s, fmt.Sprintf("ci/app:%d", i), mustImage(t, mustLayer(t, layer))); refusal == "" {
				acked++
			}
		}
		t.Logf("no watermark: %d pushes of 4 MiB acknowledged, then: %s", acked, refusal)
		if !strings.HasPrefix(refusal, "507 DENIED") {
			t.Fatalf("a full disk answered %q, want 507 DENIED", refusal)
		}
		pullAndValidate(t, s, "ci/app:0", first)
		s.stop(t)
		checkStore(t, data)
	})

	t.Run("watermark", func(t *testing.T) {
		data := mountTmpfs(t, "64m")
		s := startRegistry(t, data, "--free-low", "30%", "--free-high", "45%", "--free-check-interval", "50ms", "--free-gc-grace", "0s")
		s.berthOK(t, "retention", "add", "ci", "--repos", "ci/**", "--keep-last", "1000")
		var acked, refused atomic.Int64
		var last v1.Image
		for i := range 40 {
			img := mustImage(t, mustLayer(t, layer))
			switch out := pushOutcome(t, s, fmt.Sprintf("ci/app:%d", i), img); {
			case out == "":
				acked.Add(1)
				last = img
			case strings.Contains(out, "free-space mark"):
				refused.Add(1) // pruning lagged behind: refused early, clearly
			default:
				t.Fatalf("push %d: %s", i, out)
			}
		}
		pruned := s.metric(t, "berth_watermark_pruned_tags_total")
		t.Logf("watermark: %d of 40 pushes of 4 MiB (160 MiB) acknowledged, %d refused early; %v tags pruned", acked.Load(), refused.Load(), pruned)
		if acked.Load() < 20 || pruned == 0 {
			t.Fatalf("the watermark did not make room: %d acknowledged, %v pruned", acked.Load(), pruned)
		}
		pullAndValidate(t, s, "ci/app:39", last)

		// Content no rule covers cannot be pruned: pushes are refused
		// before they fill the disk, with the reason.
		var refusal string
		for i := 0; i < 30 && refusal == ""; i++ {
			refusal = pushOutcome(t, s, fmt.Sprintf("other/x:%d", i), mustImage(t, mustLayer(t, layer)))
		}
		if !strings.HasPrefix(refusal, "507 DENIED") || !strings.Contains(refusal, "free-space mark") {
			t.Fatalf("pushes into unprunable content: %q, want 507 DENIED naming the free-space mark", refusal)
		}
		if s.metric(t, "berth_storage_pushes_refused") != 1 {
			t.Error("berth_storage_pushes_refused is not 1")
		}
		if len(s.logLines("pushes are refused")) == 0 {
			t.Error("the refusal was not logged")
		}
		wantStatus(t, s.do(t, http.MethodGet, "/v2/ci/app/manifests/39", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json"), http.StatusOK)
		pullAndValidate(t, s, "ci/app:39", last)
		s.stop(t)
		checkStore(t, data)
		if out, errOut, err := runBerth(t, t.Context(), nil, "verify", "--data", data); err != nil {
			t.Fatalf("verify: %v\n%s%s", err, out, errOut)
		}
	})
}
