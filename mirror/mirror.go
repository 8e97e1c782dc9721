package mirror

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// Mirror is the pull-through cache of one store. Create it with New; it
// is safe for concurrent use.
type Mirror struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	upstreams map[string]*upstream // by mirror name; rebuilt when its record changes
	flights   map[string]*flight   // <repo>@<digest> → the fill running for it
	manifests map[string]*call     // <repo>@<ref> → the manifest fetch running for it

	evicting map[string]bool // mirror names whose eviction runs

	list        []store.Mirror // the store's mirrors as of listVersion
	listVersion uint64
	listed      bool
}

// New returns the cache of st. Upstreams are read from st on each request,
// so berth mirror add and del apply at once. Calls with the same store
// return the same Mirror (the first call's logger stays): a prefetch that
// the control socket runs inside the server shares the server's fills and
// tag confirmations.
func New(st *store.Store, log *slog.Logger) *Mirror {
	if log == nil {
		log = slog.Default()
	}
	m := &Mirror{
		store: st, log: log, now: time.Now,
		upstreams: map[string]*upstream{},
		flights:   map[string]*flight{}, manifests: map[string]*call{},
		evicting: map[string]bool{},
	}
	shared, _ := instances.LoadOrStore(st, m)
	return shared.(*Mirror)
}

// instances holds the Mirror of each store opened in this process.
var instances sync.Map

// Route says whether a pull of repo is a mirror's, and under which
// repository of the store its cache lives:
//   - ns, containerd's ?ns= (the upstream's host), picks the mirror whose
//     URL has that host (or whose name it is), and repo goes under it;
//   - a repo whose first component is a mirror's name is that mirror's
//     (the path prefix: nas:5000/docker.io/library/alpine);
//   - otherwise, a repo the store does not hold goes to the mirror marked
//     for Docker's registry-mirrors, if there is one.
//
// anonymous reports whether the mirror opens its namespace to anonymous
// pulls.
func (m *Mirror) Route(repo, ns string) (cached string, anonymous bool, ok bool) {
	mirrors := m.mirrors()
	if len(mirrors) == 0 {
		return "", false, false
	}
	if ns != "" {
		for _, mr := range mirrors {
			if strings.EqualFold(mr.Host(), ns) || mr.Name == ns {
				if strings.HasPrefix(repo, mr.Name+"/") {
					return repo, mr.Anonymous, true
				}
				return mr.Name + "/" + repo, mr.Anonymous, true
			}
		}
	}
	first, _, _ := strings.Cut(repo, "/")
	for _, mr := range mirrors {
		if mr.Name == first && strings.Contains(repo, "/") {
			return repo, mr.Anonymous, true
		}
	}
	for _, mr := range mirrors {
		if mr.DockerHub && !m.store.HasRepository(repo) {
			return mr.Name + "/" + repo, mr.Anonymous, true
		}
	}
	return "", false, false
}

// mirrors returns the store's mirrors, read again only after a change:
// Route runs on every pull, of the registry's own repositories too.
func (m *Mirror) mirrors() []store.Mirror {
	v := m.store.MirrorsVersion()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listed && m.listVersion == v {
		return m.list
	}
	list, err := m.store.Mirrors()
	if err != nil {
		m.log.Error("read mirrors", "err", err)
		return m.list
	}
	m.list, m.listVersion, m.listed = list, v, true
	return list
}

// Owns reports whether repo (a store repository) lies in a mirror's
// namespace, and which; such repositories are pull-only.
func (m *Mirror) Owns(repo string) bool {
	_, _, ok := m.split(repo)
	return ok
}

// split returns the upstream of repo's mirror and repo's name upstream.
func (m *Mirror) split(repo string) (*upstream, string, bool) {
	first, rest, found := strings.Cut(repo, "/")
	if !found {
		return nil, "", false
	}
	var cfg *store.Mirror
	for _, mr := range m.mirrors() {
		if mr.Name == first {
			cfg = &mr
			break
		}
	}
	if cfg == nil {
		return nil, "", false
	}
	u, err := m.upstream(*cfg)
	if err != nil {
		m.log.Error("mirror upstream", "mirror", cfg.Name, "err", err)
		return nil, "", false
	}
	return u, rest, true
}

// upstream returns the client of cfg, made again when cfg changed.
func (m *Mirror) upstream(cfg store.Mirror) (*upstream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.upstreams[cfg.Name]; u != nil && u.cfg.Created.Equal(cfg.Created) && u.cfg.URL == cfg.URL {
		return u, nil
	}
	u, err := newUpstream(cfg, m.log)
	if err != nil {
		return nil, err
	}
	m.upstreams[cfg.Name] = u
	return u, nil
}
