package auth

import (
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
// Entries are keyed by the whole raw token and the service, and live no
// longer than the token's own expiry; a token not in the cache goes through
// the full verification.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[verifiedKey]verifiedToken
}

type verifiedKey struct{ raw, service string }

type verifiedToken struct {
	account string
	access  []Access
	epoch   uint64
	expires time.Time
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{entries: make(map[verifiedKey]verifiedToken)}
}

func (c *verifiedCache) get(raw, service string, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := verifiedKey{raw, service}
	v, ok := c.entries[k]
	if ok && !now.Before(v.expires) {
		delete(c.entries, k)
		return verifiedToken{}, false
	}
	return v, ok
}

func (c *verifiedCache) add(raw, service string, v verifiedToken, now time.Time) {
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
	// Clone: the caller's strings may alias a request buffer that the next
	// request on the connection overwrites.
	c.entries[verifiedKey{strings.Clone(raw), strings.Clone(service)}] = v
}
