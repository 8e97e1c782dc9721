package integration

// Token authentication as clients meet it: go-containerregistry and skopeo
// find the token endpoint from the challenge and sign in with a user created
// through the running server's control socket; the challenge's realm; the
// sign-in throttle; and the forged tokens an attacker's client sends. The
// helpers here are shared with auth_test.go.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// startAuthServer starts berth with --auth token and returns it with the
// password of the admin its first start created.
func startAuthServer(t testing.TB, data string, args ...string) (*server, string) {
	t.Helper()
	s := startRegistry(t, data, append([]string{"--auth", "token"}, args...)...)
	raw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatalf("the first start wrote no initial admin password: %v", err)
	}
	return s, strings.TrimSpace(string(raw))
}

// berth runs a maintenance command on s's data dir, with stdin, and returns
// its stdout; a failure fails the test. While s runs, the command can only
// reach meta.db through the control socket (the server holds its lock).
func (s *server) berth(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runBerth(t, t.Context(), strings.NewReader(stdin), append([]string{"--data", s.Data}, args...)...)
	if err != nil {
		t.Fatalf("berth %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// addUser creates user name with password through `berth user add`.
func (s *server) addUser(t testing.TB, name, password string) {
	t.Helper()
	s.berth(t, password+"\n", "user", "add", name, "--password-stdin")
}

// basicAuth is the Authorization header value for user and password.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// withAuth returns go-containerregistry options that sign in as user.
func withAuth(t testing.TB, user, password string) []remote.Option {
	return remoteOptions(t, remote.WithAuth(&authn.Basic{Username: user, Password: password}))
}

// wantStatusCode checks that a go-containerregistry call failed with an
// HTTP error of status.
func wantStatusCode(t testing.TB, what string, err error, status int) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Errorf("%s: error %v, want an HTTP %d", what, err, status)
	}
}

func TestAuth_GGCRTokenFlow(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := s.ref(t, "alice/img:v1")

	if err := remote.Write(ref, img, withAuth(t, "alice", "alice-secret")...); err != nil {
		t.Fatalf("push as alice: %v", err)
	}
	got, err := remote.Image(ref, withAuth(t, "alice", "alice-secret")...)
	if err != nil {
		t.Fatalf("pull as alice: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate pulled image: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, want %s", d, want)
	}
	// The client found the token endpoint from the challenge and used it;
	// a client sending Basic auth to every request would not.
	if lines := s.logLines("path=/token"); len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "status=200") {
		t.Errorf("no successful request to /token in the server log: %q", lines)
	}
	if lines := s.logLines("status=401"); len(lines) == 0 {
		t.Errorf("no 401 challenge in the server log: the client cannot have discovered the realm")
	}

	_, err = remote.Image(ref, withAuth(t, "alice", "wrong")...)
	wantStatusCode(t, "pull with a wrong password", err, http.StatusUnauthorized)
	err = remote.Write(s.ref(t, "alice/other:v1"), img, withAuth(t, "alice", "wrong")...)
	wantStatusCode(t, "push with a wrong password", err, http.StatusUnauthorized)
	_, err = remote.Image(ref, remoteOptions(t)...)
	wantStatusCode(t, "anonymous pull without --anonymous-pull", err, http.StatusUnauthorized)
}

// skopeoRun runs skopeo with stdin and an environment of its own, so no
// credentials of the machine's user take part, and returns its combined
// output and error.
func skopeoRun(t testing.TB, home, stdin string, args ...string) (string, error) {
	t.Helper()
	skopeo := fixtures.RequireTool(t, "skopeo")
	cmd := exec.CommandContext(t.Context(), skopeo, append([]string{"--insecure-policy"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+home, "XDG_CONFIG_HOME="+home, "REGISTRY_AUTH_FILE=")
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestAuth_Skopeo(t *testing.T) {
	fixtures.RequireTool(t, "skopeo")
	s, adminPassword := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-secret")
	home := t.TempDir()
	authfile := filepath.Join(home, "auth.json")
	src := fixtures.Path(fixtures.Multiarch)
	_, latest := fixtureDescriptor(t, fixtures.Multiarch, "latest")
	dest := "docker://" + s.Addr + "/alice/multi:latest"

	if out, err := skopeoRun(t, home, "alice-secret\n", "login", "--tls-verify=false", "--authfile", authfile,
		"-u", "alice", "--password-stdin", s.Addr); err != nil {
		t.Fatalf("skopeo login: %v\n%s", err, out)
	}
	if out, err := skopeoRun(t, home, "", "copy", "--all", "--authfile", authfile, "--dest-tls-verify=false",
		"oci:"+src+":latest", dest); err != nil {
		t.Fatalf("skopeo copy to berth: %v\n%s", err, out)
	}
	r := s.do(t, http.MethodGet, "/v2/alice/multi/manifests/latest", nil,
		"Accept", mediaTypeOCIIndex, "Authorization", basicAuth("admin", adminPassword))
	if got := sha256Digest(r.Body); r.Status != http.StatusOK || got != latest.Digest.String() {
		t.Fatalf("%s: berth holds alice/multi:latest as %s, want %s", r, got, latest.Digest)
	}
	back := filepath.Join(t.TempDir(), "back")
	if out, err := skopeoRun(t, home, "", "copy", "--all", "--authfile", authfile, "--src-tls-verify=false",
		dest, "oci:"+back+":latest"); err != nil {
		t.Fatalf("skopeo copy back: %v\n%s", err, out)
	}
	if _, got := layoutDescriptor(t, back, "latest"); got.Digest != latest.Digest {
		t.Errorf("copied back as %s, want %s", got.Digest, latest.Digest)
	}

	t.Run("without credentials", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty.json")
		if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := skopeoRun(t, home, "", "copy", "--all", "--authfile", empty, "--dest-tls-verify=false",
			"oci:"+src+":latest", "docker://"+s.Addr+"/alice/anon:latest")
		if err == nil {
			t.Errorf("push without credentials succeeded:\n%s", out)
		}
		r := s.do(t, http.MethodGet, "/v2/alice/anon/manifests/latest", nil, "Authorization", basicAuth("admin", adminPassword))
		wantError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
		out, err = skopeoRun(t, home, "", "copy", "--all", "--authfile", empty, "--src-tls-verify=false",
			dest, "oci:"+filepath.Join(t.TempDir(), "anon")+":latest")
		if err == nil {
			t.Errorf("pull without credentials succeeded:\n%s", out)
		}
	})
}

// TestAuth_Realm checks the challenge of /v2/: the realm on the host and
// scheme the client used, the service, and the scope the request needs.
// X-Forwarded-Proto and -Host count only from a trusted proxy: the test's
// own address, 127.0.0.1, is one by default and is not one with
// --trusted-proxy naming another network. ADDR in a realm stands for the
// server's address.
func TestAuth_Realm(t *testing.T) {
	viaProxy, _ := startAuthServer(t, "")
	direct, _ := startAuthServer(t, "", "--trusted-proxy", "192.0.2.0/24")
	const own = "http://ADDR/token"
	zeros := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		name    string
		method  string
		path    string
		headers []string // name, value pairs; "Host" sets the request's Host
		realm   string   // through a trusted proxy
		direct  string   // from anyone else, when not realm
		scope   string   // "" for none
	}{
		{"plain", "GET", "/v2/", nil, own, "", ""},
		{"Host", "GET", "/v2/", []string{"Host", "registry.example:5000"}, "http://registry.example:5000/token", "", ""},
		{"forwarded proto and host", "GET", "/v2/", []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "reg.example"},
			"https://reg.example/token", own, ""},
		{"forwarded proto only", "GET", "/v2/", []string{"X-Forwarded-Proto", "https"}, "https://ADDR/token", own, ""},
		{"forwarded host over Host", "GET", "/v2/", []string{"Host", "inner:5000", "X-Forwarded-Host", "outer.example:443"},
			"http://outer.example:443/token", "http://inner:5000/token", ""},
		{"quote in forwarded host ignored", "GET", "/v2/", []string{"X-Forwarded-Host", `evil.example",service="x`}, own, "", ""},
		{"two forwarded hosts ignored", "GET", "/v2/", []string{"X-Forwarded-Host", "a.example, b.example"}, own, "", ""},
		{"unknown forwarded proto ignored", "GET", "/v2/", []string{"X-Forwarded-Proto", "javascript"}, own, "", ""},
		{"quote in forwarded proto ignored", "GET", "/v2/", []string{"X-Forwarded-Proto", `https",error="x`}, own, "", ""},
		{"X-Url-Scheme ignored", "GET", "/v2/", []string{"X-Url-Scheme", "ftp"}, own, "", ""},
		{"pull", "GET", "/v2/some/repo/manifests/latest", nil, own, "", "repository:some/repo:pull"},
		{"head blob", "HEAD", "/v2/some/repo/blobs/" + zeros, nil, own, "", "repository:some/repo:pull"},
		{"push", "POST", "/v2/some/repo/blobs/uploads/", nil, own, "", "repository:some/repo:pull,push"},
		{"delete", "DELETE", "/v2/some/repo/manifests/" + zeros, nil, own, "", "repository:some/repo:delete"},
		{"catalog", "GET", "/v2/_catalog", nil, own, "", "registry:catalog:*"},
	}
	for _, srv := range []struct {
		name    string
		s       *server
		trusted bool
	}{{"trusted proxy", viaProxy, true}, {"untrusted", direct, false}} {
		for _, tc := range cases {
			t.Run(srv.name+"/"+tc.name, func(t *testing.T) {
				req := srv.s.request(t, tc.method, tc.path, nil)
				for i := 0; i+1 < len(tc.headers); i += 2 {
					if tc.headers[i] == "Host" {
						req.Host = tc.headers[i+1]
					} else {
						req.Header.Set(tc.headers[i], tc.headers[i+1])
					}
				}
				r := send(t, req)
				wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
				realm := tc.realm
				if !srv.trusted && tc.direct != "" {
					realm = tc.direct
				}
				want := `Bearer realm="` + strings.ReplaceAll(realm, "ADDR", srv.s.Addr) + `",service="berth"`
				if tc.scope != "" {
					want += `,scope="` + tc.scope + `"`
				}
				if got := r.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("%s with %q:\nWWW-Authenticate %s\nwant             %s", r, tc.headers, got, want)
				}
			})
		}
	}
}

// seedSigningKey stores a fresh token signing key in the empty data dir
// data, as berth's first start would, and returns it: with it the test
// signs tokens that differ from a genuine one in one field only.
func seedSigningKey(t testing.TB, data string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, err := auth.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if k, err = st.PutSigningKeyIfAbsent(k); err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(k.PrivateDER)
	if err != nil {
		t.Fatal(err)
	}
	return key.(*ecdsa.PrivateKey), k.ID
}

// signJWT signs claims with method and key, the header's alg and typ
// joined by header's entries.
func signJWT(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	maps.Copy(tok.Header, header)
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return raw
}

// TestAuth_ForgedTokens sends tokens berth did not issue, or issued
// otherwise, to a server whose signing key the test knows, and expects 401
// with the Bearer challenge for each; a token signed right is the control.
func TestAuth_ForgedTokens(t *testing.T) {
	data := t.TempDir()
	ours, kid := seedSigningKey(t, data)
	s, adminPassword := startAuthServer(t, data, "--service", "other", "--token-ttl", "2s")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "forge/app:latest"), img, withAuth(t, "admin", adminPassword)...); err != nil {
		t.Fatalf("push as admin: %v", err)
	}
	const path = "/v2/forge/app/manifests/latest"
	use := func(token string) reply { return s.do(t, http.MethodGet, path, nil, "Authorization", bearer(token)) }

	now := time.Now().Unix()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "other", "sub": "admin", "aud": "other", "exp": now + 300, "nbf": now - 10, "iat": now - 10,
			"jti": "forged", "access": []tokenAccess{{Type: "repository", Name: "forge/app", Actions: []string{"pull"}}},
			// The admin's epoch: the first user of a fresh data directory
			// gets 1. A token without it is refused as issued before a
			// password change.
			"berth_epoch": 1}
		if change != nil {
			change(c)
		}
		return c
	}
	ourHeader := map[string]any{"kid": kid}
	if r := use(signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(nil))); r.Status != http.StatusOK {
		t.Fatalf("%s: a token signed with the server's own key and right claims is refused, so the cases below prove nothing", r)
	}

	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&ours.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	foreignJWK := map[string]any{"kty": "EC", "crv": "P-256", "kid": kid,
		"x": base64.RawURLEncoding.EncodeToString(foreign.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": base64.RawURLEncoding.EncodeToString(foreign.PublicKey.Y.FillBytes(make([]byte, 32)))}
	anonymous, _ := wantToken(t, s.getToken(t, "", "", url.Values{"service": {"other"}}))
	parts := strings.Split(anonymous.Token, ".")
	// The payload of a token that would pass, under a genuine token's
	// header and signature.
	elevated, _ := json.Marshal(claims(nil))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(elevated) + "." + parts[2]

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"alg none", signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ourHeader, claims(nil))},
		{"HS256 keyed with the public key PEM", signJWT(t, jwt.SigningMethodHS256, publicPEM, ourHeader, claims(nil))},
		{"HS256 keyed with the public key DER", signJWT(t, jwt.SigningMethodHS256, spki, ourHeader, claims(nil))},
		{"foreign ES256 key with our kid", signJWT(t, jwt.SigningMethodES256, foreign, ourHeader, claims(nil))},
		{"foreign ES256 key in a jwk header", signJWT(t, jwt.SigningMethodES256, foreign, map[string]any{"jwk": foreignJWK}, claims(nil))},
		{"foreign ES256 key in a jwk header with our kid", signJWT(t, jwt.SigningMethodES256, foreign,
			map[string]any{"kid": kid, "jwk": foreignJWK}, claims(nil))},
		{"expired", signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(func(c jwt.MapClaims) { c["exp"] = now - 60 }))},
		{"no exp", signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"not yet valid", signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(func(c jwt.MapClaims) { c["nbf"] = now + 3600 }))},
		{"wrong aud", signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(func(c jwt.MapClaims) { c["aud"] = "berth" }))},
		{"wrong iss", signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(func(c jwt.MapClaims) { c["iss"] = "berth" }))},
		{"tampered payload of a genuine token", tampered},
		{"not a JWT", "not.a.jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := use(tc.token)
			wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
			if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="http://`+s.Addr+`/token",service="other"`) {
				t.Errorf("%s: WWW-Authenticate %q, want the Bearer challenge", r, ch)
			}
		})
	}

	// berth caches the tokens it verified. Sent over one connection, a
	// forgery lands in the request buffer where the genuine tokens before
	// it were read: a cache keyed on those bytes rather than on a copy
	// would find the forgery in it, now and then.
	t.Run("forgeries after genuine tokens on one connection", func(t *testing.T) {
		for i := range 6 {
			jti := func(c jwt.MapClaims) { c["jti"] = "genuine" + strconv.Itoa(i) }
			wantStatus(t, use(signJWT(t, jwt.SigningMethodES256, ours, ourHeader, claims(jti))), http.StatusOK)
		}
		accepted := 0
		for i := range 300 {
			jti := func(c jwt.MapClaims) { c["jti"] = "genuine" + strconv.Itoa(i%6) }
			if r := use(signJWT(t, jwt.SigningMethodES256, foreign, ourHeader, claims(jti))); r.Status != http.StatusUnauthorized {
				accepted++
			}
		}
		if accepted > 0 {
			t.Errorf("%d of 300 tokens signed with a foreign key were not refused after genuine ones of the same length", accepted)
		}
	})

	t.Run("expired after --token-ttl", func(t *testing.T) {
		answer, c := wantToken(t, s.getToken(t, "admin", adminPassword,
			url.Values{"service": {"other"}, "scope": {"repository:forge/app:pull"}}))
		if c.ExpiresAt-c.IssuedAt != 2 || answer.ExpiresIn != 2 {
			t.Fatalf("token lives %d s (expires_in %d), want the 2 s of --token-ttl", c.ExpiresAt-c.IssuedAt, answer.ExpiresIn)
		}
		wantStatus(t, use(answer.Token), http.StatusOK)
		expiry := time.Unix(c.ExpiresAt, 0)
		for deadline := expiry.Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r := use(answer.Token)
			if r.Status == http.StatusUnauthorized {
				if time.Now().Before(expiry) {
					t.Errorf("%s: refused before its exp %v", r, expiry)
				}
				break
			}
			wantStatus(t, r, http.StatusOK)
			if time.Now().After(deadline) {
				t.Fatalf("%s: still accepted 5 s after its exp %v", r, expiry)
			}
		}
	})
}

// TestAuth_Throttle fails five sign-ins of one account from 127.0.0.1 and
// expects the sixth attempt, even with the right password, to get 429 with
// Retry-After, at /token and with Basic auth on /v2/; other accounts are
// not affected.
func TestAuth_Throttle(t *testing.T) {
	s, _ := startAuthServer(t, "")
	for _, name := range []string{"alice", "bob", "carol"} {
		s.addUser(t, name, name+"-password")
	}
	viaToken := func(user, password string) reply {
		return s.getToken(t, user, password, url.Values{"service": {"berth"}})
	}
	viaPasswordGrant := func(user, password string) reply {
		return s.postToken(t, url.Values{"grant_type": {"password"}, "username": {user}, "password": {password},
			"service": {"berth"}, "client_id": {"berth-tests"}})
	}
	viaBasic := func(user, password string) reply {
		return s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth(user, password))
	}
	for _, tc := range []struct {
		name   string
		user   string
		fail   func(user, password string) reply
		others []func(user, password string) reply // also throttled for the account
	}{
		{"token endpoint", "alice", viaToken, []func(string, string) reply{viaPasswordGrant, viaBasic}},
		{"Basic on /v2/", "bob", viaBasic, []func(string, string) reply{viaToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 1; i <= 5; i++ {
				if r := tc.fail(tc.user, "wrong"); r.Status != http.StatusUnauthorized {
					t.Fatalf("wrong password %d of 5: %s, want 401", i, r)
				}
			}
			for _, try := range append([]func(string, string) reply{tc.fail}, tc.others...) {
				for _, password := range []string{"wrong", tc.user + "-password"} {
					r := try(tc.user, password)
					wantError(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
					if after, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || after < 1 || after > 60 {
						t.Errorf("%s: Retry-After %q, want 1 to 60 seconds", r, r.Header.Get("Retry-After"))
					}
				}
			}
		})
	}
	wantStatus(t, viaBasic("carol", "carol-password"), http.StatusOK)
	wantToken(t, viaToken("carol", "carol-password"))
}
