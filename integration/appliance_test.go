package integration

// Tests of berth as an appliance: HTTPS with the CA of `tls init` and its
// reload on SIGHUP, metrics and logs. The process's life (shutdown, the data
// directory's lock, the release build) is in lifecycle_test.go, proxies are
// in proxy_test.go.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// waitLines waits until lines() returns at least n lines and returns them:
// berth writes a request's log line after the response, so a client can
// see the response first.
func waitLines(t testing.TB, n int, lines func() []string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := lines()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// registryHost is the name the TLS tests reach the server by. It is not a
// loopback name, so go-containerregistry speaks HTTPS only, without its
// plain-HTTP fallback for local registries; tlsTransport sends it to the
// server's address.
const registryHost = "registry.berth.test"

// tlsTransport returns a transport that trusts roots (the system's when nil)
// and dials s for every host.
func tlsTransport(s *server, roots *x509.CertPool) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, s.Addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: 16,
	}
}

// startTLSServer runs `tls init` for registryHost and 127.0.0.1, then serves
// with --tls and args, and returns the server and its CA.
func startTLSServer(t *testing.T, args ...string) (*server, *x509.CertPool) {
	t.Helper()
	data := t.TempDir()
	out, errOut, err := runBerth(t, t.Context(), nil, "tls", "init", "--data", data, "--host", registryHost+",127.0.0.1")
	if err != nil {
		t.Fatalf("tls init: %v\n%s%s", err, out, errOut)
	}
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(data, "tls", "ca.crt"))
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("read the CA: %v", err)
	}
	return serveTLS(t, data, roots, args...), roots
}

// serveTLS serves data with --tls and args, and waits until a client that
// trusts roots gets /healthz.
func serveTLS(t *testing.T, data string, roots *x509.CertPool, args ...string) *server {
	t.Helper()
	var client *http.Client
	s := launch(t, data, nil, func(s *server) bool {
		if client == nil {
			client = &http.Client{Transport: tlsTransport(s, roots), Timeout: time.Second}
		}
		resp, err := client.Get("https://" + registryHost + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, append([]string{"--tls"}, args...)...)
	t.Cleanup(client.CloseIdleConnections)
	return s
}

// TestTLS_GGCR pushes and pulls over HTTPS with token auth, trusting the CA
// of `tls init`, and fails to without it.
func TestTLS_GGCR(t *testing.T) {
	s, roots := startTLSServer(t, "--auth", "token")
	raw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	admin := remote.WithAuth(&authn.Basic{Username: "admin", Password: strings.TrimSpace(string(raw))})
	ref, err := name.ParseReference(registryHost+"/tls/image:v1", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	trusting := tlsTransport(s, roots)
	defer trusting.CloseIdleConnections()
	opts := []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(trusting), admin}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push over HTTPS: %v", err)
	}
	got, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pull over HTTPS: %v", err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate: %v", err)
	}
	// The token realm came over HTTPS too: the challenge names it.
	if lines := waitLines(t, 1, func() []string { return s.logLines("path=/token") }); len(lines) == 0 {
		t.Errorf("no token request in the log:\n%s", s.Log())
	}

	t.Run("without the CA", func(t *testing.T) {
		untrusting := tlsTransport(s, nil)
		defer untrusting.CloseIdleConnections()
		err := remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithTransport(untrusting), admin,
			remote.WithRetryPredicate(func(error) bool { return false }))
		var unknown x509.UnknownAuthorityError
		if err == nil || !strings.Contains(err.Error(), unknown.Error()) {
			t.Fatalf("push without trusting the CA: %v, want %q", err, unknown.Error())
		}
	})
}

// TestTLS_ReloadOnSIGHUP renews the certificate with `tls init --force`
// while serving, sends SIGHUP, and checks that new connections get the new
// certificate while a connection opened before goes on.
func TestTLS_ReloadOnSIGHUP(t *testing.T) {
	s, roots := startTLSServer(t, "--auth", "none")
	transport := tlsTransport(s, roots)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	get := func() (serial string, reused bool) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+registryHost+"/v2/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /v2/: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), reused
	}
	before, _ := get()

	// Through the control socket: the server writes the files itself.
	out := s.berth(t, "", "tls", "init", "--host", registryHost+",127.0.0.1", "--force")
	if !strings.Contains(out, "kept: clients that trust it need nothing new") {
		t.Fatalf("tls init --force did not keep the CA:\n%s", out)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after string
	deadline := time.Now().Add(10 * time.Second)
	for after == "" || after == before {
		if time.Now().After(deadline) {
			t.Fatalf("new connections still get certificate %s 10s after SIGHUP:\n%s", before, s.Log())
		}
		conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: roots, ServerName: registryHost})
		if err != nil {
			t.Fatalf("a new connection after the reload: %v", err)
		}
		after = conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
		conn.Close()
		time.Sleep(20 * time.Millisecond)
	}
	serial, reused := get()
	if !reused || serial != before {
		t.Errorf("the connection opened before SIGHUP: reused %v, certificate %s; want reused with %s", reused, serial, before)
	}
	if len(waitLines(t, 1, func() []string { return s.logLines("SIGHUP: reloaded TLS certificate") })) != 1 {
		t.Errorf("the reload is not in the log:\n%s", s.Log())
	}
}

// metric returns the value of series in the /metrics page of s, or -1.
func (s *server) metric(t *testing.T, series string) float64 {
	t.Helper()
	r := s.do(t, http.MethodGet, "/metrics", nil)
	wantStatus(t, r, http.StatusOK)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, line)
			}
			return f
		}
	}
	return -1
}

// TestMetrics_ChangeAfterAPush scrapes /metrics before and after a push and
// a gc run through the control socket.
func TestMetrics_ChangeAfterAPush(t *testing.T) {
	s := startRegistry(t, "")
	series := []string{
		"berth_storage_blobs", "berth_storage_manifests", "berth_storage_tags", "berth_storage_repositories",
		`berth_http_requests_total{code="201",method="PUT",route="manifest"}`,
		`berth_maintenance_runs_total{operation="gc",result="ok"}`,
		`berth_http_request_bytes_total{route="upload"}`,
	}
	before := map[string]float64{}
	for _, m := range series {
		before[m] = max(s.metric(t, m), 0) // counters appear with their first increment
	}
	img := mustImage(t, mustLayer(t, 1<<20))
	if err := remote.Write(s.ref(t, "metrics/app:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatalf("push: %v", err)
	}
	s.berth(t, "", "gc", "--grace", "1h")
	want := map[string]float64{
		"berth_storage_blobs":        2, // config and layer
		"berth_storage_manifests":    1,
		"berth_storage_tags":         1,
		"berth_storage_repositories": 1,
		`berth_http_requests_total{code="201",method="PUT",route="manifest"}`: 1,
		`berth_maintenance_runs_total{operation="gc",result="ok"}`:            1,
	}
	for m, delta := range want {
		if got := s.metric(t, m); got != before[m]+delta {
			t.Errorf("%s = %v after the push, want %v", m, got, before[m]+delta)
		}
	}
	if got := s.metric(t, `berth_http_request_bytes_total{route="upload"}`) + s.metric(t, `berth_http_request_bytes_total{route="upload_start"}`); got < 1<<20 {
		t.Errorf("upload bytes = %v, want at least the layer's %d", got, 1<<20)
	}
	if r := s.do(t, http.MethodGet, "/readyz", nil); r.Status != http.StatusOK {
		t.Errorf("/readyz: %s", r)
	}
}

// TestLogs_NoSecrets signs in with Basic auth and with a Bearer token, in
// both log formats, and searches the log for the password and the tokens.
func TestLogs_NoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			s, _ := startAuthServer(t, "", "--log-format", format, "--log-level", "debug")
			const password = "Secret-Pa55word-for-the-log"
			s.addUser(t, "alice", password)
			wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", password)), http.StatusOK)
			wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", basicAuth("alice", "wrong-"+password)), http.StatusUnauthorized)
			tok := s.getToken(t, "alice", password, url.Values{"service": {"berth"}, "scope": {"repository:alice/app:pull"}, "offline_token": {"true"}})
			answer, _ := wantToken(t, tok)
			wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil, "Authorization", bearer(answer.Token)), http.StatusOK)

			requestLine := "msg=request"
			if format == "json" {
				requestLine = `"msg":"request"`
			}
			lines := waitLines(t, 4, func() []string { return s.logLines(requestLine) })
			for _, secret := range []string{password, answer.Token, answer.RefreshToken} {
				if secret != "" && strings.Contains(s.Log(), secret) {
					t.Errorf("the log holds a secret (%.10s...):\n%s", secret, s.Log())
				}
			}
			if len(lines) < 4 {
				t.Fatalf("%d request lines, want at least 4:\n%s", len(lines), s.Log())
			}
			for _, field := range []string{"method", "route", "repo", "status", "bytes_in", "bytes_out", "duration", "user", "remote"} {
				key := field + "="
				if format == "json" {
					key = `"` + field + `":`
				}
				if !strings.Contains(lines[0], key) {
					t.Errorf("the request line lacks %s: %s", field, lines[0])
				}
			}
			if format == "json" {
				for _, l := range s.logLines(`"level":`) {
					if !json.Valid([]byte(l)) {
						t.Errorf("not a JSON line: %s", l)
					}
				}
			}
		})
	}
}
