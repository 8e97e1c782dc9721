package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/berth-registry/berth/store"
)

// IssueRefresh creates a refresh token for u and service (the answer to
// offline_token=true or access_type=offline): 32 random bytes in base64url.
// The store keeps only its SHA-256, bound to the user, the service and the
// user's epoch, so it dies when the user is deleted or changes password.
func (s *Service) IssueRefresh(u store.User, service string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	err := s.store.PutRefreshToken(sha256.Sum256([]byte(token)), store.RefreshToken{
		User:    u.Name,
		Service: service,
		Epoch:   u.Epoch,
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// RedeemRefresh returns the user a refresh token was issued to, for a new
// access token (grant_type=refresh_token). It returns ErrBadCredentials when
// the token is unknown, was issued for another service, or died with its
// user's deletion or password change.
func (s *Service) RedeemRefresh(token, service string) (store.User, error) {
	rt, err := s.store.RefreshToken(sha256.Sum256([]byte(token)))
	if errors.Is(err, store.ErrTokenUnknown) {
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	if rt.Service != service {
		return store.User{}, ErrBadCredentials
	}
	u, err := s.store.User(rt.User)
	if errors.Is(err, store.ErrUserUnknown) || (err == nil && u.Epoch != rt.Epoch) {
		// Deleted or changed between the two reads.
		return store.User{}, ErrBadCredentials
	}
	return u, err
}
