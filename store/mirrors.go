package store

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Mirror is an upstream registry that berth caches (mirrors/<name>): pulls
// of <name>/<repo> are served from the store and filled from URL on a miss
// (docs/mirror.md). Password is a credential: it is stored here and shown
// nowhere else.
type Mirror struct {
	// Name is the namespace the upstream's content lives under, one path
	// component of a repository name ("docker.io", "ghcr.io", "hub").
	Name string `json:"name"`
	// URL is the upstream's base, https://host[:port] or http://host[:port].
	URL      string `json:"url"`
	User     string `json:"user,omitempty"`
	Password []byte `json:"password,omitempty"`
	// CA is a PEM bundle the upstream's certificate must chain to; empty
	// means the system roots.
	CA string `json:"ca,omitempty"`
	// TagTTL is how long a cached tag is served without asking upstream;
	// after it one HEAD revalidates it.
	TagTTL time.Duration `json:"tagTTL"`
	// Anonymous lets clients without credentials pull this namespace
	// (Docker sends none to a mirror).
	Anonymous bool `json:"anonymous,omitempty"`
	// DockerHub marks the mirror that answers Docker's registry-mirrors
	// requests: names without a host, for repositories berth does not hold.
	DockerHub bool `json:"dockerHub,omitempty"`
	// Strict makes an upstream's 404 or 401 for a cached tag final: the tag
	// is not served from the cache. By default the cache is served.
	Strict bool `json:"strict,omitempty"`
	// MaxBytes caps what the cache may hold; above it the least recently
	// pulled tags are evicted. 0 means no cap.
	MaxBytes int64     `json:"maxBytes,omitempty"`
	Created  time.Time `json:"created"`
	// Prefetch are images the server fetches into the cache every
	// PrefetchEvery (berth mirror schedule), named inside the mirror's
	// namespace ("library/alpine:3.20"). Empty, or a zero interval: none.
	Prefetch      []string      `json:"prefetch,omitempty"`
	PrefetchEvery time.Duration `json:"prefetchEvery,omitempty"`
}

// Errors of the mirror operations.
var (
	ErrMirrorUnknown = errors.New("no such mirror")
	ErrMirrorExists  = errors.New("a mirror of that name exists")
	ErrMirrorInvalid = errors.New("invalid mirror")
)

// Host is the upstream's host[:port], what containerd sends as ?ns=.
func (m *Mirror) Host() string {
	u, err := url.Parse(m.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// Validate checks m and returns an error wrapping ErrMirrorInvalid that
// says which field is wrong.
func (m *Mirror) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrMirrorInvalid, fmt.Sprintf(format, a...))
	}
	if strings.Contains(m.Name, "/") || ValidateRepository(m.Name) != nil {
		return bad("name %q: one lower-case path component such as docker.io or ghcr.io", m.Name)
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return bad("url %q: want https://host[:port] or http://host[:port], without a path", m.URL)
	}
	if m.Password != nil && m.User == "" {
		return bad("a password needs a user")
	}
	if m.CA != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(m.CA)) {
		return bad("the CA file holds no PEM certificate")
	}
	if m.TagTTL < 0 || m.MaxBytes < 0 {
		return bad("tag TTL and size cap cannot be negative")
	}
	return nil
}

// AddMirror stores a new upstream after validating it. ErrMirrorExists when
// the name is taken; an error wrapping ErrMirrorInvalid when another mirror
// already answers Docker's registry-mirrors requests.
func (s *Store) AddMirror(m Mirror) error {
	if err := m.Validate(); err != nil {
		return err
	}
	v, err := encode(m)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMirrors)
		if b.Get([]byte(m.Name)) != nil {
			return ErrMirrorExists
		}
		if m.DockerHub {
			others, err := readMirrors(tx)
			if err != nil {
				return err
			}
			for _, o := range others {
				if o.DockerHub {
					return fmt.Errorf("%w: mirror %s already answers Docker's registry-mirrors requests", ErrMirrorInvalid, o.Name)
				}
			}
		}
		if err := b.Put([]byte(m.Name), v); err != nil {
			return err
		}
		tx.OnCommit(func() { s.mirrorsVersion.Add(1) })
		return nil
	})
}

// SetMirrorPrefetch sets the prefetch schedule of mirror name: refs, in
// its namespace, every interval; no refs or a zero interval clears it.
// ErrMirrorUnknown when there is no such mirror.
func (s *Store) SetMirrorPrefetch(name string, refs []string, every time.Duration) error {
	if len(refs) == 0 || every <= 0 {
		refs, every = nil, 0
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMirrors)
		v := b.Get([]byte(name))
		if v == nil {
			return ErrMirrorUnknown
		}
		var m Mirror
		if err := decode(v, &m); err != nil {
			return fmt.Errorf("mirror %s: %w", name, err)
		}
		m.Prefetch, m.PrefetchEvery = refs, every
		nv, err := encode(m)
		if err != nil {
			return err
		}
		tx.OnCommit(func() { s.mirrorsVersion.Add(1) })
		return b.Put([]byte(name), nv)
	})
}

// MirrorsVersion counts changes of the mirror list made through this
// store, so a caller that keeps its own copy (the mirror's router) knows
// when to read it again.
func (s *Store) MirrorsVersion() uint64 { return s.mirrorsVersion.Load() }

// DeleteMirror forgets an upstream. What it cached stays, as ordinary
// repositories under its namespace (berth repo del removes them).
func (s *Store) DeleteMirror(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMirrors)
		if b.Get([]byte(name)) == nil {
			return ErrMirrorUnknown
		}
		tx.OnCommit(func() { s.mirrorsVersion.Add(1) })
		return b.Delete([]byte(name))
	})
}

// Mirrors returns every upstream, by name, credentials included: callers
// must not show them.
func (s *Store) Mirrors() ([]Mirror, error) {
	var out []Mirror
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = readMirrors(tx)
		return err
	})
	return out, err
}

// MirrorNamed returns the upstream name, or ErrMirrorUnknown.
func (s *Store) MirrorNamed(name string) (Mirror, error) {
	var m Mirror
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMirrors).Get([]byte(name))
		if v == nil {
			return ErrMirrorUnknown
		}
		return decode(v, &m)
	})
	return m, err
}

func readMirrors(tx *bolt.Tx) ([]Mirror, error) {
	var out []Mirror
	err := tx.Bucket(bucketMirrors).ForEach(func(k, v []byte) error {
		var m Mirror
		if err := decode(v, &m); err != nil {
			return fmt.Errorf("mirror %s: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// CacheManifest records a manifest an upstream served into repo, a
// repository of a mirror's namespace, under tag when tag is not "". Unlike
// PutManifest it does not require the blobs and children to be present: a
// pull-through cache fetches those when a client asks for them, and only
// those. body must hash to d (else ErrDigestMismatch) and parse as a
// manifest of mediaType.
func (s *Store) CacheManifest(repo, tag string, d Digest, mediaType string, body []byte) (StoredManifest, error) {
	m, err := ParseManifest(mediaType, body)
	if err != nil {
		return StoredManifest{}, err
	}
	if got := DigestOf(d.Algorithm(), body); got != d {
		return StoredManifest{}, fmt.Errorf("%w: manifest %s hashes to %s", ErrDigestMismatch, d, got)
	}
	now := s.now()
	rec := newManifestRecord(m, now)
	value, err := encodeManifest(rec, body)
	if err != nil {
		return StoredManifest{}, err
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return recordManifest(tx, repo, d, rec, value, tags, now)
	})
	if err != nil {
		return StoredManifest{}, err
	}
	return StoredManifest{
		Digest: d, MediaType: rec.MediaType, ArtifactType: rec.ArtifactType, Annotations: rec.Annotations,
		Subject: rec.Subject, Size: int64(len(body)), Body: body, Created: now,
	}, nil
}

// UpstreamError reports content that a mirror's cache lacks and its
// upstream did not give. Status is the upstream's HTTP status, 0 when it
// could not be reached (refused, timed out, TLS); Missing is
// ErrManifestUnknown or ErrBlobUnknown, what the client asked for.
type UpstreamError struct {
	Mirror  string
	Host    string
	Status  int
	Missing error
	Err     error
}

func (e *UpstreamError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("not cached, and upstream %s (mirror %s) answered %d", e.Host, e.Mirror, e.Status)
	}
	return fmt.Sprintf("not cached, and upstream %s (mirror %s) is unreachable", e.Host, e.Mirror)
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// HasRepository reports whether repo holds anything (a pushed or cached
// manifest or blob).
func (s *Store) HasRepository(repo string) bool {
	var ok bool
	s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketRepos).Get([]byte(repo)) != nil
		return nil
	})
	return ok
}

// CachedTag is a tag in a mirror's cache, as eviction weighs it.
type CachedTag struct {
	Repo    string
	Tag     string
	Digest  Digest
	Created time.Time // when its manifest was last stored
	Pulled  time.Time // when its manifest was last pulled (RecordPull); zero when never
	// Blobs are its manifest and the stored blobs it refers to (an index's
	// through its children), with their sizes: what deleting the tag may
	// free once nothing else refers to them.
	Blobs map[Digest]int64
}

// CacheUsage returns the bytes of the blobs linked in the repositories
// under ns/ (each blob counted once, however many link it) and their tags.
func (s *Store) CacheUsage(ns string) (int64, []CachedTag, error) {
	var total int64
	var tags []CachedTag
	pre := []byte(ns + "/")
	err := s.db.View(func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		blobs := tx.Bucket(bucketBlobs)
		c := tx.Bucket(bucketLinks).Cursor()
		for k, _ := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = c.Next() {
			_, d := splitPair(k)
			if seen[string(d)] {
				continue
			}
			seen[string(d)] = true
			var rec blobRecord
			if err := decode(blobs.Get([]byte(d)), &rec); err == nil {
				total += rec.Size
			}
		}
		manifests := tx.Bucket(bucketManifests)
		pulls := map[string]map[Digest]time.Time{}
		c = tx.Bucket(bucketTags).Cursor()
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			repo, tag := splitPair(k)
			t := CachedTag{Repo: repo, Tag: string(tag), Digest: Digest(v)}
			if mv := manifests.Get(key(repo, string(v))); mv != nil {
				if rec, _, err := decodeManifest(mv); err == nil {
					t.Created = time.Unix(0, rec.Created)
				}
			}
			if pulls[repo] == nil {
				pulls[repo] = s.lastPulls(tx, repo)
			}
			t.Pulled = pulls[repo][t.Digest]
			t.Blobs = map[Digest]int64{}
			manifestBlobs(manifests, blobs, repo, t.Digest, 2, t.Blobs)
			tags = append(tags, t)
		}
		return nil
	})
	return total, tags, err
}

// manifestBlobs adds manifest d of repo and the stored blobs it refers to, with
// their sizes, to out, following an index's children depth levels down.
func manifestBlobs(manifests, blobs *bolt.Bucket, repo string, d Digest, depth int, out map[Digest]int64) {
	mv := manifests.Get(key(repo, string(d)))
	if mv == nil {
		return
	}
	rec, _, err := decodeManifest(mv)
	if err != nil {
		return
	}
	// The manifest's own bytes are a blob too.
	for _, b := range append([]Digest{d}, rec.Blobs...) {
		var br blobRecord
		if err := decode(blobs.Get([]byte(b)), &br); err == nil {
			out[b] = br.Size
		}
	}
	if depth > 0 {
		for _, child := range rec.Children {
			manifestBlobs(manifests, blobs, repo, child, depth-1, out)
		}
	}
}
