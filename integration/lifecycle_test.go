package integration

// Tests of berth's life as a process: graceful shutdown during uploads, the
// lock on the data directory, refused flags, and the release build.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
)

// TestShutdown_DuringUploads sends SIGTERM while a monolithic upload and a
// chunked PATCH are halfway through their bodies. The server must stop
// accepting connections, finish both, exit 0 with meta.db consistent, and
// after a restart serve exactly what it acknowledged.
func TestShutdown_DuringUploads(t *testing.T) {
	s := startRegistry(t, "")
	whole := seededBytes(31, 2<<20)
	chunk := seededBytes(32, 1<<20)
	session := s.startUpload(t, "shut/down")

	type result struct {
		r   reply
		err error
	}
	send := func(req *http.Request, pw *io.PipeWriter, body []byte, done chan<- result) {
		go func() {
			resp, err := httpClient.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			done <- result{r: reply{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}}
		}()
		if _, err := pw.Write(body[:len(body)/2]); err != nil {
			t.Fatalf("send the first half: %v", err)
		}
	}
	monoR, monoW := io.Pipe()
	mono := s.request(t, http.MethodPost, "/v2/shut/down/blobs/uploads/?digest="+sha256Digest(whole), monoR)
	mono.ContentLength = int64(len(whole))
	monoDone := make(chan result, 1)
	send(mono, monoW, whole, monoDone)
	patchR, patchW := io.Pipe()
	patch := s.request(t, http.MethodPatch, session, patchR) // chunked: no length
	patchDone := make(chan result, 1)
	send(patch, patchW, chunk, patchDone)
	waitForUploadBytes(t, s.Data, int64(len(whole)/2+len(chunk)/2))

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("berth still accepts connections 5s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	monoW.Write(whole[len(whole)/2:])
	monoW.Close()
	patchW.Write(chunk[len(chunk)/2:])
	patchW.Close()
	if res := <-monoDone; res.err != nil || res.r.Status != http.StatusCreated {
		t.Errorf("the monolithic upload in flight at SIGTERM: %v %s, want 201", res.err, res.r)
	}
	res := <-patchDone
	if res.err != nil || res.r.Status != http.StatusAccepted || res.r.Header.Get("Range") != "0-"+strconv.Itoa(len(chunk)-1) {
		t.Errorf("the chunk in flight at SIGTERM: %v %s Range %q, want 202 with all of it", res.err, res.r, res.r.Header.Get("Range"))
	}
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("berth did not exit 15s after SIGTERM:\n%s", s.Log())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, s.Log())
	}
	checkStore(t, s.Data)

	s = startRegistry(t, s.Data)
	if r := s.do(t, http.MethodGet, "/v2/shut/down/blobs/"+sha256Digest(whole), nil); r.Status != http.StatusOK || !bytes.Equal(r.Body, whole) {
		t.Errorf("after the restart the acknowledged blob reads %s", r)
	}
	if got := s.uploadOffset(t, session); got != len(chunk) {
		t.Errorf("after the restart the session holds %d bytes, want the acknowledged %d", got, len(chunk))
	}
}

// TestServe_SecondInstanceRefused starts a second server on a data
// directory in use: it must fail at once with a message that says why.
func TestServe_SecondInstanceRefused(t *testing.T) {
	s := startRegistry(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, stderr, err := runBerth(t, ctx, nil, "serve", "--data", s.Data, "--addr", freeAddr(t), "--auth", "none")
	if err == nil || ctx.Err() != nil {
		t.Fatalf("a second serve on the same data: %v (context %v), want a quick failure", err, ctx.Err())
	}
	if want := s.Data + " is in use by another berth process"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want it to say %q", stderr, want)
	}
	wantStatus(t, s.do(t, http.MethodGet, "/v2/", nil), http.StatusOK)
}

// TestServe_RefusesBadFlags checks that serve refuses, with a message
// naming the flag, the flags of this file's features that it cannot use.
func TestServe_RefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"trusted proxy", []string{"--trusted-proxy", "proxy.lan"}, `--trusted-proxy: trusted proxy "proxy.lan"`},
		{"log format", []string{"--log-format", "xml"}, `--log-format: "xml" is not text or json`},
		{"tls without init", []string{"--tls"}, "Try: berth tls init"},
		{"cert without key", []string{"--tls-cert", "x.crt"}, "--tls-cert and --tls-key go together"},
		{"both", []string{"--tls", "--tls-cert", "x.crt", "--tls-key", "x.key"}, "give one or the other"},
		{"negative connection cap", []string{"--max-connections", "-1"}, "--max-connections must not be negative"},
		{"zero body timeout", []string{"--body-timeout", "0s"}, "--body-timeout must be positive"},
		{"zero body progress", []string{"--body-min-bytes", "0"}, "--body-min-bytes must be positive"},
		{"negative upload ttl", []string{"--upload-ttl", "-1h"}, "--upload-ttl must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--addr", freeAddr(t)}, tc.args...)
			_, stderr, err := runBerth(t, t.Context(), nil, args...)
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("serve %q: %v, stderr %q; want a failure saying %q", tc.args, err, stderr, tc.want)
			}
		})
	}
}

// TestRelease runs `make release` into a temporary directory: three static
// binaries and their checksums. The amd64 one must report the version and
// commit it was built with. Cross-compiling costs about a minute on two
// cores with a cold build cache, seconds with a warm one.
func TestRelease(t *testing.T) {
	fixtures.RequireTool(t, "make")
	dist := t.TempDir()
	head, gitErr := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "-C", "..", "release", "DIST="+dist, "VERSION=v0.0.0-releasetest")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	binaries := []string{"berth-linux-amd64", "berth-linux-arm64", "berth-linux-armv7"}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range binaries {
		content, err := os.ReadFile(filepath.Join(dist, b))
		if err != nil {
			t.Fatalf("make release did not write %s: %v", b, err)
		}
		if line := strings.TrimPrefix(sha256Digest(content), "sha256:") + "  " + b; !strings.Contains(string(sums), line) {
			t.Errorf("SHA256SUMS lacks %q:\n%s", line, sums)
		}
		if !regexp.MustCompile(`(?m)^` + b + ` +[0-9.]+ MiB$`).Match(out) {
			t.Errorf("make release did not report the size of %s:\n%s", b, out)
		}
	}
	info, err := exec.Command("go", "version", "-m", filepath.Join(dist, "berth-linux-armv7")).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, setting := range []string{"CGO_ENABLED=0", "GOARM=7", "-trimpath=true"} {
		if !strings.Contains(string(info), setting) {
			t.Errorf("berth-linux-armv7 was not built with %s:\n%s", setting, info)
		}
	}

	version, err := exec.Command(filepath.Join(dist, "berth-linux-amd64"), "version").Output()
	if err != nil {
		t.Fatalf("berth-linux-amd64 version: %v", err)
	}
	if !strings.HasPrefix(string(version), "berth v0.0.0-releasetest\n") {
		t.Errorf("version prints %q, want the VERSION it was built with", version)
	}
	if gitErr == nil { // a source tree without git builds without the commit
		if want := "commit " + strings.TrimSpace(string(head)) + "\n"; !strings.Contains(string(version), want) {
			t.Errorf("version prints %q, want %q", version, want)
		}
	}
}
