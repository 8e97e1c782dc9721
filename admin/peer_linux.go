package admin

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses a connection from a process of another user than the
// server's own (root excepted). The socket's mode 0600 already says so; this
// holds too where DATA sits on a filesystem that ignores modes.
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("read peer credentials: %w", credErr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("uid %d may not administer this data directory (owned by uid %d)", cred.Uid, os.Getuid())
	}
	return nil
}
