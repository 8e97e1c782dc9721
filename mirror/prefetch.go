package mirror

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Fetched is what a prefetch brought into the cache, or found there.
type Fetched struct {
	Manifests int   `json:"manifests"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"` // of blobs fetched now; cached ones count 0
}

// Prefetch fills the cache with ref of repo (a repository in a mirror's
// namespace): the manifest, every child of an index, and every blob, so
// later pulls need no upstream. Content already cached is not fetched again.
func (m *Mirror) Prefetch(ctx context.Context, repo string, ref store.Reference) (Fetched, error) {
	var got Fetched
	if !m.Owns(repo) {
		return got, fmt.Errorf("%s is not in a mirror's namespace (berth mirror list)", repo)
	}
	if _, err := m.Manifest(ctx, repo, ref); err != nil {
		return got, err
	}
	return got, m.prefetchTree(ctx, repo, ref, &got, 0)
}

func (m *Mirror) prefetchTree(ctx context.Context, repo string, ref store.Reference, got *Fetched, depth int) error {
	if depth > 4 {
		return fmt.Errorf("manifest %s nests indexes too deep", ref)
	}
	sm, err := m.store.Manifest(repo, ref)
	if err != nil {
		return err
	}
	got.Manifests++
	parsed, err := store.ParseManifest(sm.MediaType, sm.Body)
	if err != nil {
		return err
	}
	for _, child := range parsed.Children {
		cref := store.Reference{Digest: child}
		if _, err := m.Manifest(ctx, repo, cref); err != nil {
			return err
		}
		if err := m.prefetchTree(ctx, repo, cref, got, depth+1); err != nil {
			return err
		}
	}
	for _, b := range parsed.Blobs {
		r, _, _, err := m.Blob(ctx, repo, b)
		if err != nil {
			return fmt.Errorf("blob %s: %w", b, err)
		}
		got.Blobs++
		if r == nil {
			continue
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		got.Bytes += n
		if err != nil {
			return fmt.Errorf("blob %s: %w", b, err)
		}
	}
	return nil
}

// Test signs in to the upstream of cfg as a pull would and returns what
// its /v2/ endpoint answered ("200 OK").
func Test(ctx context.Context, cfg store.Mirror) (string, error) {
	u, err := newUpstream(cfg, slog.Default())
	if err != nil {
		return "", err
	}
	// A pull scope of a repository that need not exist: enough for a
	// token service to check the credentials.
	rt, err := u.transport(ctx, "library/berth-mirror-test")
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.reg.Scheme()+"://"+u.reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return "", err
	}
	res, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", u.fail(err, 0, store.ErrManifestUnknown)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upstream %s answered %s", u.reg.RegistryStr(), strings.TrimSpace(res.Status))
	}
	return res.Status, nil
}

// SplitImageRef splits "repo:tag", "repo@digest" or "repo" (tag latest),
// the images mirror prefetch and mirror schedule name.
func SplitImageRef(s string) (string, store.Reference, error) {
	repo, refStr := s, "latest"
	if i := strings.LastIndex(s, "@"); i >= 0 {
		repo, refStr = s[:i], s[i+1:]
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		repo, refStr = s[:i], s[i+1:]
	}
	if err := store.ValidateRepository(repo); err != nil {
		return "", store.Reference{}, fmt.Errorf("%s: %w", s, err)
	}
	ref, err := store.ParseReference(refStr)
	if err != nil {
		return "", store.Reference{}, fmt.Errorf("%s: %w", s, err)
	}
	return repo, ref, nil
}
