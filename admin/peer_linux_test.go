package admin

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/internal/storetest"
)

const peerHelperEnv = "BERTH_TEST_PEER_SOCKET"

// TestCheckPeer_OtherUser runs a client as user nobody against a socket
// whose mode would let it in: the uid check must refuse it anyway.
func TestCheckPeer_OtherUser(t *testing.T) {
	fixtures.RequireRoot(t, "running a client as another user")
	s := storetest.Open(t, openTempDir(t))
	mustServe(t, s)
	sock := SocketPath(s.Dir())
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	exe := copyTestBinary(t)
	cmd := exec.Command(exe, "-test.run=^TestPeerHelperProcess$", "-test.v")
	cmd.Dir = filepath.Dir(exe)
	cmd.Env = append(os.Environ(), peerHelperEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "exit: uid 65534 may not administer this data directory") {
		t.Errorf("client as nobody: %v\n%s", err, out)
	}
}

// TestPeerHelperProcess is the client of TestCheckPeer_OtherUser, run in a
// process of its own; it does nothing in a normal test run.
func TestPeerHelperProcess(t *testing.T) {
	sock := os.Getenv(peerHelperEnv)
	if sock == "" {
		return
	}
	var out strings.Builder
	err := Call(context.Background(), filepath.Dir(sock), UserListOp, UserList{}, Stdio{Out: &out, Err: &out})
	t.Logf("exit: %v", err)
}

// openTempDir is t.TempDir, opened for other users to traverse.
func openTempDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyTestBinary copies the running test binary where another user may run it.
func copyTestBinary(t *testing.T) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exe := filepath.Join(openTempDir(t), "admin.test")
	dst, err := os.OpenFile(exe, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return exe
}
