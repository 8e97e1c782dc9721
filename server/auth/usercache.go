package auth

import (
	"sync"

	"github.com/berth-registry/berth/store"
)

// userCacheCapacity bounds the user records kept in memory; a registry has
// few users, so reaching it only happens under a flood of names.
const userCacheCapacity = 4096

// userCache keeps user records read from the store, each with the store's
// AuthGeneration at the time it was read. A record is used only while the
// generation is unchanged, so a deleted user or a new password is seen by
// the next request, and a Basic-auth pull costs no meta.db read.
type userCache struct {
	mu    sync.RWMutex // read on every request, written when a record changes
	users map[string]cachedUser
}

type cachedUser struct {
	user store.User
	gen  uint64
}

func newUserCache() *userCache { return &userCache{users: make(map[string]cachedUser)} }

// user returns the record of name, from memory when it is current.
func (c *userCache) user(st *store.Store, name string) (store.User, error) {
	gen := st.AuthGeneration()
	c.mu.RLock()
	cu, ok := c.users[name]
	c.mu.RUnlock()
	if ok && cu.gen == gen {
		return cu.user, nil
	}
	u, err := st.User(name)
	if err != nil {
		return u, err
	}
	c.mu.Lock()
	if len(c.users) >= userCacheCapacity {
		clear(c.users)
	}
	// Keyed by the record's own name: name may alias a request buffer.
	c.users[u.Name] = cachedUser{user: u, gen: gen}
	c.mu.Unlock()
	return u, nil
}
