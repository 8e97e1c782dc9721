package store

import (
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// Digest is a validated content identifier such as "sha256:<64 hex>".
// The zero value is not a valid digest.
type Digest string

// Digest algorithms berth stores. The OCI grammar admits others; they are
// refused with ErrDigestUnsupported.
const (
	SHA256 = "sha256"
	SHA512 = "sha512"
)

var hexLen = map[string]int{SHA256: 64, SHA512: 128}

// ParseDigest validates s against the OCI digest grammar
// (algorithm ":" encoded) and accepts only sha256 and sha512 with lower-case
// hex of the right length. It returns ErrDigestInvalid for malformed input and
// ErrDigestUnsupported for a well-formed digest of another algorithm.
func ParseDigest(s string) (Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || !validAlgorithm(alg) || !validEncoded(enc) {
		return "", fmt.Errorf("%w: %q", ErrDigestInvalid, s)
	}
	n, known := hexLen[alg]
	if !known {
		return "", fmt.Errorf("%w: %q", ErrDigestUnsupported, alg)
	}
	if len(enc) != n || !isLowerHex(enc) {
		return "", fmt.Errorf("%w: %q", ErrDigestInvalid, s)
	}
	return Digest(s), nil
}

// validAlgorithm follows the spec: [a-z0-9]+([+._-][a-z0-9]+)*
func validAlgorithm(s string) bool {
	if s == "" {
		return false
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// validEncoded follows the spec: [a-zA-Z0-9=_-]+
func validEncoded(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Algorithm returns the part before the colon, "sha256" or "sha512".
func (d Digest) Algorithm() string {
	alg, _, _ := strings.Cut(string(d), ":")
	return alg
}

// Hex returns the encoded part after the colon.
func (d Digest) Hex() string {
	_, enc, _ := strings.Cut(string(d), ":")
	return enc
}

func (d Digest) String() string { return string(d) }

// NewHash returns a fresh hash for algorithm alg, or nil if berth does not
// support it.
func NewHash(alg string) hash.Hash {
	switch alg {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	return nil
}

// DigestOf returns the digest of b with algorithm alg (sha256 when empty).
func DigestOf(alg string, b []byte) Digest {
	if alg == "" {
		alg = SHA256
	}
	h := NewHash(alg)
	h.Write(b)
	return Digest(fmt.Sprintf("%s:%x", alg, h.Sum(nil)))
}

// digestFromHash formats the sum of h as a digest of algorithm alg.
func digestFromHash(alg string, h hash.Hash) Digest {
	return Digest(fmt.Sprintf("%s:%x", alg, h.Sum(nil)))
}
