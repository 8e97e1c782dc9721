package integration

// Token authentication, users and access rules over HTTP against the real
// binary: the rules matrix and the token endpoint with refresh-token
// revocation. Real clients, the realm, the throttle and forged tokens are
// in auth_clients_test.go.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// tokenAnswer is the JSON body of a /token response.
type tokenAnswer struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

// tokenAccess is one entry of a token's access claim.
type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// tokenClaims are the claims of an access token, read without verifying.
type tokenClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	ExpiresAt int64           `json:"exp"`
	NotBefore int64           `json:"nbf"`
	IssuedAt  int64           `json:"iat"`
	ID        string          `json:"jti"`
	Access    []tokenAccess   `json:"access"`
}

// getToken asks GET /token with query, as user (no credentials when user
// is ""), and returns the reply.
func (s *server) getToken(t testing.TB, user, password string, query url.Values) reply {
	t.Helper()
	var headers []string
	if user != "" {
		headers = []string{"Authorization", basicAuth(user, password)}
	}
	return s.do(t, http.MethodGet, "/token?"+query.Encode(), nil, headers...)
}

// postToken sends the OAuth2 form to POST /token.
func (s *server) postToken(t testing.TB, form url.Values) reply {
	t.Helper()
	return s.do(t, http.MethodPost, "/token", []byte(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
}

// wantToken checks a successful token response and returns its body and
// claims.
func wantToken(t testing.TB, r reply) (tokenAnswer, tokenClaims) {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	var a tokenAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	if a.Token == "" || a.AccessToken != a.Token {
		t.Fatalf("%s: token %q and access_token %q, want the same token in both", r, a.Token, a.AccessToken)
	}
	return a, jwtClaims(t, a.Token)
}

// jwtClaims decodes the payload of a JWT without checking its signature.
func jwtClaims(t testing.TB, raw string) tokenClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS in compact form", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("token payload: %v", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("token payload %s: %v", payload, err)
	}
	return c
}

// granted returns the actions the claims grant on (typ, name), sorted.
func (c tokenClaims) granted(typ, name string) []string {
	var out []string
	for _, a := range c.Access {
		if a.Type == typ && a.Name == name {
			out = append(out, a.Actions...)
		}
	}
	slices.Sort(out)
	return out
}

func bearer(token string) string { return "Bearer " + token }

// scheme names the kind of an Authorization value for messages, which
// must not print credentials.
func scheme(auth string) string {
	if auth == "" {
		return "no credentials"
	}
	s, _, _ := strings.Cut(auth, " ")
	return s + " auth"
}

// caller is how a matrix request signs in: a name and password for Basic
// auth and /token, or the anonymous caller with name "".
type caller struct{ name, password string }

func (c caller) String() string {
	if c.name == "" {
		return "anonymous"
	}
	return c.name
}

// probe makes one request that needs action on repo and reports whether it
// was allowed, failing the test unless a refusal is the one the spec asks
// for: 401 with a Bearer challenge for the anonymous caller and for a token
// without the scope, 403 DENIED for a signed-in Basic caller. The requests
// change nothing: pull reads the tag "latest", push opens an upload session,
// delete deletes a manifest that does not exist.
func (s *server) probe(t testing.TB, auth, repo, action string) bool {
	t.Helper()
	method, path, okStatus := http.MethodGet, "/v2/"+repo+"/manifests/latest", http.StatusOK
	switch action {
	case "push":
		method, path, okStatus = http.MethodPost, "/v2/"+repo+"/blobs/uploads/", http.StatusAccepted
	case "delete":
		method, path, okStatus = http.MethodDelete, "/v2/"+repo+"/manifests/sha256:"+strings.Repeat("0", 64), http.StatusNotFound
	}
	var headers []string
	if auth != "" {
		headers = []string{"Authorization", auth}
	}
	r := s.do(t, method, path, nil, headers...)
	switch {
	case r.Status == okStatus && (action != "delete" || errorCode(r) == "MANIFEST_UNKNOWN"):
		return true
	case strings.HasPrefix(auth, "Basic "):
		wantError(t, r, http.StatusForbidden, "DENIED")
	default:
		wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
		if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer realm=") || !strings.Contains(ch, `scope="repository:`+repo+":") {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge with the repository's scope", r, ch)
		}
	}
	return false
}

// catalog returns what /v2/_catalog lists for auth, or nil with the status
// when it is refused.
func (s *server) catalog(t testing.TB, auth string) ([]string, int) {
	t.Helper()
	var headers []string
	if auth != "" {
		headers = []string{"Authorization", auth}
	}
	r := s.do(t, http.MethodGet, "/v2/_catalog", nil, headers...)
	if r.Status != http.StatusOK {
		return nil, r.Status
	}
	var body struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return body.Repositories, r.Status
}

// matrixRepos are the repositories of the rules matrix, in catalog order.
var matrixRepos = []string{"alice/app", "bob/app", "private/app", "public/app", "shared/app"}

// checkMatrix checks what each caller may do on each repository, three
// ways: the access a token asking for every action is granted, the same
// requests with that token, and with Basic auth (no credentials for the
// anonymous caller). want maps caller and repository to the allowed
// actions, sorted and comma-separated; a missing entry means none.
func (s *server) checkMatrix(t *testing.T, callers []caller, want map[string]map[string]string) {
	t.Helper()
	s.checkMatrixOn(t, matrixRepos, callers, want)
}

// checkMatrixOn is checkMatrix on the repositories repos.
func (s *server) checkMatrixOn(t *testing.T, repos []string, callers []caller, want map[string]map[string]string) {
	t.Helper()
	for _, who := range callers {
		basic := ""
		if who.name != "" {
			basic = basicAuth(who.name, who.password)
		}
		for _, repo := range repos {
			t.Run(who.String()+" on "+repo, func(t *testing.T) {
				wantActions := want[who.String()][repo]
				answer, claims := wantToken(t, s.getToken(t, who.name, who.password,
					url.Values{"service": {"berth"}, "scope": {"repository:" + repo + ":pull,push,delete"}}))
				if got := strings.Join(claims.granted("repository", repo), ","); got != wantActions {
					t.Errorf("token grants %q, want %q", got, wantActions)
				}
				for _, action := range []string{"pull", "push", "delete"} {
					wantOK := slices.Contains(strings.Split(wantActions, ","), action)
					for _, auth := range []string{bearer(answer.Token), basic} {
						if got := s.probe(t, auth, repo, action); got != wantOK {
							t.Errorf("%s with %s: allowed %v, want %v", action, scheme(auth), got, wantOK)
						}
					}
				}
			})
		}
	}
}

// checkCatalog checks what /v2/_catalog lists for who, with Basic auth and
// with a token for registry:catalog:*; want nil means refused with 401.
func (s *server) checkCatalog(t *testing.T, who caller, want []string) {
	t.Helper()
	answer, _ := wantToken(t, s.getToken(t, who.name, who.password,
		url.Values{"service": {"berth"}, "scope": {"registry:catalog:*"}}))
	basic := ""
	if who.name != "" {
		basic = basicAuth(who.name, who.password)
	}
	for _, auth := range []string{bearer(answer.Token), basic} {
		got, status := s.catalog(t, auth)
		switch {
		case want == nil && status != http.StatusUnauthorized:
			t.Errorf("catalog for %s with %s: status %d listing %q, want 401", who, scheme(auth), status, got)
		case want != nil && !slices.Equal(got, want):
			t.Errorf("catalog for %s with %s: status %d listing %q, want %q", who, scheme(auth), status, got, want)
		}
	}
}

// TestAuth_RulesMatrix checks pull, push, delete and the catalog for
// admin, alice, bob and the anonymous caller: under the default rules, under
// rules added while serving (namespaces by ${account}, a regular expression
// for accounts, first match wins), and with anonymous pull on.
func TestAuth_RulesMatrix(t *testing.T) {
	s, adminPassword := startAuthServer(t, "")
	if fi, err := os.Stat(filepath.Join(s.Data, "initial-admin-password")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("DATA/initial-admin-password has mode %v, want 0600", fi.Mode().Perm())
	}
	// The users and rules below are added while serving, through the
	// control socket, and hold from the next request on.
	if _, err := os.Stat(filepath.Join(s.Data, "control.sock")); err != nil {
		t.Fatalf("no control socket while serving: %v", err)
	}
	s.addUser(t, "alice", "alice-pw")
	s.addUser(t, "bob", "bob-password")
	admin, alice, bob, anonymous := caller{"admin", adminPassword}, caller{"alice", "alice-pw"}, caller{"bob", "bob-password"}, caller{}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range matrixRepos {
		if err := remote.Write(s.ref(t, repo+":latest"), img, withAuth(t, "admin", adminPassword)...); err != nil {
			t.Fatalf("push %s as the initial admin: %v", repo, err)
		}
	}

	t.Run("default rules", func(t *testing.T) {
		s.checkMatrix(t, []caller{alice, anonymous}, map[string]map[string]string{
			"alice": {"alice/app": "delete,pull,push", "bob/app": "pull", "private/app": "pull", "public/app": "pull", "shared/app": "pull"},
		})
		s.checkCatalog(t, alice, matrixRepos)
		s.checkCatalog(t, anonymous, nil)
	})

	for _, rule := range [][]string{
		{"--account", "/.+/", "--name", "${account}/*", "--actions", "*"},
		{"--account", "bob", "--name", "shared/*", "--actions", "pull"},
		{"--account", "/^(alice|bob)$/", "--name", "shared/*", "--actions", "pull,push"},
		{"--account", "/.+/", "--name", "public/*", "--actions", "pull"},
		{"--account", "", "--name", "public/*", "--actions", "pull"},
	} {
		s.berth(t, "", append([]string{"acl", "add"}, rule...)...)
	}
	// The first rule kept the default policy as rule 2; this matrix is
	// about the rules alone.
	s.berth(t, "", "acl", "del", "2")
	everything := map[string]string{}
	for _, repo := range matrixRepos {
		everything[repo] = "delete,pull,push"
	}
	t.Run("rules", func(t *testing.T) {
		s.checkMatrix(t, []caller{admin, alice, bob, anonymous}, map[string]map[string]string{
			"admin":     everything,
			"alice":     {"alice/app": "delete,pull,push", "public/app": "pull", "shared/app": "pull,push"},
			"bob":       {"bob/app": "delete,pull,push", "public/app": "pull", "shared/app": "pull"},
			"anonymous": {"public/app": "pull"},
		})
		s.checkCatalog(t, admin, matrixRepos)
		s.checkCatalog(t, alice, []string{"alice/app", "public/app", "shared/app"})
		s.checkCatalog(t, bob, []string{"bob/app", "public/app", "shared/app"})
		s.checkCatalog(t, anonymous, nil)
	})

	t.Run("a rule inserted first wins", func(t *testing.T) {
		s.berth(t, "", "acl", "add", "--at", "1", "--account", "alice", "--name", "shared/*", "--actions", "pull")
		if s.probe(t, basicAuth("alice", "alice-pw"), "shared/app", "push") {
			t.Errorf("alice may still push to shared/app after a pull-only rule was put first")
		}
		s.berth(t, "", "acl", "del", "1")
		if !s.probe(t, basicAuth("alice", "alice-pw"), "shared/app", "push") {
			t.Errorf("alice may not push to shared/app after the pull-only rule was deleted")
		}
	})

	// The clients' spare connections go first, as startRegistry's cleanup
	// does, or the shutdown waits for them.
	plainTransport.CloseIdleConnections()
	httpClient.CloseIdleConnections()
	s.stop(t)
	s, _ = startAuthServer(t, s.Data, "--anonymous-pull")
	t.Run("anonymous pull", func(t *testing.T) {
		pullAll := map[string]string{}
		for _, repo := range matrixRepos {
			pullAll[repo] = "pull"
		}
		s.checkMatrix(t, []caller{anonymous, alice}, map[string]map[string]string{
			"anonymous": pullAll,
			"alice":     {"alice/app": "delete,pull,push", "public/app": "pull", "shared/app": "pull,push"},
		})
		s.checkCatalog(t, anonymous, matrixRepos)
	})

	t.Run("delete needs delete", func(t *testing.T) {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		path := "/v2/shared/app/manifests/" + d.String()
		wantError(t, s.do(t, http.MethodDelete, path, nil, "Authorization", basicAuth("alice", "alice-pw")), http.StatusForbidden, "DENIED")
		wantStatus(t, s.do(t, http.MethodDelete, "/v2/alice/app/manifests/"+d.String(), nil,
			"Authorization", basicAuth("alice", "alice-pw")), http.StatusAccepted)
		wantError(t, s.do(t, http.MethodGet, "/v2/alice/app/manifests/latest", nil,
			"Authorization", basicAuth("alice", "alice-pw")), http.StatusNotFound, "MANIFEST_UNKNOWN")
		wantStatus(t, s.do(t, http.MethodGet, path, nil, "Authorization", basicAuth("alice", "alice-pw")), http.StatusOK)
	})
}

// TestAuth_TokenEndpoint checks both forms of /token: the response fields,
// several scopes granted no more than the rules allow, refresh tokens and
// their death on a password change or the user's deletion, and requests
// for another service.
func TestAuth_TokenEndpoint(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-pw")
	start := time.Now()

	r := s.getToken(t, "alice", "alice-pw", url.Values{"service": {"berth"}, "scope": {
		"repository:alice/app:pull,push", "repository:bob/app:pull,push,delete",
		"repository:private/x:delete", "registry:catalog:*"}})
	answer, claims := wantToken(t, r)
	if answer.ExpiresIn != 300 || claims.ExpiresAt-claims.IssuedAt != 300 {
		t.Errorf("%s: expires_in %d, exp-iat %d, want the default 300 s", r, answer.ExpiresIn, claims.ExpiresAt-claims.IssuedAt)
	}
	issued, err := time.Parse(time.RFC3339, answer.IssuedAt)
	if err != nil || issued.Unix() != claims.IssuedAt || issued.Before(start.Add(-time.Second)) || issued.After(time.Now()) {
		t.Errorf("%s: issued_at %q (%v), want RFC 3339 for iat %d, about now", r, answer.IssuedAt, err, claims.IssuedAt)
	}
	if claims.Issuer != "berth" || claims.Subject != "alice" || !strings.Contains(string(claims.Audience), `"berth"`) ||
		claims.NotBefore == 0 || claims.ID == "" {
		t.Errorf("claims %+v, want iss berth, sub alice, aud berth, nbf and jti", claims)
	}
	for _, tc := range []struct{ typ, name, want string }{
		{"repository", "alice/app", "pull,push"},
		{"repository", "bob/app", "pull"},
		{"repository", "private/x", ""},
		{"registry", "catalog", "*"},
	} {
		if got := strings.Join(claims.granted(tc.typ, tc.name), ","); got != tc.want {
			t.Errorf("access on %s:%s is %q, want %q (all claims %+v)", tc.typ, tc.name, got, tc.want, claims.Access)
		}
	}
	if answer.RefreshToken != "" {
		t.Errorf("%s: a refresh token without offline_token=true", r)
	}

	t.Run("anonymous is granted nothing", func(t *testing.T) {
		_, claims := wantToken(t, s.getToken(t, "", "", url.Values{"scope": {"repository:alice/app:pull"}}))
		if claims.Subject != "" || len(claims.Access) != 0 {
			t.Errorf("anonymous token claims %+v, want no sub and no access", claims)
		}
	})
	t.Run("offline_token", func(t *testing.T) {
		answer, _ := wantToken(t, s.getToken(t, "alice", "alice-pw", url.Values{"offline_token": {"true"}}))
		s.wantRefreshWorks(t, answer.RefreshToken, "alice")
	})

	passwordGrant := func(t *testing.T, password string) string {
		t.Helper()
		answer, claims := wantToken(t, s.postToken(t, url.Values{
			"grant_type": {"password"}, "username": {"alice"}, "password": {password}, "client_id": {"berth-tests"},
			"access_type": {"offline"}, "service": {"berth"}, "scope": {"repository:alice/app:pull"}}))
		if claims.Subject != "alice" || strings.Join(claims.granted("repository", "alice/app"), ",") != "pull" {
			t.Errorf("password grant claims %+v, want sub alice with pull on alice/app", claims)
		}
		s.wantRefreshWorks(t, answer.RefreshToken, "alice")
		return answer.RefreshToken
	}
	t.Run("refresh token dies with a password change", func(t *testing.T) {
		refresh := passwordGrant(t, "alice-pw")
		// A successful Basic check is cached; the change must miss the cache.
		wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-pw")), http.StatusOK)
		s.berth(t, "alice-new\n", "user", "passwd", "alice", "--password-stdin")
		s.wantRefreshRefused(t, refresh, "berth")
		wantError(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-pw")), http.StatusUnauthorized, "UNAUTHORIZED")
		wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-new")), http.StatusOK)
	})
	t.Run("refresh token dies with the user", func(t *testing.T) {
		refresh := passwordGrant(t, "alice-new")
		s.berth(t, "", "user", "del", "alice")
		s.wantRefreshRefused(t, refresh, "berth")
		wantError(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-new")), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("another service", func(t *testing.T) {
		s.addUser(t, "carol", "carol-pw")
		r := s.getToken(t, "carol", "carol-pw", url.Values{"service": {"other"}, "scope": {"repository:carol/app:pull"}})
		if r.Status/100 != 4 || strings.Contains(string(r.Body), `"token"`) {
			t.Errorf("%s: a token for another service, want a 4xx refusal", r)
		}
		answer, _ := wantToken(t, s.getToken(t, "carol", "carol-pw", url.Values{"offline_token": {"true"}}))
		s.wantRefreshRefused(t, answer.RefreshToken, "other")
	})
}

// wantRefreshWorks redeems a refresh token and checks the new access token
// is for user and opens /v2/.
func (s *server) wantRefreshWorks(t testing.TB, refresh, user string) {
	t.Helper()
	if refresh == "" {
		t.Fatalf("no refresh_token in the answer")
	}
	answer, claims := wantToken(t, s.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {"berth-tests"}, "service": {"berth"}, "scope": {"repository:" + user + "/app:pull"}}))
	if claims.Subject != user {
		t.Errorf("refreshed token's sub is %q, want %q", claims.Subject, user)
	}
	wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", bearer(answer.Token)), http.StatusOK)
}

// wantRefreshRefused checks a refresh token is refused for service.
func (s *server) wantRefreshRefused(t testing.TB, refresh, service string) {
	t.Helper()
	r := s.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {"berth-tests"}, "service": {service}})
	if r.Status/100 != 4 || strings.Contains(string(r.Body), `"token"`) {
		t.Errorf("%s: refresh token accepted, want a 4xx refusal", r)
	}
}
