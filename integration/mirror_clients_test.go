package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/internal/storetest"
)

// platformImage is a random image whose config names this machine's
// platform, so that Docker and containerd accept it for a pull.
func platformImage(t testing.TB) v1.Image {
	t.Helper()
	img, err := random.Image(128<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pushImage(t testing.TB, img v1.Image, ref string) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remoteOptions(t)...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d
}

// daemon is an outside daemon a test started (dockerd, containerd).
type daemon struct {
	cmd  *exec.Cmd
	log  *storetest.SyncBuffer
	done chan struct{}
}

// startDaemon runs bin with args, with no proxy for 127.0.0.1 and a dead
// one for everything else (so a fallback to the real Docker Hub fails
// here, on this machine), and waits until ready answers true.
func startDaemon(t *testing.T, ready func() bool, bin string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(bin, args...), log: &storetest.SyncBuffer{}, done: make(chan struct{})}
	d.cmd.Env = append(os.Environ(), "HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			t.Errorf("%s did not stop within 20s", bin)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case <-d.done:
			t.Fatalf("%s exited before it was ready:\n%s", bin, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in 60s:\n%s", bin, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

func runTool(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// shortTempDir is a directory with a short path, for unix sockets (their
// paths are limited to about 100 bytes), removed when the test ends.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestMirror_DockerRegistryMirrors: a Docker daemon with berth in its
// registry-mirrors pulls a Docker Hub name (alpine → library/alpine)
// through berth, anonymously, from berth's upstream.
func TestMirror_DockerRegistryMirrors(t *testing.T) {
	fixtures.RequireRoot(t, "dockerd")
	dockerd := fixtures.RequireTool(t, "dockerd")
	docker := fixtures.RequireTool(t, "docker")
	up := startDistribution(t, "")
	proxy := startCountingProxy(t, "http://"+up.Addr)
	want := pushImage(t, platformImage(t), up.Addr+"/library/berthtest:3.20")

	b, _ := startAuthServer(t, "")
	b.berth(t, "", "mirror", "add", "docker.io", "--url", proxy.srv.URL, "--docker-hub", "--anonymous")

	dir := shortTempDir(t, "dk")
	sock := filepath.Join(dir, "docker.sock")
	cfg, _ := json.Marshal(map[string]any{
		"registry-mirrors":    []string{"http://" + b.Addr},
		"insecure-registries": []string{b.Addr},
	})
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	host := "unix://" + sock
	startDaemon(t, func() bool {
		_, err := runTool(t.Context(), docker, "-H", host, "version")
		return err == nil
	}, dockerd, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "x"), "-H", host,
		"--pidfile", filepath.Join(dir, "docker.pid"), "--config-file", filepath.Join(dir, "daemon.json"),
		"--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none", "--userland-proxy=false")

	out, err := runTool(t.Context(), docker, "-H", host, "pull", "berthtest:3.20")
	if err != nil {
		t.Fatalf("docker pull berthtest:3.20: %v\n%s", err, out)
	}
	if !strings.Contains(out, want.String()) {
		t.Errorf("docker pull printed no digest %s:\n%s", want, out)
	}
	if proxy.count("GET", "/v2/library/berthtest/manifests/3.20") == 0 && proxy.count("GET", "/v2/library/berthtest/manifests/"+want.String()) == 0 {
		t.Errorf("the upstream saw no manifest request: the pull did not go through berth")
	}
	if lines := b.logLines("repo=docker.io/library/berthtest"); len(lines) == 0 {
		t.Errorf("berth's access log shows no pull of docker.io/library/berthtest")
	}
	r := send(t, b.request(t, "GET", "/v2/_catalog", nil, "Authorization", basicAuth("admin", adminPassword(t, b))))
	if !strings.Contains(string(r.Body), "docker.io/library/berthtest") {
		t.Errorf("catalog lacks the cached image: %s", r)
	}
}

// TestMirror_ContainerdHostsToml: containerd's ctr, with a hosts.toml that
// names berth as a mirror of docker.io, pulls through it (containerd adds
// ?ns=docker.io to each request).
func TestMirror_ContainerdHostsToml(t *testing.T) {
	fixtures.RequireRoot(t, "containerd")
	containerd := fixtures.RequireTool(t, "containerd")
	ctr := fixtures.RequireTool(t, "ctr")
	up := startDistribution(t, "")
	proxy := startCountingProxy(t, "http://"+up.Addr)
	want := pushImage(t, platformImage(t), up.Addr+"/library/berthctr:1")

	b := startServer(t, "")
	// containerd sends ns=docker.io; the upstream here is the proxy, so the
	// mirror is found by its name (a real one would be by its URL's host).
	addMirror(t, b, "docker.io", nil, "--url", proxy.srv.URL)

	dir := shortTempDir(t, "ct")
	addr := filepath.Join(dir, "c.sock")
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(dir, "hosts", "docker.io")
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf("server = \"https://registry-1.docker.io\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", b.Addr)
	if err := os.WriteFile(filepath.Join(hosts, "hosts.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, func() bool {
		_, err := runTool(t.Context(), ctr, "--address", addr, "version")
		return err == nil
	}, containerd, "--config", filepath.Join(dir, "config.toml"))

	out, err := runTool(t.Context(), ctr, "--address", addr, "-n", "berthtest", "images", "pull", "--snapshotter", "native",
		"--hosts-dir", filepath.Join(dir, "hosts"), "docker.io/library/berthctr:1")
	if err != nil {
		t.Fatalf("ctr images pull: %v\n%s", err, out)
	}
	if !strings.Contains(out, want.String()) {
		t.Errorf("ctr printed no digest %s:\n%s", want, out)
	}
	if lines := b.logLines("repo=docker.io/library/berthctr"); len(lines) == 0 {
		t.Errorf("berth's access log shows no pull routed by ns to docker.io/library/berthctr:\n%s", b.Log())
	}
	if proxy.count("GET", "blobs") == 0 {
		t.Errorf("the upstream saw no blob request")
	}
}
