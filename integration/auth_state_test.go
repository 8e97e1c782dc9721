package integration

// The state sign-ins leave behind and what a flood of them costs, against
// the real binary: access tokens that die with a password change, refresh
// tokens that expire, are capped and can be listed and revoked with the
// server up or down, the bcrypt limit and the throttle that counts an
// attempt when it starts.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// TestAuth_TokensDieWithPasswordChange: README says `user passwd` and
// `user del` sign the user out everywhere; an access token issued before
// must be refused at once, not when it expires, and so must a Basic
// credential the server had cached.
func TestAuth_TokensDieWithPasswordChange(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "alice", "old-password")
	s.addUser(t, "bob", "bob-password")
	token := func(user, password string) string {
		t.Helper()
		answer, _ := wantToken(t, s.getToken(t, user, password, url.Values{"service": {"berth"}}))
		wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", bearer(answer.Token)), http.StatusOK)
		return answer.Token
	}
	get := func(auth string) reply { return s.do(t, http.MethodGet, "/v2/", nil, "Authorization", auth) }

	old, bobs := token("alice", "old-password"), token("bob", "bob-password")
	wantStatus(t, get(basicAuth("alice", "old-password")), http.StatusOK) // now cached
	s.berth(t, "new-password\n", "user", "passwd", "alice", "--password-stdin")
	wantError(t, get(bearer(old)), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, get(basicAuth("alice", "old-password")), http.StatusUnauthorized, "UNAUTHORIZED")
	wantStatus(t, get(bearer(bobs)), http.StatusOK)

	fresh := token("alice", "new-password")
	wantStatus(t, get(basicAuth("alice", "new-password")), http.StatusOK)
	s.berth(t, "", "user", "del", "alice")
	wantError(t, get(bearer(fresh)), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, get(basicAuth("alice", "new-password")), http.StatusUnauthorized, "UNAUTHORIZED")

	// A new alice does not inherit the old one's tokens.
	s.addUser(t, "alice", "new-password")
	wantError(t, get(bearer(fresh)), http.StatusUnauthorized, "UNAUTHORIZED")
	wantStatus(t, get(bearer(bobs)), http.StatusOK)
}

// offlineLogin signs in as alice with the OAuth2 password grant, as docker
// login does, and returns the refresh token.
func (s *server) offlineLogin(t testing.TB, user, password, client string) string {
	t.Helper()
	answer, _ := wantToken(t, s.postToken(t, url.Values{"grant_type": {"password"}, "username": {user}, "password": {password},
		"client_id": {client}, "access_type": {"offline"}, "service": {"berth"}}))
	if answer.RefreshToken == "" {
		t.Fatalf("no refresh token for %s's offline login", user)
	}
	return answer.RefreshToken
}

// sessionIDs returns the ID column of `berth user sessions` output, by the
// CLIENT column.
func sessionIDs(t testing.TB, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("user sessions printed no table:\n%s", out)
	}
	ids := make(map[string]string)
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		ids[f[len(f)-1]] = f[0]
	}
	return ids
}

// TestAuth_RefreshTokenSessions: a user holds at most
// --refresh-tokens-per-user refresh tokens, and `berth user sessions` and
// `berth user revoke` give the same output with the server up and down.
func TestAuth_RefreshTokenSessions(t *testing.T) {
	s, _ := startAuthServer(t, "", "--refresh-tokens-per-user", "2")
	s.addUser(t, "alice", "alice-pw")
	first := s.offlineLogin(t, "alice", "alice-pw", "laptop-1")
	second := s.offlineLogin(t, "alice", "alice-pw", "laptop-2")
	third := s.offlineLogin(t, "alice", "alice-pw", "laptop-3")
	s.wantRefreshRefused(t, first, "berth") // the oldest, beyond the cap
	s.wantRefreshWorks(t, third, "alice")

	up := s.berth(t, "", "user", "sessions", "alice")
	ids := sessionIDs(t, up)
	if len(ids) != 2 || ids["laptop-2"] == "" || ids["laptop-3"] == "" {
		t.Fatalf("sessions with a cap of 2 after 3 logins:\n%s", up)
	}
	for _, l := range strings.Split(up, "\n") {
		if strings.Contains(l, "laptop-2") != strings.Contains(l, " never ") {
			t.Errorf("only the unused laptop-2 should say never: %q", l)
		}
	}

	stopRegistry(t, s)
	down, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "sessions", "alice")
	if err != nil || down != up {
		t.Fatalf("user sessions with the server down: %v %s\n%s\nwant the same as up:\n%s", err, stderr, down, up)
	}
	out, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "revoke", "alice", ids["laptop-2"])
	if err != nil || out != "revoked 1 session of alice\n" {
		t.Fatalf("user revoke with the server down: %v %q %q", err, out, stderr)
	}
	_, stderr, err = runBerth(t, t.Context(), nil, "--data", s.Data, "user", "revoke", "alice", ids["laptop-2"])
	if err == nil || stderr != "berth: alice has no session "+ids["laptop-2"]+" (see berth user sessions alice)\n" {
		t.Errorf("revoking a revoked session: %v, stderr %q", err, stderr)
	}

	s, _ = startAuthServer(t, s.Data, "--refresh-tokens-per-user", "2")
	s.wantRefreshRefused(t, second, "berth")
	s.wantRefreshWorks(t, third, "alice")
	if out := s.berth(t, "", "user", "revoke", "alice", "--all"); out != "revoked 1 session of alice\n" {
		t.Errorf("user revoke --all with the server up: %q", out)
	}
	s.wantRefreshRefused(t, third, "berth")
	if out := s.berth(t, "", "user", "sessions", "alice"); len(sessionIDs(t, out)) != 0 {
		t.Errorf("sessions after revoke --all:\n%s", out)
	}
}

// TestAuth_RefreshTokenExpiry: a refresh token is refused once
// --refresh-token-ttl has passed, deleted when it is then presented, and
// swept by the server (at start, then hourly) when it never comes back.
func TestAuth_RefreshTokenExpiry(t *testing.T) {
	const ttl = 2 * time.Second
	args := []string{"--refresh-token-ttl", ttl.String()}
	s, _ := startAuthServer(t, "", args...)
	s.addUser(t, "alice", "alice-pw")

	issued := time.Now()
	presented := s.offlineLogin(t, "alice", "alice-pw", "presented")
	forgotten := s.offlineLogin(t, "alice", "alice-pw", "forgotten")
	s.wantRefreshWorks(t, presented, "alice")
	if time.Since(issued) >= ttl {
		t.Skip("the machine is too slow to see a 2 s token live")
	}
	refused := false
	for deadline := time.Now().Add(10 * time.Second); !refused && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r := s.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {presented}, "service": {"berth"}})
		refused = r.Status == http.StatusUnauthorized
	}
	if !refused || time.Since(issued) < ttl {
		t.Fatalf("refused %v after %s, want refused once %s have passed", refused, time.Since(issued), ttl)
	}
	if ids := sessionIDs(t, s.berth(t, "", "user", "sessions", "alice")); len(ids) != 0 {
		t.Errorf("expired sessions are listed: %v", ids)
	}

	// The forgotten token is still stored; a restart sweeps it.
	stopRegistry(t, s)
	s, _ = startAuthServer(t, s.Data, args...)
	if lines := waitLines(t, 1, func() []string { return s.logLines("refresh token cleanup") }); !strings.Contains(lines[0], "removed=1") {
		t.Errorf("sweep at start: %q, want removed=1 (the forgotten token; the presented one went at use)", lines)
	}
	s.wantRefreshRefused(t, forgotten, "berth")
}

// TestAuth_ThrottleCountsAtStart sends 16 different wrong passwords for one
// account from one address at once: each attempt counts before bcrypt, so
// exactly five are checked and the rest refused, however they interleave.
func TestAuth_ThrottleCountsAtStart(t *testing.T) {
	s, _ := startAuthServer(t, "")
	// alice's hash has bcrypt's least cost: the five checks the throttle
	// lets through then take milliseconds even on a loaded machine, well
	// inside the password-check limiter's wait (2 s), which would otherwise
	// turn the last of them into busy refusals (429, not counted) and blur
	// what this test counts. The throttle does not depend on the cost.
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.berth(t, "", "user", "import-htpasswd", htpasswd)
	checks := s.metric(t, "berth_password_checks_total")
	statuses := make([]int, 16)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() {
			r, err := s.try(t.Context(), http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", fmt.Sprintf("guess-%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
		})
	}
	wg.Wait()
	if n := count(statuses, http.StatusUnauthorized); n != 5 || count(statuses, http.StatusTooManyRequests) != 11 {
		t.Errorf("answers %v, want 5 × 401 and 11 × 429", statuses)
	}
	if got := s.metric(t, "berth_password_checks_total") - checks; got != 5 {
		t.Errorf("%v bcrypt checks for 16 parallel guesses, want 5", got)
	}

	// Unknown names start a fresh count each; the address's count stops
	// them. A credential verified before is still served from the cache.
	const flooder = "192.0.2.99"
	wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-pw"), "X-Forwarded-For", flooder), http.StatusOK)
	for i := range 25 {
		r := s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth(fmt.Sprintf("nobody-%d", i), "pw"), "X-Forwarded-For", flooder)
		if want := http.StatusUnauthorized; i >= 20 {
			wantError(t, r, http.StatusTooManyRequests, "TOOMANYREQUESTS")
		} else if r.Status != want {
			t.Errorf("unknown name %d: %s, want 401", i, r)
		}
	}
	wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "alice-pw"), "X-Forwarded-For", flooder), http.StatusOK)
}

func count(statuses []int, status int) int {
	n := 0
	for _, s := range statuses {
		if s == status {
			n++
		}
	}
	return n
}

// TestAuth_ImportRefusesHighBcryptCost: a hash above cost 14 would make
// every sign-in (and every wrong guess) cost seconds of CPU.
func TestAuth_ImportRefusesHighBcryptCost(t *testing.T) {
	s, _ := startAuthServer(t, "")
	const hash = "erf0tmelkqqOGDYT9S3jLuxJWVoBoDN/P.S.XstJipgX2sP8Fb1X."
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("ok:$2y$05$"+hash+"\nslow:$2y$17$"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runBerth(t, t.Context(), nil, "--data", s.Data, "user", "import-htpasswd", file)
	wantErr := "berth: imported 1, refused 1: slow (line 2: bcrypt cost 17, above berth's maximum of 14: re-hash with htpasswd -B -C 10 or set it with berth user passwd)\n"
	if err == nil || out != "added user ok\n" || stderr != wantErr {
		t.Errorf("import: %v\nstdout %q\nstderr %q\nwant stderr %q", err, out, stderr, wantErr)
	}
	if list := s.berth(t, "", "user", "list"); strings.Contains(list, "slow") || !strings.Contains(list, "ok ") {
		t.Errorf("user list after the import:\n%s", list)
	}
}

// TestAuth_BcryptFlood measures manifest HEAD for a signed-in client while
// 16 clients send random user names from random addresses (through the
// trusted loopback proxy, so that the per-address throttle does not stop
// them and bcrypt is what they cost), against the same without the flood.
// The client's requests must all succeed, and bcrypt never runs more than
// its limit at once. The numbers are logged, not asserted.
func TestAuth_BcryptFlood(t *testing.T) {
	s, adminPW := startAuthServer(t, "")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "admin/app:v1"), img, withAuth(t, "admin", adminPW)...); err != nil {
		t.Fatal(err)
	}
	answer, _ := wantToken(t, s.getToken(t, "admin", adminPW, url.Values{"service": {"berth"}, "scope": {"repository:admin/app:pull"}}))
	clients := map[string]string{"bearer": bearer(answer.Token), "basic": basicAuth("admin", adminPW)}
	head := func(auth string) (time.Duration, error) {
		start := time.Now()
		r, err := s.try(t.Context(), http.MethodHead, "/v2/admin/app/manifests/v1", nil, "Authorization", auth,
			"Accept", "application/vnd.docker.distribution.manifest.v2+json")
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("HEAD manifest: %s", r)
		}
		return time.Since(start), err
	}
	measure := func(name, auth string, d time.Duration) {
		t.Helper()
		var took []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			dt, err := head(auth)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			took = append(took, dt)
		}
		slices.Sort(took)
		t.Logf("%-22s %6.0f req/s  median %v  p99 %v", name, float64(len(took))/d.Seconds(),
			took[len(took)/2].Round(10*time.Microsecond), took[len(took)*99/100].Round(10*time.Microsecond))
	}
	for _, c := range []string{"bearer", "basic"} {
		measure(c+", no flood", clients[c], 1500*time.Millisecond)
	}

	ctx, stop := context.WithCancel(t.Context())
	var mu sync.Mutex
	answers := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				user := fmt.Sprintf("u%08x", rand.Uint32())
				addr := fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256))
				r, err := s.try(ctx, http.MethodGet, "/v2/", nil, "Authorization", basicAuth(user, "pw"), "X-Forwarded-For", addr)
				if err != nil {
					return // ctx ended
				}
				mu.Lock()
				answers[r.Status]++
				mu.Unlock()
			}
		})
	}
	floodStart := time.Now()
	for _, c := range []string{"bearer", "basic"} {
		measure(c+", 16-client flood", clients[c], 2*time.Second)
	}
	stop()
	wg.Wait()
	flood := time.Since(floodStart)

	limit, peak := s.metric(t, "berth_password_checks_limit"), s.metric(t, "berth_password_checks_running_peak")
	checks, refused := s.metric(t, "berth_password_checks_total"), s.metric(t, "berth_password_checks_refused_total")
	t.Logf("flood: %d answers in %v: %d × 401, %d × 429; bcrypt limit %v, peak %v, %v checks, %v refused as busy",
		answers[401]+answers[429], flood.Round(time.Millisecond), answers[401], answers[429], limit, peak, checks, refused)
	if limit < 1 || peak < 1 || peak > limit {
		t.Errorf("bcrypt ran %v at once at its peak, limit %v", peak, limit)
	}
	for status, n := range answers {
		if status != http.StatusUnauthorized && status != http.StatusTooManyRequests {
			t.Errorf("flood answers %v: %d × %d, want only 401 (checked) and 429 (refused)", answers, n, status)
		}
	}
	if answers[http.StatusUnauthorized] == 0 {
		t.Errorf("flood answers %v: no name was ever checked", answers)
	}
}
