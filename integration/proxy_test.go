package integration

// Tests of berth behind a reverse proxy: which peers' X-Forwarded-*
// headers count, and a push and pull through nginx with the configuration
// docs/nginx.conf ships.

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-registry/berth/fixtures"

	"github.com/berth-registry/berth/internal/storetest"
)

// TestProxy_ForwardedHeadersOnlyFromTrustedPeers sends the same forwarded
// headers from 127.0.0.1 to servers that trust it and servers that do not,
// and checks the token realm and the client address in the log.
func TestProxy_ForwardedHeadersOnlyFromTrustedPeers(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		args    []string
		trusted bool
	}{
		{"default: loopback", nil, nil, true},
		{"flag: another network", nil, []string{"--trusted-proxy", "10.9.9.0/24"}, false},
		{"flag: none", nil, []string{"--trusted-proxy", "none"}, false},
		{"flag: repeated", nil, []string{"--trusted-proxy", "10.9.9.0/24", "--trusted-proxy", "127.0.0.1"}, true},
		{"environment: comma-separated", []string{"BERTH_TRUSTED_PROXY=10.0.0.0/8,127.0.0.1"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := launch(t, "", tc.env, healthy, append([]string{"--auth", "token"}, tc.args...)...)
			r := s.do(t, http.MethodGet, "/v2/", nil,
				"X-Forwarded-Proto", "https", "X-Forwarded-Host", "registry.example", "X-Forwarded-For", "6.6.6.6, 192.0.2.7")
			wantRealm, wantRemote := "http://"+s.Addr+"/token", "remote=127.0.0.1"
			if tc.trusted {
				wantRealm, wantRemote = "https://registry.example/token", "remote=192.0.2.7"
			}
			if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="`+wantRealm+`"`) {
				t.Errorf("WWW-Authenticate %q, want the realm %s", got, wantRealm)
			}
			lines := waitLines(t, 1, func() []string { return s.requestLines("GET", "/v2/") })
			if len(lines) != 1 || !strings.Contains(lines[0], wantRemote) {
				t.Errorf("access log %q, want one line with %s", lines, wantRemote)
			}
		})
	}
}

// nginxConfig turns docs/nginx.conf into a configuration for a test
// instance: berth at berthAddr, nginx on listen with the certificate pair,
// and every path nginx writes inside dir. Each value the test replaces
// must be in the file, so the test breaks rather than drifts when the file
// changes.
func nginxConfig(t *testing.T, dir, berthAddr, listen, cert, key string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	site := string(doc)
	for _, r := range [][2]string{
		{"server 127.0.0.1:5000;", "server " + berthAddr + ";"},
		{"listen 443 ssl;", "listen " + listen + " ssl;"},
		{"/etc/letsencrypt/live/registry.example.com/fullchain.pem", cert},
		{"/etc/letsencrypt/live/registry.example.com/privkey.pem", key},
	} {
		if !strings.Contains(site, r[0]) {
			t.Fatalf("docs/nginx.conf no longer contains %q, which the test replaces", r[0])
		}
		site = strings.ReplaceAll(site, r[0], r[1])
	}
	main := "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log info;\n"
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot enter the test's 0700
		// temporary directory.
		main += "user root;\n"
	}
	main += "events { worker_connections 64; }\nhttp {\n"
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		main += "  " + p + "_temp_path " + dir + "/" + p + ";\n"
	}
	main += "  access_log " + dir + "/access.log;\n" + site + "\n}\n"
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func nginxBinary(t *testing.T) string {
	if _, err := exec.LookPath("nginx"); err != nil {
		// Debian puts it in /usr/sbin, outside a user's PATH.
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx"
		}
	}
	return fixtures.RequireTool(t, "nginx")
}

// TestNginx_PushPull runs nginx with docs/nginx.conf in front of berth with
// token auth, and pushes and pulls through it: the realm must name the
// proxy, a chunked multi-megabyte upload must stream through, and
// go-containerregistry must push and pull an image.
func TestNginx_PushPull(t *testing.T) {
	nginx := nginxBinary(t)
	s, password := startAuthServer(t, "")
	s.berth(t, "", "tls", "init", "--host", registryHost+",127.0.0.1")
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := nginxConfig(t, dir, s.Addr, listen, filepath.Join(s.Data, "tls", "server.crt"), filepath.Join(s.Data, "tls", "server.key"))
	cmd := exec.Command(nginx, "-p", dir, "-c", conf)
	var logs storetest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT) // graceful stop
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	roots := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(s.Data, "tls", "ca.crt"))
	roots.AppendCertsFromPEM(ca)
	proxy := &server{Addr: listen}
	transport := tlsTransport(proxy, roots)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	base := "https://" + registryHost
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("nginx exited: %s\n%s", logs.String(), readFile(dir, "error.log"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer in 15s: %v\n%s", err, readFile(dir, "error.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("realm names the proxy", func(t *testing.T) {
		resp, err := client.Get(base + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := `Bearer realm="` + base + `/token"`
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, want) {
			t.Errorf("WWW-Authenticate %q through nginx, want %s", got, want)
		}
	})
	t.Run("chunked upload streams through", func(t *testing.T) {
		token := proxyToken(t, client, base, password)
		content := seededBytes(41, 8<<20)
		call := func(method, path string, body io.Reader) *http.Response {
			t.Helper()
			req, _ := http.NewRequestWithContext(t.Context(), method, base+path, body)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			return resp
		}
		resp := call(http.MethodPost, "/v2/proxied/app/blobs/uploads/", nil)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		// A reader without a length goes out chunked, as docker sends layers.
		resp = call(http.MethodPatch, loc, io.MultiReader(bytes.NewReader(content)))
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH through nginx: %d", resp.StatusCode)
		}
		resp = call(http.MethodPut, withQuery(loc, "digest", sha256Digest(content)), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT through nginx: %d", resp.StatusCode)
		}
		resp = call(http.MethodGet, "/v2/proxied/app/blobs/"+sha256Digest(content), nil)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("GET through nginx: %d bytes, %v; want the %d uploaded", len(got), err, len(content))
		}
		lines := waitLines(t, 1, func() []string {
			return s.requestLines("PATCH", "/v2/proxied/app/blobs/uploads/", "remote=127.0.0.1", "bytes_in=8388608")
		})
		if len(lines) != 1 {
			t.Errorf("berth's log should show the PATCH with all its bytes:\n%s", s.Log())
		}
	})
	t.Run("go-containerregistry", func(t *testing.T) {
		ref, err := name.ParseReference(registryHost+"/proxied/image:v1", name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		img := mustImage(t, mustLayer(t, 3<<20), mustLayer(t, 1024))
		opts := []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(transport),
			remote.WithAuth(&authn.Basic{Username: "admin", Password: password})}
		if err := remote.Write(ref, img, opts...); err != nil {
			t.Fatalf("push through nginx: %v\n%s", err, readFile(dir, "error.log"))
		}
		got, err := remote.Image(ref, opts...)
		if err != nil {
			t.Fatalf("pull through nginx: %v", err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("validate: %v", err)
		}
	})
}

// proxyToken fetches a push token for proxied/app from base as admin.
func proxyToken(t *testing.T, client *http.Client, base, password string) string {
	t.Helper()
	q := url.Values{"service": {"berth"}, "scope": {"repository:proxied/app:pull,push"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/token?"+q.Encode(), nil)
	req.SetBasicAuth("admin", password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("token through nginx: %d %v", resp.StatusCode, err)
	}
	return tok.Token
}

func readFile(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return string(b)
}
