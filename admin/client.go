package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// lockWait bounds the wait for meta.db's lock when no server answers on the
// socket: another local command (a long gc, say) may hold it for a while,
// and then a clear message beats an endless wait.
const lockWait = time.Second

// Run runs the command name with args on the data directory dir, with the
// same output either way: inside the running server through its control
// socket when one answers, else in this process on the data directory
// opened here (which fails when another process holds it). A command's
// failure comes back as an error whose message is the command's.
func Run(ctx context.Context, dir, name string, args Args, stdio Stdio) error {
	cmd, err := lookup(name)
	if err != nil {
		return err
	}
	stdio = stdio.orEmpty()
	sock := SocketPath(dir)
	if conn, err := dialControl(sock); err == nil {
		return runRemote(ctx, conn, name, args, stdio)
	}
	s, err := store.Open(dir, store.Options{LockTimeout: lockWait, MustExist: !cmd.MakesDataDir})
	if errors.Is(err, store.ErrNotDataDir) {
		return notDataDirError(dir)
	}
	if errors.Is(err, fs.ErrPermission) {
		return permissionError(dir, name, err)
	}
	if errors.Is(err, store.ErrLocked) {
		// A server may have opened the directory after our first try and be
		// listening by now.
		conn, dialErr := dialControl(sock)
		if dialErr != nil {
			return fmt.Errorf("%w, and no server answers on %s", err, sock)
		}
		return runRemote(ctx, conn, name, args, stdio)
	}
	if err != nil {
		return err
	}
	err = cmd.run(ctx, &Env{Store: s}, args, stdio)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close data directory: %w", cerr)
	}
	return err
}

// orEmpty fills in missing streams, so a command sees the same thing with
// or without the socket in between: stdin at its end, output discarded.
func (stdio Stdio) orEmpty() Stdio {
	if stdio.In == nil {
		stdio.In = strings.NewReader("")
	}
	if stdio.Out == nil {
		stdio.Out = io.Discard
	}
	if stdio.Err == nil {
		stdio.Err = io.Discard
	}
	return stdio
}

func dialControl(path string) (*net.UnixConn, error) {
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
}

// runRemote sends one command over conn, copies its output to stdio, serves
// its stdin requests, and returns its error. Cancelling ctx closes the
// connection, which cancels the command on the server.
func runRemote(ctx context.Context, conn *net.UnixConn, name string, args Args, stdio Stdio) error {
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	payload, err := json.Marshal(request{Version: protocolVersion, Command: name, Args: args})
	if err != nil {
		return fmt.Errorf("encode control request: %w", err)
	}
	if len(payload) > maxFrame {
		return fmt.Errorf("arguments of %s are too large for the control socket", name)
	}
	fw := &frameWriter{w: conn}
	fr := newFrameReader(conn)
	if err := fw.write(frameRequest, payload); err != nil {
		// A server that refuses this client (checkPeer) answers and hangs up
		// without reading the request: its answer says more than EPIPE.
		if t, p, rerr := fr.read(); rerr == nil && t == frameExit {
			return exitError(p)
		}
		return fmt.Errorf("send %s to the server: %w", name, err)
	}
	stdin := &clientStdin{in: stdio.In}
	for {
		t, payload, err := fr.read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the server closed the control connection before %s finished: %w", name, noEOF(err))
		}
		switch t {
		case frameStdout:
			if _, err := stdio.Out.Write(payload); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
		case frameStderr:
			if _, err := stdio.Err.Write(payload); err != nil {
				return fmt.Errorf("write stderr: %w", err)
			}
		case frameStdinWant:
			if err := stdin.answer(fw, payload); err != nil {
				return fmt.Errorf("send stdin to the server: %w", err)
			}
		case frameExit:
			return exitError(payload)
		default:
			return fmt.Errorf("%w: unexpected frame %q from the server", errProtocol, t)
		}
	}
}

// exitError decodes the payload of an exit frame: nil for success, else the
// command's error message as an error.
func exitError(payload []byte) error {
	var st exitStatus
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("control protocol: bad exit status: %w", err)
	}
	if st.Error != "" {
		return errors.New(st.Error)
	}
	return nil
}
