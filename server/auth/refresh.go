package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berth-registry/berth/store"
)

// maxClientLen bounds the client name kept with a refresh token.
const maxClientLen = 64

// IssueRefresh creates a refresh token for u and service (the answer to
// offline_token=true or access_type=offline): 32 random bytes in base64url.
// client is what the client calls itself (client_id), kept for `berth user
// sessions`; it is cut to 64 bytes of printable text. The store keeps only
// the token's SHA-256, bound to the user, the service and the user's epoch,
// so it dies when the user is deleted or changes password, and it expires
// after Options.RefreshTTL. Beyond Options.RefreshPerUser tokens, the
// user's oldest are revoked.
func (s *Service) IssueRefresh(u store.User, service, client string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	_, err := s.store.PutRefreshToken(sha256.Sum256([]byte(token)), store.RefreshToken{
		User:    u.Name,
		Service: service,
		Epoch:   u.Epoch,
		Created: now,
		Expires: now.Add(s.opts.RefreshTTL),
		Client:  printable(client, maxClientLen),
	}, s.opts.RefreshPerUser)
	if err != nil {
		return "", err
	}
	return token, nil
}

// RedeemRefresh returns the user a refresh token was issued to, for a new
// access token (grant_type=refresh_token), and notes the use. It returns
// ErrBadCredentials when the token is unknown, revoked, expired (and then
// deletes it), was issued for another service, or died with its user's
// deletion or password change.
func (s *Service) RedeemRefresh(token, service string) (store.User, error) {
	rt, err := s.store.UseRefreshToken(sha256.Sum256([]byte(token)), s.now())
	if errors.Is(err, store.ErrTokenUnknown) {
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	if rt.Service != service {
		return store.User{}, ErrBadCredentials
	}
	u, err := s.users.user(s.store, rt.User)
	if errors.Is(err, store.ErrUserUnknown) || (err == nil && u.Epoch != rt.Epoch) {
		// Deleted or changed between the two reads.
		return store.User{}, ErrBadCredentials
	}
	return u, err
}

// ExpireRefreshTokens deletes the refresh tokens that have expired (or were
// left by a deleted user or an old password) and returns how many.
func (s *Service) ExpireRefreshTokens() (int, error) {
	return s.store.DeleteExpiredRefreshTokens(s.now())
}

// RunRefreshCleanup calls ExpireRefreshTokens now and then every interval
// until ctx ends, logging what it removed. Expired tokens are refused
// anyway; this keeps those that are never presented again from piling up.
func (s *Service) RunRefreshCleanup(ctx context.Context, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		switch n, err := s.ExpireRefreshTokens(); {
		case err != nil:
			log.Error("refresh token cleanup", "err", err)
		case n > 0:
			log.Info("refresh token cleanup", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// printable returns s without control characters or invalid UTF-8, cut to
// at most n bytes: client names come from the network and end up in a
// table on a terminal.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
