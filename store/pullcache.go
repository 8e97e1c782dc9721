package store

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// pullCache keeps the manifests that pulls read, each with the id of the
// bbolt transaction it was read in. A read transaction's id is that of the
// last committed write, so an entry read at id T is exactly what a new
// read transaction with id T would find: no write has committed since. A
// manifest HEAD or GET then begins its read transaction as before, and
// when nothing was written since the entry was filled it answers from the
// entry, without opening the tags, manifests and broken buckets, building
// their keys, or hashing the body again (the rot check of manifest ran
// when the entry was filled, on the same bytes). Any commit, of any
// bucket, makes every entry stale; the next pull of each refills it. Under
// pushes the cache mostly misses and costs one map lookup; under pulls,
// the common load of a registry, it mostly hits.
type pullCache struct {
	mu      sync.RWMutex
	entries map[string]pullEntry // repo \x00 tag or digest → manifest
	bytes   int                  // sum of the entries' body sizes
}

type pullEntry struct {
	txid int
	m    StoredManifest
}

// The cache is small: a pull load asks for few manifests over and over.
const (
	pullCacheEntries = 1024
	pullCacheBytes   = 4 << 20
)

// pullKey appends the cache key of (repo, ref) to b.
func pullKey(b []byte, repo string, ref Reference) []byte {
	b = append(b, repo...)
	b = append(b, 0)
	if ref.Tag != "" {
		return append(b, ref.Tag...)
	}
	return append(b, ref.Digest...)
}

// get returns the entry of k if it was filled at txid.
func (c *pullCache) get(k []byte, txid int) (StoredManifest, bool) {
	c.mu.RLock()
	e, ok := c.entries[string(k)]
	c.mu.RUnlock()
	if !ok || e.txid != txid {
		return StoredManifest{}, false
	}
	return e.m, true
}

// put fills the entry of k with m, read at txid. When the cache is full it
// drops the entries read before txid, then, if still full, all of them.
func (c *pullCache) put(k []byte, txid int, m StoredManifest) {
	if len(m.Body) > pullCacheBytes/16 {
		return // a large index: not worth the memory
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]pullEntry)
	}
	if old, ok := c.entries[string(k)]; ok {
		if old.txid > txid {
			return // a newer read got here first
		}
		c.bytes -= len(old.m.Body)
		delete(c.entries, string(k))
	}
	if len(c.entries) >= pullCacheEntries || c.bytes+len(m.Body) > pullCacheBytes {
		for ek, e := range c.entries {
			if e.txid < txid {
				c.bytes -= len(e.m.Body)
				delete(c.entries, ek)
			}
		}
		if len(c.entries) >= pullCacheEntries || c.bytes+len(m.Body) > pullCacheBytes {
			clear(c.entries)
			c.bytes = 0
		}
	}
	c.entries[string(k)] = pullEntry{txid: txid, m: m}
	c.bytes += len(m.Body)
}

// pulledManifestCached is PulledManifest's read in tx, through the cache.
func (s *Store) pulledManifestCached(tx *bolt.Tx, repo string, ref Reference) (StoredManifest, error) {
	var kb [320]byte // repository names are at most 255 bytes; a longer key spills to the heap
	k := pullKey(kb[:0], repo, ref)
	if m, ok := s.pullCache.get(k, tx.ID()); ok {
		return m, nil
	}
	m, err := readManifest(tx, repo, ref, pulledManifest)
	if err != nil {
		return m, err
	}
	s.pullCache.put(k, tx.ID(), m)
	return m, nil
}
