package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// SocketPath returns the path of the control socket of data directory dir.
func SocketPath(dir string) string { return filepath.Join(dir, "control.sock") }

// maxSocketPath is the longest path a unix socket can have on Linux: sun_path
// holds 108 bytes including the terminating NUL.
const maxSocketPath = 107

// requestTimeout bounds how long a new connection may take to send its
// request, so idle connections do not pile up.
const requestTimeout = 10 * time.Second

// ServeControl listens on the unix socket path (normally
// SocketPath(env.Store.Dir())) and runs each command a client sends against
// env, in this process. It removes a stale socket file left by a crashed
// server, but refuses to start when something answers on path or when path
// is not a socket. The socket is created with mode 0600.
//
// Commands run concurrently, each on its own connection. stop closes the
// listener, cancels running commands, closes their connections, waits for
// them to return and removes the socket file; it may be called more than
// once. Cancelling ctx does the same. Call stop before closing env.Store.
func ServeControl(ctx context.Context, env *Env, path string) (stop func(), err error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is %d bytes, more than a unix socket allows (%d): use a shorter --data path", path, len(path), maxSocketPath)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	// Listen creates the file with the umask's mode; checkPeer covers the
	// moment before this chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	srv := &controlServer{env: env, ln: ln, ctx: ctx, cancel: cancel, conns: make(map[*net.UnixConn]struct{})}
	srv.wg.Add(1)
	go srv.acceptLoop()
	context.AfterFunc(ctx, srv.stop)
	return srv.stop, nil
}

// removeStaleSocket removes path if it is a socket nobody answers on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: move it away", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("another process answers on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

type controlServer struct {
	env    *Env
	ln     *net.UnixListener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*net.UnixConn]struct{}

	stopOnce sync.Once
}

func (srv *controlServer) stop() {
	srv.stopOnce.Do(func() {
		srv.cancel()
		srv.mu.Lock()
		srv.closed = true
		for conn := range srv.conns {
			conn.Close()
		}
		srv.mu.Unlock()
		// Closing a listener made by Listen also unlinks the socket file.
		srv.ln.Close()
		srv.wg.Wait()
	})
}

func (srv *controlServer) acceptLoop() {
	defer srv.wg.Done()
	for {
		conn, err := srv.ln.AcceptUnix()
		if err != nil {
			if srv.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of
			// spinning, and keep serving.
			srv.env.logger().Warn("control socket: accept", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-srv.ctx.Done():
				return
			}
			continue
		}
		if !srv.track(conn) {
			conn.Close()
			return
		}
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer srv.untrack(conn)
			srv.handle(conn)
		}()
	}
}

func (srv *controlServer) track(conn *net.UnixConn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return false
	}
	srv.conns[conn] = struct{}{}
	return true
}

func (srv *controlServer) untrack(conn *net.UnixConn) {
	srv.mu.Lock()
	delete(srv.conns, conn)
	srv.mu.Unlock()
	conn.Close()
}

// handle runs the one command a connection carries.
func (srv *controlServer) handle(conn *net.UnixConn) {
	fw := &frameWriter{w: conn}
	if err := checkPeer(conn); err != nil {
		srv.env.logger().Warn("control socket: refused a client", "err", err)
		sendExit(fw, err)
		return
	}
	fr := newFrameReader(conn)
	req, err := readRequest(conn, fr)
	if err != nil {
		sendExit(fw, err)
		return
	}
	cmd, ok := commands[req.Command]
	if !ok {
		sendExit(fw, fmt.Errorf("the running server has no command %q: is it an older berth than this one?", req.Command))
		return
	}
	ctx, cancel := context.WithCancel(srv.ctx)
	defer cancel()
	stdio := Stdio{
		In:  startRemoteStdin(ctx, cancel, fr, fw),
		Out: frameStream{fw, frameStdout},
		Err: frameStream{fw, frameStderr},
	}
	err = cmd.run(ctx, srv.env, req.Args, stdio)
	// The server's log is the record of who changed what while it ran.
	// Flags stay out of it: they may hold password hashes.
	srv.env.logger().Info("admin command", "command", req.Command, "args", req.Args.Words, "err", err)
	sendExit(fw, err)
}

// readRequest reads and checks the first frame of a connection.
func readRequest(conn *net.UnixConn, fr *frameReader) (request, error) {
	var req request
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	defer conn.SetReadDeadline(time.Time{})
	t, payload, err := fr.read()
	if err != nil {
		return req, fmt.Errorf("read control request: %w", err)
	}
	if t != frameRequest {
		return req, fmt.Errorf("control protocol: expected a request, got frame %q", t)
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return req, fmt.Errorf("control protocol: bad request: %w", err)
	}
	if req.Version != protocolVersion {
		return req, fmt.Errorf("the running server speaks control protocol %d, this berth speaks %d: run the same berth version for serve and commands", protocolVersion, req.Version)
	}
	return req, nil
}

// sendExit ends a connection's conversation with err's message. A client
// that is gone cannot be told, so the write error is dropped.
func sendExit(fw *frameWriter, err error) {
	var st exitStatus
	if err != nil {
		st.Error = err.Error()
	}
	payload, _ := json.Marshal(st) // a struct of one string cannot fail
	if len(payload) > maxFrame {
		// JSON escaping can grow a string up to six times.
		payload, _ = json.Marshal(exitStatus{Error: st.Error[:maxFrame/8] + "…"})
	}
	fw.write(frameExit, payload)
}
