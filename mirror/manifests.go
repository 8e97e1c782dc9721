package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berth-registry/berth/store"
)

// The outcomes of a lookup, for the access log and the metrics.
const (
	Hit   = "hit"   // served from the cache, no upstream request
	Miss  = "miss"  // fetched from upstream (or revalidated there)
	Stale = "stale" // a cached tag served while the upstream could not confirm it
)

// call is one upstream manifest fetch that concurrent pulls share.
type call struct {
	done    chan struct{}
	outcome string
	err     error
}

// Manifest makes the manifest ref of repo (a repository in a mirror's
// namespace) current in the store, so the server can serve it from there,
// and says how: Hit, Miss or Stale. A digest is fetched only when absent;
// a tag is revalidated with one HEAD once its TTL has passed. When the
// upstream fails, a cached tag is served (Stale) unless the mirror is
// strict and the upstream said 404 or 401; an uncached one fails with
// *store.UpstreamError.
func (m *Mirror) Manifest(ctx context.Context, repo string, ref store.Reference) (string, error) {
	u, name, ok := m.split(repo)
	if !ok {
		return "", nil
	}
	ctx, cancel := detach(ctx, 2*time.Minute)
	defer cancel()
	outcome, err := m.manifest(ctx, u, repo, name, ref)
	if outcome != "" {
		lookups.WithLabelValues(u.cfg.Name, "manifest", outcome).Inc()
	}
	return outcome, err
}

func (m *Mirror) manifest(ctx context.Context, u *upstream, repo, name string, ref store.Reference) (string, error) {
	cached, err := m.store.Manifest(repo, ref)
	have := err == nil
	if have && (ref.Digest != "" || m.fresh(repo, ref.Tag, u.cfg)) {
		return Hit, nil
	}
	if have {
		switch d, err := m.head(ctx, u, name, ref.Tag); {
		case err == nil && d == cached.Digest:
			m.confirm(repo, ref.Tag)
			return Miss, nil
		case err != nil:
			return m.stale(u, repo, ref.Tag, err)
		}
	}
	outcome, err := m.shared(ctx, u, repo, name, ref)
	if err != nil && have {
		return m.stale(u, repo, ref.Tag, err)
	}
	return outcome, err
}

// stale decides what a failed revalidation of a cached tag serves.
func (m *Mirror) stale(u *upstream, repo, tag string, err error) (string, error) {
	var ue *store.UpstreamError
	if u.cfg.Strict && errors.As(err, &ue) && (ue.Status == http.StatusNotFound || ue.Status == http.StatusUnauthorized) {
		return "", err
	}
	m.log.Warn("mirror serves a stale tag", "mirror", u.cfg.Name, "repo", repo, "tag", tag, "err", err)
	return Stale, nil
}

// fresh reports whether tag of repo was confirmed within the mirror's
// TTL. Confirmations are kept in the store (written in batches), so they
// outlive a restart.
func (m *Mirror) fresh(repo, tag string, cfg store.Mirror) bool {
	at := m.store.TagConfirmed(repo, tag)
	return !at.IsZero() && m.now().Sub(at) < cfg.TagTTL
}

func (m *Mirror) confirm(repo, tag string) { m.store.ConfirmTag(repo, tag) }

// head asks the upstream which digest tag names now.
func (m *Mirror) head(ctx context.Context, u *upstream, name, tag string) (store.Digest, error) {
	res, err := u.do(ctx, http.MethodHead, name, "manifests", tag, store.ErrManifestUnknown)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	d, err := store.ParseDigest(res.Header.Get("Docker-Content-Digest"))
	if err != nil {
		// Without the header the HEAD says nothing; the GET settles it.
		return "", nil
	}
	return d, nil
}

// shared runs one fetch of ref for all pulls that ask for it at once.
func (m *Mirror) shared(ctx context.Context, u *upstream, repo, name string, ref store.Reference) (string, error) {
	key := repo + "@" + ref.String()
	m.mu.Lock()
	c := m.manifests[key]
	leader := c == nil
	if leader {
		c = &call{done: make(chan struct{})}
		m.manifests[key] = c
	}
	m.mu.Unlock()
	if leader {
		// Not the client's context: a fetch others wait for must not end
		// because the first client left (and fasthttp reuses its context).
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		c.outcome, c.err = m.fetch(fctx, u, repo, name, ref)
		cancel()
		m.mu.Lock()
		delete(m.manifests, key)
		m.mu.Unlock()
		close(c.done)
		return c.outcome, c.err
	}
	select {
	case <-c.done:
		return c.outcome, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fetch GETs ref upstream, checks its digest and records it.
func (m *Mirror) fetch(ctx context.Context, u *upstream, repo, name string, ref store.Reference) (string, error) {
	res, err := u.do(ctx, http.MethodGet, name, "manifests", ref.String(), store.ErrManifestUnknown)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, store.MaxManifestSize+1))
	if err != nil {
		return "", u.fail(err, 0, store.ErrManifestUnknown)
	}
	upstreamBytes.WithLabelValues(u.cfg.Name).Add(float64(len(body)))
	if len(body) > store.MaxManifestSize {
		return "", fmt.Errorf("upstream %s: %w: over %d bytes", u.reg.RegistryStr(), store.ErrManifestTooLarge, store.MaxManifestSize)
	}
	d := ref.Digest
	if d == "" {
		d = store.DigestOf(store.SHA256, body)
		if h, err := store.ParseDigest(res.Header.Get("Docker-Content-Digest")); err == nil {
			d = store.DigestOf(h.Algorithm(), body)
			if d != h {
				upstreamErrors.WithLabelValues(u.cfg.Name, "digest").Inc()
				return "", fmt.Errorf("upstream %s sent manifest %s:%s hashing to %s: %w", u.reg.RegistryStr(), name, ref.Tag, d, store.ErrDigestMismatch)
			}
		}
	}
	if _, err := m.store.CacheManifest(repo, ref.Tag, d, res.Header.Get("Content-Type"), body); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) {
			upstreamErrors.WithLabelValues(u.cfg.Name, "digest").Inc()
		}
		return "", fmt.Errorf("upstream %s: manifest %s@%s: %w", u.reg.RegistryStr(), name, ref, err)
	}
	if ref.Tag != "" {
		m.confirm(repo, ref.Tag)
	}
	return Miss, nil
}
