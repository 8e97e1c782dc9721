package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Quotas bound the bytes a namespace (the first component of a repository
// name: "apps" for "apps/web/api"; a name without '/' is its own
// namespace) or one repository may hold. A namespace's usage counts each
// blob its repositories link once, however many link it, plus the
// manifests' bodies; a repository's counts what it links and its
// manifests. Uploads in progress are not usage: a push is checked before
// the first byte when its size is known, at the chunk that crosses the
// limit, when a blob is linked (upload, mount) and at the manifest PUT.

// Quota kinds.
const (
	QuotaNamespace  = "namespace"
	QuotaRepository = "repository"
)

// Quota is a limit with the usage it bounds.
type Quota struct {
	Kind  string `json:"kind"` // QuotaNamespace or QuotaRepository
	Name  string `json:"name"`
	Limit int64  `json:"limit"`
	Usage int64  `json:"usage"`
}

// QuotaError is a push refused because it would exceed a quota.
type QuotaError struct {
	Quota
	Need int64 // the bytes the refused step would add
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota of %s %s exceeded: %d of %d bytes used, this push needs %d more",
		e.Kind, e.Name, e.Usage, e.Limit, e.Need)
}

// NamespaceOf returns the namespace of repo: its first path component.
func NamespaceOf(repo string) string {
	ns, _, _ := strings.Cut(repo, "/")
	return ns
}

func quotaKey(kind, name string) []byte { return key(kind, name) }

// SetQuota sets (or replaces) the limit of a namespace or repository.
func (s *Store) SetQuota(kind, name string, limit int64) error {
	if kind != QuotaNamespace && kind != QuotaRepository {
		return fmt.Errorf("%w: quota kind %q: namespace or repository", ErrPolicyInvalid, kind)
	}
	if limit <= 0 {
		return fmt.Errorf("%w: a quota must be positive", ErrPolicyInvalid)
	}
	check := ValidateRepository
	if kind == QuotaNamespace && strings.Contains(name, "/") {
		return fmt.Errorf("%w: namespace %q has a '/': a namespace is a name's first component", ErrPolicyInvalid, name)
	}
	if err := check(name); err != nil {
		return fmt.Errorf("%w: %v", ErrPolicyInvalid, err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuotas).Put(quotaKey(kind, name), binary.BigEndian.AppendUint64([]byte{recordVersion}, uint64(limit)))
	})
	if err != nil {
		return err
	}
	return s.loadQuotas()
}

// DeleteQuota removes a limit; ErrPolicyUnknown when there is none.
func (s *Store) DeleteQuota(kind, name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		if b.Get(quotaKey(kind, name)) == nil {
			return fmt.Errorf("%w: no quota on %s %s", ErrPolicyUnknown, kind, name)
		}
		return b.Delete(quotaKey(kind, name))
	})
	if err != nil {
		return err
	}
	return s.loadQuotas()
}

// Quotas returns every limit with its current usage, namespaces first,
// by name.
func (s *Store) Quotas() ([]Quota, error) {
	var out []Quota
	err := s.db.View(func(tx *bolt.Tx) error {
		for k, limit := range s.quotaLimits() {
			parts := strings.SplitN(k, "\x00", 2)
			q := Quota{Kind: parts[0], Name: parts[1], Limit: limit}
			var err error
			if q.Usage, err = quotaUsage(tx, q.Kind, q.Name); err != nil {
				return err
			}
			out = append(out, q)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Kind < b.Kind || a.Kind == b.Kind && a.Name < b.Name
	})
	return out, err
}

// quotaLimits returns the limits by quotaKey, from memory.
func (s *Store) quotaLimits() map[string]int64 {
	if p := s.quotas.Load(); p != nil {
		return *p
	}
	return nil
}

// loadQuotas reads the limits into memory (at Open and after a change), so
// a push into a repository without a quota costs one map lookup.
func (s *Store) loadQuotas() error {
	limits := make(map[string]int64)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		if b == nil { // a read-only open of a data dir older than quotas
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) != 9 || v[0] != recordVersion {
				return fmt.Errorf("quota %q: record has unknown version", k)
			}
			limits[string(k)] = int64(binary.BigEndian.Uint64(v[1:]))
			return nil
		})
	})
	if err == nil {
		s.quotas.Store(&limits)
	}
	return err
}

// quotasOf returns the quotas that bound repo, without usage.
func (s *Store) quotasOf(repo string) []Quota {
	limits := s.quotaLimits()
	if len(limits) == 0 {
		return nil
	}
	var out []Quota
	for _, q := range []Quota{{Kind: QuotaNamespace, Name: NamespaceOf(repo)}, {Kind: QuotaRepository, Name: repo}} {
		if l, ok := limits[string(quotaKey(q.Kind, q.Name))]; ok {
			q.Limit = l
			out = append(out, q)
		}
	}
	return out
}

// scopeRepos calls fn with the key prefix of each repository range a quota
// covers: the repository, or the namespace's own name and everything under
// "<ns>/".
func scopeRepos(kind, name string) [][]byte {
	if kind == QuotaRepository {
		return [][]byte{prefix(name)}
	}
	return [][]byte{prefix(name), []byte(name + "/")}
}

// quotaUsage adds up what a quota's scope holds: each linked blob once, and
// the manifests' bodies.
func quotaUsage(tx *bolt.Tx, kind, name string) (int64, error) {
	n, _, err := scopeUsage(tx, kind, name)
	return n, err
}

// scopeUsage is quotaUsage that also returns the size of the largest blob
// the scope links: an upload of unknown digest no larger than that may be
// a blob the scope has, which costs nothing at its commit.
func scopeUsage(tx *bolt.Tx, kind, name string) (n, largest int64, err error) {
	seen := make(map[string]bool)
	blobs := tx.Bucket(bucketBlobs)
	for _, pre := range scopeRepos(kind, name) {
		c := tx.Bucket(bucketLinks).Cursor()
		for k, _ := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = c.Next() {
			d := string(k[bytes.IndexByte(k, sep)+1:])
			if seen[d] {
				continue
			}
			seen[d] = true
			var br blobRecord
			if err := decode(blobs.Get([]byte(d)), &br); err != nil {
				return 0, 0, fmt.Errorf("blob %s: %w", d, err)
			}
			n += br.Size
			largest = max(largest, br.Size)
		}
		c = tx.Bucket(bucketManifests).Cursor()
		for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
			size, err := manifestBodySize(v)
			if err != nil {
				return 0, 0, fmt.Errorf("manifest %q: %w", k, err)
			}
			n += size
		}
	}
	return n, largest, nil
}

// linkedIn reports whether a repository of the quota's scope links d.
func linkedIn(tx *bolt.Tx, kind, name string, d Digest) bool {
	if kind == QuotaRepository {
		return tx.Bucket(bucketLinks).Get(key(name, string(d))) != nil
	}
	p := prefix(string(d))
	c := tx.Bucket(bucketBlobRepos).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if NamespaceOf(string(k[len(p):])) == name {
			return true
		}
	}
	return false
}

// checkQuotas fails with *QuotaError when adding to repo the blobs (by
// digest, with their sizes) and extra bytes would take a quota over its
// limit. Blobs the scope already links cost nothing.
func (s *Store) checkQuotas(tx *bolt.Tx, repo string, blobs map[Digest]int64, extra int64) error {
	for _, q := range s.quotasOf(repo) {
		need := extra
		for d, size := range blobs {
			if !linkedIn(tx, q.Kind, q.Name, d) {
				need += size
			}
		}
		if need <= 0 {
			continue
		}
		usage, err := quotaUsage(tx, q.Kind, q.Name)
		if err != nil {
			return err
		}
		if usage+need > q.Limit {
			q.Usage = usage
			return &QuotaError{Quota: q, Need: need}
		}
	}
	return nil
}

// CheckQuota fails with *QuotaError when adding n new bytes to repo would
// take a quota over its limit: the check at upload start, when the size
// is known. d, when not empty, is the blob's digest: a blob the quota's
// scope already links costs nothing. The commit checks again.
func (s *Store) CheckQuota(repo string, d Digest, n int64) error {
	if len(s.quotasOf(repo)) == 0 || n <= 0 {
		return nil
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if d != "" {
			return s.checkQuotas(tx, repo, map[Digest]int64{d: n}, 0)
		}
		return s.checkQuotas(tx, repo, nil, n)
	})
}

// CheckUploadQuota is CheckQuota for a chunk of n bytes of session id: the
// session's bytes so far count too. On refusal it ends the session, so
// nothing half-written stays behind.
func (s *Store) CheckUploadQuota(repo, id string, n int64) error {
	if len(s.quotasOf(repo)) == 0 || n <= 0 {
		return nil
	}
	unlock := s.lockUpload(id)
	defer unlock()
	rec, err := s.upload(repo, id)
	if err != nil {
		return err
	}
	r, err := s.quotaReader(repo, rec.Offset, "", nil)
	if err != nil {
		return err
	}
	if o, ok := r.(*overQuota); ok && rec.Offset+n > o.offset+o.room {
		e := *o.err
		e.Need = rec.Offset + n
		return s.dropOverQuota(id, &e)
	}
	return nil
}

// dropOverQuota ends session id after err, a quota refusal, and returns err.
func (s *Store) dropOverQuota(id string, err error) error {
	if rmErr := s.removeUpload(id); rmErr != nil {
		return fmt.Errorf("%w (and removing the session: %v)", err, rmErr)
	}
	return err
}

// quotaReader wraps a chunk of an upload whose session holds offset bytes:
// reading past the room repo's quotas leave fails with *QuotaError, so the
// chunk that crosses a limit stops there instead of filling the disk. d,
// when known, is the blob's digest: a scope that links it already sets no
// limit.
func (s *Store) quotaReader(repo string, offset int64, d Digest, r io.Reader) (io.Reader, error) {
	if len(s.quotasOf(repo)) == 0 {
		return r, nil
	}
	var room int64 = -1
	var first *QuotaError
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, q := range s.quotasOf(repo) {
			if d != "" && linkedIn(tx, q.Kind, q.Name, d) {
				continue
			}
			usage, largest, err := scopeUsage(tx, q.Kind, q.Name)
			if err != nil {
				return err
			}
			left := q.Limit - usage - offset
			if d == "" {
				// The digest is not known before the commit: up to the
				// size of the largest blob the scope has, this may be one
				// of them. The commit decides exactly.
				left = max(left, largest-offset)
			}
			if room < 0 || left < room {
				room = max(left, 0)
				q.Usage = usage
				first = &QuotaError{Quota: q}
			}
		}
		return nil
	})
	if err != nil || first == nil {
		return r, err
	}
	return &overQuota{r: r, room: room, offset: offset, err: first}, nil
}

type overQuota struct {
	r      io.Reader
	room   int64
	offset int64
	read   int64
	err    *QuotaError
}

func (o *overQuota) Read(p []byte) (int, error) {
	if o.read >= o.room {
		// One byte more tells a chunk that ends exactly at the limit from
		// one that goes past it.
		var b [1]byte
		n, err := o.r.Read(b[:])
		if n == 0 && err != nil {
			return 0, err
		}
		e := *o.err
		e.Need = o.offset + o.read + 1
		return 0, &e
	}
	if int64(len(p)) > o.room-o.read {
		p = p[:o.room-o.read]
	}
	n, err := o.r.Read(p)
	o.read += int64(n)
	return n, err
}
