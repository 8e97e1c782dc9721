package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/berth-registry/berth/store"
)

// Referrers brings the referrers (signatures, SBOMs) of subject in repo
// from the upstream into the cache, so that the server's referrers
// listing, read from the store, includes them; each is stored as a
// manifest whose subject is subject, so GC and eviction keep it with its
// subject. The upstream's list is asked again once the mirror's tag TTL
// has passed. An upstream without the referrers API, or one that fails,
// leaves the cached list as it is: it returns no error for that.
func (m *Mirror) Referrers(ctx context.Context, repo string, subject store.Digest) (string, error) {
	u, name, ok := m.split(repo)
	if !ok {
		return "", nil
	}
	ctx, cancel := detach(ctx, 2*time.Minute)
	defer cancel()
	key := "referrers@" + string(subject)
	if m.fresh(repo, key, u.cfg) {
		return Hit, nil
	}
	res, err := u.do(ctx, http.MethodGet, name, "referrers", string(subject), store.ErrManifestUnknown)
	var ue *store.UpstreamError
	if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
		// No referrers API: the spec's fallback, an index tagged
		// <alg>-<hex>, which clients such as go-containerregistry push.
		res, err = u.do(ctx, http.MethodGet, name, "manifests", subject.Algorithm()+"-"+subject.Hex(), store.ErrManifestUnknown)
		if errors.As(err, &ue) && ue.Status == http.StatusNotFound {
			m.confirm(repo, key) // none upstream
			return Miss, nil
		}
	}
	if err != nil {
		return Stale, nil
	}
	defer res.Body.Close()
	var index struct {
		Manifests []struct {
			Digest store.Digest `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, store.MaxManifestSize)).Decode(&index); err != nil {
		return Stale, nil
	}
	for _, d := range index.Manifests {
		if _, err := store.ParseDigest(string(d.Digest)); err != nil {
			continue
		}
		if _, err := m.Manifest(ctx, repo, store.Reference{Digest: d.Digest}); err != nil {
			m.log.Warn("mirror referrer not cached", "mirror", u.cfg.Name, "repo", repo, "digest", d.Digest, "err", err)
		}
	}
	m.confirm(repo, key)
	return Miss, nil
}
