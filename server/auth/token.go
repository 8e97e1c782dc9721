package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrTokenInvalid is returned by Verify for every token it refuses; the
// wrapped error says why, for the log only.
var ErrTokenInvalid = errors.New("invalid token")

// Access is one entry of a token's "access" claim: the actions granted on
// one resource, as in the distribution project's JWT specification.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Covers reports whether the access list grants action on the resource
// (resourceType, name): an entry of that type and name listing the action
// or *. This is the check the /v2/ middleware makes on a verified token.
func Covers(access []Access, resourceType, name, action string) bool {
	for _, a := range access {
		if a.Type == resourceType && a.Name == name &&
			(slices.Contains(a.Actions, action) || slices.Contains(a.Actions, ActionAll)) {
			return true
		}
	}
	return false
}

// Token is a signed access token with what the token endpoint reports
// about it.
type Token struct {
	Raw       string // the JWT, for "token" and "access_token"
	IssuedAt  time.Time
	ExpiresIn time.Duration
}

// claims are the JWT claims of an access token.
type claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
	// Epoch is the subject's store.User.Epoch at issue, berth's own claim:
	// the token is refused once the user's epoch moves on (see
	// Service.VerifyToken). Absent for anonymous tokens.
	Epoch uint64 `json:"berth_epoch,omitempty"`
}

// Signer issues and verifies ES256 access tokens with one key. It is safe
// for concurrent use.
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	issuer string
	now    func() time.Time

	verified *verifiedCache
}

// Issue signs a token for account ("" for anonymous, which leaves "sub"
// out) with audience service, the given access and lifetime ttl. The token
// carries kid, iss, sub, aud, exp, nbf, iat, a random jti and access.
func (s *Signer) Issue(account, service string, access []Access, ttl time.Duration) (Token, error) {
	return s.issue(account, 0, service, access, ttl)
}

// issue is Issue with the subject's epoch.
func (s *Signer) issue(account string, epoch uint64, service string, access []Access, ttl time.Duration) (Token, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return Token{}, err
	}
	if access == nil {
		access = []Access{} // "access": [] rather than null
	}
	now := s.now().Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   account,
			Audience:  jwt.ClaimStrings{service},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Access: access,
		Epoch:  epoch,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = s.kid
	raw, err := t.SignedString(s.key)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{Raw: raw, IssuedAt: now, ExpiresIn: ttl}, nil
}

// Verify checks a token this signer issued for service and returns its
// subject ("" for anonymous) and access. Every failure is a refusal wrapping
// ErrTokenInvalid: a malformed token, an algorithm other than ES256 (none
// and HMAC included), a kid other than ours, a bad signature, a wrong iss
// or aud, a missing or past exp, a future nbf or iat. The jwk, x5c and jku
// headers are never read: the key is ours alone.
func (s *Signer) Verify(raw, service string) (account string, access []Access, err error) {
	v, err := s.verify(raw, service)
	return v.account, v.access, err
}

// verify is Verify returning every claim Service needs.
func (s *Signer) verify(raw, service string) (verifiedToken, error) {
	now := s.now()
	if v, ok := s.verified.get(raw, service, now); ok {
		return v, nil
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(s.issuer),
		jwt.WithAudience(service),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(s.now),
	)
	var c claims
	if _, err := p.ParseWithClaims(raw, &c, s.keyFor); err != nil {
		return verifiedToken{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	v := verifiedToken{account: c.Subject, access: c.Access, epoch: c.Epoch, expires: c.ExpiresAt.Time}
	s.verified.add(raw, service, v, now)
	return v, nil
}

// keyFor returns our public key for a token whose kid is ours, and refuses
// any other: keys named in the token (jwk, x5c, jku) are never used.
func (s *Signer) keyFor(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodES256 {
		return nil, fmt.Errorf("algorithm %v not allowed", t.Header["alg"])
	}
	if kid, _ := t.Header["kid"].(string); kid != s.kid {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	return &s.key.PublicKey, nil
}
