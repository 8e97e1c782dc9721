package auth

import (
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// verifiedCacheSize bounds the cache of verified tokens. A client reuses
// one token for every request of a pull, so a small cache catches nearly
// all of them.
const verifiedCacheSize = 4096

// verifiedCache remembers tokens whose signature and claims were checked,
// so a pull pays ECDSA verification once per token, not once per request.
// Entries live no longer than the token's own expiry; a token not in the
// cache goes through the full verification.
//
// The map is keyed by the last 16 bytes of the raw token, not the whole of
// it: a request's lookup then hashes 16 bytes instead of a ~600-byte token.
// Those bytes are the end of the ES256 signature, which is random per token
// (a fresh nonce per signature, and a random jti besides), so two live
// tokens share a key only by a 2^-96 chance or by a forger's choice. Either
// way the entry also holds the whole token and its service, and a hit
// counts only when both are equal byte for byte (a memcmp, cheaper than a
// hash): a token that merely shares the key is verified in full and then
// replaces the entry.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[verifiedKey]verifiedToken
}

type verifiedKey [2]uint64

// verifiedKeyOf is the map key of raw: its last 16 bytes, or the whole of
// a shorter token, zero padded in front (such a token never verifies; the
// padding only keeps the lookup total).
func verifiedKeyOf(raw string) verifiedKey {
	var b [16]byte
	if len(raw) >= len(b) {
		copy(b[:], raw[len(raw)-len(b):])
	} else {
		copy(b[len(b)-len(raw):], raw)
	}
	return verifiedKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

type verifiedToken struct {
	raw, service string // what the entry was verified for, compared on every hit
	account      string
	access       []Access
	epoch        uint64
	expires      time.Time
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{entries: make(map[verifiedKey]verifiedToken)}
}

func (c *verifiedCache) get(raw, service string, now time.Time) (verifiedToken, bool) {
	k := verifiedKeyOf(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[k]
	if !ok || v.raw != raw || v.service != service {
		return verifiedToken{}, false
	}
	if !now.Before(v.expires) {
		delete(c.entries, k)
		return verifiedToken{}, false
	}
	return v, true
}

func (c *verifiedCache) add(raw, service string, v verifiedToken, now time.Time) {
	k := verifiedKeyOf(raw)
	// Clone: the caller's strings may alias a request buffer that the next
	// request on the connection overwrites.
	v.raw, v.service = strings.Clone(raw), strings.Clone(service)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= verifiedCacheSize {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		// Still full of live tokens: drop an arbitrary half rather than
		// grow; evicted tokens are simply verified again.
		for k := range c.entries {
			if len(c.entries) < verifiedCacheSize/2 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[k] = v
}
