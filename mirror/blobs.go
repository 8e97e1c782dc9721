package mirror

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// flight is one upstream fetch of a blob that every pull of it shares.
type flight struct {
	ready chan struct{} // closed once fill is set, or err
	fill  *store.Fill
	err   error         // why no fill started; read after ready
	done  chan struct{} // closed when the fill has ended
	end   error         // why the fill failed; read after done
}

// stallTimeout ends a fill whose upstream sends nothing for this long.
const stallTimeout = 60 * time.Second

// Blob makes blob d of repo (a repository in a mirror's namespace)
// servable. When the store holds it — linked to repo now if another
// repository brought it — it returns a nil reader and Hit: serve it from
// the store. Otherwise it joins or starts the upstream fetch and returns a
// reader that follows it from the first byte, with the size (-1 when the
// upstream sent none), and Miss. The reader fails, and nothing is stored,
// when the upstream stops or sends bytes that do not hash to d.
func (m *Mirror) Blob(ctx context.Context, repo string, d store.Digest) (io.ReadCloser, int64, string, error) {
	u, name, ok := m.split(repo)
	if !ok {
		return nil, 0, "", nil
	}
	if m.cached(repo, d) {
		lookups.WithLabelValues(u.cfg.Name, "blob", Hit).Inc()
		return nil, 0, Hit, nil
	}
	lookups.WithLabelValues(u.cfg.Name, "blob", Miss).Inc()
	key := repo + "@" + string(d)
	m.mu.Lock()
	f := m.flights[key]
	if f == nil && m.cached(repo, d) {
		// A fill ended between the lookup above and now: it leaves the
		// map (under m.mu) only once its blob is placed.
		m.mu.Unlock()
		return nil, 0, Hit, nil
	}
	if f == nil {
		f = &flight{ready: make(chan struct{}), done: make(chan struct{})}
		m.flights[key] = f
		// Not the client's context, nor one derived from it: the fill
		// outlives the request, whose context (fasthttp's) is reused.
		go m.fetchBlob(context.Background(), u, repo, name, d, key, f)
	}
	m.mu.Unlock()
	select {
	case <-f.ready:
	case <-ctx.Done():
		return nil, 0, "", ctx.Err()
	}
	if f.err != nil {
		return nil, 0, "", f.err
	}
	r, err := f.fill.NewReader()
	if err != nil {
		// The fill ended between the lookup and now.
		<-f.done
		if f.end != nil {
			return nil, 0, "", f.end
		}
		if m.cached(repo, d) {
			return nil, 0, Miss, nil
		}
		return nil, 0, "", err
	}
	return r, f.fill.Size(), Miss, nil
}

// cached reports whether the store holds d for repo, linking it when
// another repository brought it.
func (m *Mirror) cached(repo string, d store.Digest) bool {
	if _, err := m.store.StatBlob(repo, d); err == nil {
		return true
	}
	linked, err := m.store.LinkStoredBlobs(repo, []store.Digest{d})
	return err == nil && len(linked) == 1
}

// fetchBlob runs one upstream GET of d into a store.Fill.
func (m *Mirror) fetchBlob(ctx context.Context, u *upstream, repo, name string, d store.Digest, key string, f *flight) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		m.mu.Lock()
		delete(m.flights, key)
		m.mu.Unlock()
		close(f.done)
	}()
	var once sync.Once
	ready := func(err error) { once.Do(func() { f.err = err; close(f.ready) }) }
	res, err := u.do(ctx, http.MethodGet, name, "blobs", string(d), store.ErrBlobUnknown)
	if err != nil {
		ready(err)
		return
	}
	defer res.Body.Close()
	size := int64(-1)
	if n, err := strconv.ParseInt(res.Header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		size = n
	}
	fill, err := m.store.NewFill(d, size)
	if err != nil {
		ready(err)
		return
	}
	f.fill = fill
	ready(nil)
	body := &guard{r: res.Body, timer: time.AfterFunc(stallTimeout, cancel)}
	n, err := fill.Run(repo, body)
	body.timer.Stop()
	upstreamBytes.WithLabelValues(u.cfg.Name).Add(float64(n))
	if err != nil {
		reason := "unreachable"
		if ctx.Err() == nil && isDigestError(err) {
			reason = "digest"
		}
		upstreamErrors.WithLabelValues(u.cfg.Name, reason).Inc()
		m.log.Warn("mirror fill failed; nothing cached", "mirror", u.cfg.Name, "repo", repo, "digest", d, "bytes", n, "err", err)
		f.end = &store.UpstreamError{Mirror: u.cfg.Name, Host: u.reg.RegistryStr(), Missing: store.ErrBlobUnknown, Err: err}
		return
	}
	m.maybeEvict(u.cfg)
}

// guard is an upstream body whose every read pushes back the stall timer.
type guard struct {
	r     io.Reader
	timer *time.Timer
}

func (g *guard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.timer.Reset(stallTimeout)
	return n, err
}
