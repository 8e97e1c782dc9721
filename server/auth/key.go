package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// GenerateSigningKey creates a new ECDSA P-256 key in the form the store
// keeps: PKCS #8 DER with its KeyID.
func GenerateSigningKey() (store.SigningKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	id, err := publicKeyID(&key.PublicKey)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{ID: id, PrivateDER: der}, nil
}

// NewSigner returns a Signer for a stored key, with issuer as the "iss" of
// its tokens. It refuses keys that are not ECDSA P-256 or whose ID is not
// their KeyID (a damaged record).
func NewSigner(k store.SigningKey, issuer string) (*Signer, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateDER)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: not an ECDSA P-256 key", k.ID)
	}
	id, err := publicKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if id != k.ID {
		return nil, fmt.Errorf("signing key %s: stored id does not match the key (%s)", k.ID, id)
	}
	return &Signer{key: key, kid: id, issuer: issuer, now: time.Now, verified: newVerifiedCache()}, nil
}

// loadOrCreateSigner returns a Signer for the store's key, creating and
// storing one on first start. PutSigningKeyIfAbsent makes concurrent first
// starts agree on one key.
func loadOrCreateSigner(st *store.Store, issuer string) (*Signer, error) {
	k, ok, err := st.SigningKey()
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if !ok {
		fresh, err := GenerateSigningKey()
		if err != nil {
			return nil, err
		}
		if k, err = st.PutSigningKeyIfAbsent(fresh); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
	}
	return NewSigner(k, issuer)
}

func publicKeyID(pub *ecdsa.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return KeyID(spki), nil
}

// KeyID returns a public key's id in the libtrust form registry:2 uses: the
// SHA-256 of its DER SubjectPublicKeyInfo cut to 240 bits, in base32,
// grouped by four characters with ':'. Any stable id would do, as berth
// verifies only its own tokens; this one is familiar from registry logs.
func KeyID(spkiDER []byte) string {
	sum := sha256.Sum256(spkiDER)
	enc := base32.StdEncoding.EncodeToString(sum[:30]) // 48 characters, no padding
	groups := make([]string, 0, len(enc)/4)
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:i+4])
	}
	return strings.Join(groups, ":")
}
