package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testService = "berth-test"

// testClock is a settable clock for signers and services.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time          { return c.t }
func (c *testClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestSigner(t *testing.T) (*Signer, *testClock) {
	t.Helper()
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k, "berth")
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now()}
	s.now = clock.Now
	return s, clock
}

func TestSigner_IssueVerify(t *testing.T) {
	s, clock := newTestSigner(t)
	access := []Access{{Type: TypeRepository, Name: "alice/app", Actions: []string{"pull", "push"}}}
	tok, err := s.Issue("alice", testService, access, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 5*time.Minute || tok.IssuedAt.IsZero() {
		t.Fatalf("token metadata = %+v", tok)
	}
	account, got, err := s.Verify(tok.Raw, testService)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if account != "alice" || !reflect.DeepEqual(got, access) {
		t.Fatalf("Verify = %q, %+v", account, got)
	}

	header, payload := decodeSegments(t, tok.Raw)
	if header["alg"] != "ES256" || header["kid"] != s.kid || header["typ"] != "JWT" {
		t.Fatalf("header = %v", header)
	}
	for _, claim := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
		if _, ok := payload[claim]; !ok {
			t.Fatalf("payload lacks %q: %v", claim, payload)
		}
	}

	clock.Advance(5*time.Minute - time.Second)
	if _, _, err := s.Verify(tok.Raw, testService); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	clock.Advance(time.Second)
	if _, _, err := s.Verify(tok.Raw, testService); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("at expiry: %v, want ErrTokenInvalid", err)
	}
}

func TestSigner_AnonymousToken(t *testing.T) {
	s, _ := newTestSigner(t)
	tok, err := s.Issue("", testService, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, payload := decodeSegments(t, tok.Raw)
	if _, ok := payload["sub"]; ok {
		t.Fatalf("anonymous token has a subject: %v", payload)
	}
	if a, ok := payload["access"].([]any); !ok || len(a) != 0 {
		t.Fatalf(`access claim = %#v, want []`, payload["access"])
	}
	account, access, err := s.Verify(tok.Raw, testService)
	if err != nil || account != "" || len(access) != 0 {
		t.Fatalf("Verify = %q, %v, %v", account, access, err)
	}
}

// forgery builds a token the way an attacker could.
type forgery struct {
	method jwt.SigningMethod
	key    any
	header map[string]any
	claims func(c *claims)
}

func TestSigner_VerifyRefusesForgeries(t *testing.T) {
	s, clock := newTestSigner(t)
	now := clock.Now().Truncate(time.Second)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	spkiPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})

	// A jku server records whether verification ever fetched it.
	var fetched atomic.Int32
	jkuServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwkOf(&attacker.PublicKey, s.kid)}})
	}))
	defer jkuServer.Close()

	ours := map[string]any{"kid": s.kid}
	tests := []struct {
		name string
		f    forgery
	}{
		{"alg none", forgery{method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType, header: ours}},
		{"HS256 keyed with our public key DER", forgery{method: jwt.SigningMethodHS256, key: spki, header: ours}},
		{"HS256 keyed with our public key PEM", forgery{method: jwt.SigningMethodHS256, key: spkiPEM, header: ours}},
		{"HS256 keyed with our kid", forgery{method: jwt.SigningMethodHS256, key: []byte(s.kid), header: ours}},
		{"RS256 attacker key", forgery{method: jwt.SigningMethodRS256, key: rsaKey, header: ours}},
		{"ES384 header on an ES256 signature by our key", forgery{method: jwt.SigningMethodES256, key: s.key,
			header: map[string]any{"kid": s.kid, "alg": "ES384"}}},
		{"HS256 header on an ES256 signature by our key", forgery{method: jwt.SigningMethodES256, key: s.key,
			header: map[string]any{"kid": s.kid, "alg": "HS256"}}},
		{"foreign ES256 key with our kid", forgery{method: jwt.SigningMethodES256, key: attacker, header: ours}},
		{"jwk header with attacker key", forgery{method: jwt.SigningMethodES256, key: attacker,
			header: map[string]any{"kid": s.kid, "jwk": jwkOf(&attacker.PublicKey, s.kid)}}},
		{"jwk header without kid", forgery{method: jwt.SigningMethodES256, key: attacker,
			header: map[string]any{"jwk": jwkOf(&attacker.PublicKey, "")}}},
		{"x5c header with attacker certificate", forgery{method: jwt.SigningMethodES256, key: attacker,
			header: map[string]any{"kid": s.kid, "x5c": []string{base64.StdEncoding.EncodeToString(selfSigned(t, attacker))}}}},
		{"jku header pointing at attacker keys", forgery{method: jwt.SigningMethodES256, key: attacker,
			header: map[string]any{"kid": s.kid, "jku": jkuServer.URL}}},
		{"our key without kid", forgery{method: jwt.SigningMethodES256, key: s.key}},
		{"our key with another kid", forgery{method: jwt.SigningMethodES256, key: s.key, header: map[string]any{"kid": "AAAA:BBBB"}}},
		{"wrong aud", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.Audience = jwt.ClaimStrings{"other-registry"} }}},
		{"no aud", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.Audience = nil }}},
		{"wrong iss", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.Issuer = "evil" }}},
		{"no iss", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.Issuer = "" }}},
		{"expired", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }}},
		{"no exp", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.ExpiresAt = nil }}},
		{"nbf in the future", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) }}},
		{"iat in the future", forgery{method: jwt.SigningMethodES256, key: s.key, header: ours,
			claims: func(c *claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := forge(t, tc.f, now)
			if account, access, err := s.Verify(raw, testService); !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("Verify(%s) = %q, %v, %v; want ErrTokenInvalid", raw, account, access, err)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("verification fetched the jku URL %d times", n)
	}

	// The same construction with our key and our kid verifies, so the cases
	// above fail for the reason they name.
	if _, _, err := s.Verify(forge(t, forgery{method: jwt.SigningMethodES256, key: s.key, header: ours}, now), testService); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
}

func TestSigner_VerifyRefusesDamage(t *testing.T) {
	s, _ := newTestSigner(t)
	tok, err := s.Issue("alice", testService, []Access{{Type: TypeRepository, Name: "alice/app", Actions: []string{"pull"}}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.Raw, ".")
	_, payload := decodeSegments(t, tok.Raw)
	payload["access"] = []any{map[string]any{"type": "repository", "name": "alice/app", "actions": []string{"pull", "push"}}}
	widened, _ := json.Marshal(payload)
	payload["sub"] = "root"
	otherSubject, _ := json.Marshal(payload)

	tests := []struct {
		name, raw string
	}{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"truncated by one byte", tok.Raw[:len(tok.Raw)-1]},
		{"signature cut in half", tok.Raw[:len(tok.Raw)-len(parts[2])/2]},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"two segments", parts[0] + "." + parts[1]},
		{"extra segment", tok.Raw + "." + parts[2]},
		{"tampered access", parts[0] + "." + b64(widened) + "." + parts[2]},
		{"tampered subject", parts[0] + "." + b64(otherSubject) + "." + parts[2]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mustIssue(t, s), ".")[2]},
		{"padded payload", parts[0] + "." + parts[1] + "=." + parts[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if account, access, err := s.Verify(tc.raw, testService); !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("Verify(%q) = %q, %v, %v; want ErrTokenInvalid", tc.raw, account, access, err)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	access := []Access{
		{Type: TypeRepository, Name: "alice/app", Actions: []string{"pull", "push"}},
		{Type: TypeRepository, Name: "shared/x", Actions: []string{"*"}},
		{Type: TypeRegistry, Name: CatalogName, Actions: []string{"*"}},
	}
	tests := []struct {
		name, typ, repo, action string
		want                    bool
	}{
		{"listed action", TypeRepository, "alice/app", "push", true},
		{"unlisted action", TypeRepository, "alice/app", "delete", false},
		{"star covers any action", TypeRepository, "shared/x", "delete", true},
		{"other name", TypeRepository, "alice/app2", "pull", false},
		{"other type", TypeRegistry, "alice/app", "pull", false},
		{"catalog", TypeRegistry, CatalogName, "*", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Covers(access, tc.typ, tc.repo, tc.action); got != tc.want {
				t.Fatalf("Covers(%s:%s:%s) = %v, want %v", tc.typ, tc.repo, tc.action, got, tc.want)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.ID) != 59 || strings.Count(k.ID, ":") != 11 {
		t.Fatalf("kid %q is not 12 groups of 4", k.ID)
	}
	s, err := NewSigner(k, "berth")
	if err != nil || s.kid != k.ID {
		t.Fatalf("NewSigner: kid %q, err %v", s.kid, err)
	}
	damaged := k
	damaged.ID = "AAAA:" + k.ID[5:]
	if _, err := NewSigner(damaged, "berth"); err == nil {
		t.Fatal("NewSigner accepted a key whose id does not match")
	}
}

func mustIssue(t *testing.T, s *Signer) string {
	t.Helper()
	tok, err := s.Issue("bob", testService, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Raw
}

// forge signs valid-looking claims, altered by f.claims, with f's method
// and key, and f.header set over the header (an "alg" there lies about the
// method).
func forge(t *testing.T, f forgery, now time.Time) string {
	t.Helper()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "berth",
			Subject:   "alice",
			Audience:  jwt.ClaimStrings{testService},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "forged",
		},
		Access: []Access{{Type: TypeRepository, Name: "alice/app", Actions: []string{"*"}}},
	}
	if f.claims != nil {
		f.claims(&c)
	}
	tok := jwt.NewWithClaims(f.method, c)
	for k, v := range f.header {
		tok.Header[k] = v
	}
	signing, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.method.Sign(signing, f.key)
	if err != nil {
		t.Fatalf("forge with %s: %v", f.method.Alg(), err)
	}
	return signing + "." + b64(sig)
}

func decodeSegments(t *testing.T, raw string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkOf(pub *ecdsa.PublicKey, kid string) map[string]any {
	raw, _ := pub.Bytes() // 0x04 || X || Y
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": kid,
		"x": b64(raw[1:33]), "y": b64(raw[33:]),
	}
}

func selfSigned(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
