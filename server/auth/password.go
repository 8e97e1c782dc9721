package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/store"
)

// PasswordCost is the bcrypt cost of the hashes berth makes, and of the
// dummy hash unknown users are checked against.
const PasswordCost = bcrypt.DefaultCost

// MaxPasswordCost is the highest bcrypt cost berth accepts in a hash it is
// given (imports, and the hashes the CLI sends). Each step doubles the CPU
// a sign-in costs: at 14 one check takes about a second of a core, at 17
// eight, and a wrong password costs the same, so a higher cost would turn
// every guess into a denial of service. Such hashes are refused, not
// rehashed, since berth never sees the password behind them until the user
// signs in.
const MaxPasswordCost = 14

// ErrPasswordTooLong is returned by HashPassword for a password bcrypt
// would silently cut at 72 bytes.
var ErrPasswordTooLong = bcrypt.ErrPasswordTooLong

// HashPassword returns the bcrypt hash of password at PasswordCost, for
// store.User.PasswordHash. It returns ErrPasswordTooLong over 72 bytes.
func HashPassword(password string) ([]byte, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return nil, ErrPasswordTooLong
	}
	return h, err
}

// Limits of the cache of successful password checks.
const (
	credentialCacheTTL      = time.Minute
	credentialCacheCapacity = 4096
)

// credentialCache remembers successful password checks for a short time,
// so a client sending Basic auth on every /v2/ request pays bcrypt once a
// minute instead of on every request. An entry is a keyed hash of the user
// name, epoch, stored hash and password, under a random key of this process:
// the cache holds no password, a password change (new epoch and hash)
// misses it, and the keys mean nothing outside this process.
type credentialCache struct {
	mu      sync.Mutex
	secret  [32]byte
	entries map[[32]byte]time.Time // entry → expiry
}

func newCredentialCache() (*credentialCache, error) {
	c := &credentialCache{entries: make(map[[32]byte]time.Time)}
	if _, err := rand.Read(c.secret[:]); err != nil {
		return nil, fmt.Errorf("credential cache key: %w", err)
	}
	return c, nil
}

// entry derives the cache entry of one check. Fields are length-prefixed so
// no two different inputs give the same message.
func (c *credentialCache) entry(u store.User, password string) [32]byte {
	mac := hmac.New(sha256.New, c.secret[:])
	var buf []byte
	for _, field := range [][]byte{[]byte(u.Name), u.PasswordHash, []byte(password)} {
		buf = binary.AppendUvarint(buf, uint64(len(field)))
		buf = append(buf, field...)
	}
	buf = binary.BigEndian.AppendUint64(buf, u.Epoch)
	mac.Write(buf)
	var out [32]byte
	mac.Sum(out[:0])
	return out
}

func (c *credentialCache) contains(e [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	expiry, ok := c.entries[e]
	if ok && !now.Before(expiry) {
		delete(c.entries, e)
		return false
	}
	return ok
}

// add remembers e until now+TTL. When full it first drops expired entries,
// then arbitrary ones: losing an entry costs one bcrypt, nothing else.
func (c *credentialCache) add(e [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= credentialCacheCapacity {
		for k, expiry := range c.entries {
			if !now.Before(expiry) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < credentialCacheCapacity {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[e] = now.Add(credentialCacheTTL)
}
