package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/berth-registry/berth/store"
)

// SocketPath returns the path of the control socket of data directory dir.
func SocketPath(dir string) string { return store.ControlSocketPath(dir) }

// maxSocketPath is the longest path a unix socket can have on Linux: sun_path
// holds 108 bytes including the terminating NUL.
const maxSocketPath = 107

// requestTimeout bounds how long a new connection may take to send its
// request headers, so idle connections do not pile up.
const requestTimeout = 10 * time.Second

// maxRequest bounds a request body: the largest are an imported file
// (maxConfigSize) and the header of the backup an incremental follows.
const maxRequest = 256 << 20

// protocolVersion is sent by the client in the protocolHeader. A client and
// server of different versions refuse each other with a clear message (a CLI
// upgraded while an old serve still runs).
const (
	protocolVersion = "2"
	protocolHeader  = "Berth-Admin-Protocol"
)

// Trailers of a streaming operation's response: the result and the error
// are known only once the stream is written. net/http's client refuses
// trailers longer than its read buffer (4 KiB), so each is kept under
// maxTrailer.
const (
	trailerResult = "Berth-Result"
	trailerError  = "Berth-Error"
	maxTrailer    = 1500
)

// progressTotalHeader carries a streaming operation's progress total: its
// bytes before compression, so the client's bar, which counts the bytes it
// receives, is an estimate.
const progressTotalHeader = "Berth-Progress-Total"

// streamWriter notes when the first byte of a stream is written, after
// which the response headers are gone.
type streamWriter struct {
	w       io.Writer
	started bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}

// event is one line of a non-streaming operation's response body
// (application/x-ndjson): progress lines, then one line with done set,
// carrying the result, the error, or both.
type event struct {
	Progress *Progress       `json:"progress,omitempty"`
	Done     bool            `json:"done,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Handler serves every operation at its Route: POST with a JSON request
// body. A non-streaming operation answers 200 with application/x-ndjson
// events (progress when the query has progress=1, then the result); a
// streaming one answers 200 with its bytes and the result and error in
// trailers. A request refused before the operation starts answers 4xx with
// one event. Handler does no authentication: the control socket checks its
// peer, and whoever mounts it elsewhere must put it behind an admin session.
// Requests must be application/json, which a cross-site form cannot send.
func Handler(env *Env) http.Handler {
	mux := http.NewServeMux()
	for name, op := range ops {
		mux.HandleFunc("POST "+Route(name), func(w http.ResponseWriter, r *http.Request) {
			if v := r.Header.Get(protocolHeader); v != protocolVersion {
				refuse(w, http.StatusBadRequest, fmt.Errorf("the running server speaks admin protocol %s, this berth speaks %q: run the same berth version for serve and commands", protocolVersion, v))
				return
			}
			if r.Header.Get("Content-Type") != "application/json" {
				refuse(w, http.StatusUnsupportedMediaType, errors.New("admin requests are application/json"))
				return
			}
			op.serve(r.Context(), env, w, http.MaxBytesReader(w, r.Body, maxRequest), r.URL.Query().Get("progress") == "1")
		})
	}
	mux.HandleFunc(routePrefix, func(w http.ResponseWriter, r *http.Request) {
		refuse(w, http.StatusNotFound, fmt.Errorf("the running server has no operation at %s %s: is it an older berth than this one?", r.Method, r.URL.Path))
	})
	return mux
}

// refuse answers a request the operation never saw.
func refuse(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(event{Done: true, Error: err.Error()})
}

// serve decodes the request onto the defaults, runs the operation and
// writes its events or stream.
func (op *Op[Req, Res]) serve(ctx context.Context, env *Env, w http.ResponseWriter, body io.Reader, progress bool) {
	req := op.Defaults
	dec := json.NewDecoder(body)
	// A field this server does not know is a flag it would silently ignore.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, fmt.Errorf("%s: bad request: %w", op.Name, err))
		return
	}
	flusher, _ := w.(http.Flusher)
	task := &Task{}
	if op.Streams {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Trailer", trailerResult+", "+trailerError)
		out := &streamWriter{w: w}
		task.Out = out
		if progress {
			// The stream has no room for progress events, but the total
			// is known before the first byte (a backup sizes its snapshot
			// first): it goes in a header, and the client counts bytes.
			task.progress = func(p Progress) {
				if !out.started && p.Total > 0 {
					w.Header().Set(progressTotalHeader, strconv.FormatInt(p.Total, 10))
				}
			}
		}
		res, err := op.run(ctx, env, task, req)
		if res != nil {
			b, merr := json.Marshal(res)
			switch {
			case merr != nil:
				err = fmt.Errorf("%s: encode result: %w", op.Name, merr)
			case len(b) > maxTrailer:
				err = fmt.Errorf("%s: a result of %d bytes does not fit in a trailer", op.Name, len(b))
			default:
				w.Header().Set(trailerResult, string(b))
			}
		}
		w.Header().Set(trailerError, errorString(err))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	var mu sync.Mutex // progress may come from the operation's goroutines
	enc := json.NewEncoder(w)
	send := func(e event) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(e) // a client that is gone cancels ctx; nothing to tell it
		if flusher != nil {
			flusher.Flush()
		}
	}
	if progress {
		task.progress = throttle(func(p Progress) { send(event{Progress: &p}) })
	}
	res, err := op.run(ctx, env, task, req)
	final := event{Done: true, Error: errorString(err)}
	if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil {
			final.Error = fmt.Sprintf("%s: encode result: %v", op.Name, merr)
		}
		final.Result = b
	}
	send(final)
}

// throttle passes progress on at most every progressInterval, and always
// when the phase changes or the work is done, so a fast loop does not turn
// into a flood of events.
func throttle(f func(Progress)) func(Progress) {
	var last time.Time
	var phase string
	return func(p Progress) {
		now := time.Now()
		if p.Phase == phase && p.Done != p.Total && now.Sub(last) < progressInterval {
			return
		}
		last, phase = now, p.Phase
		f(p)
	}
}

const progressInterval = 100 * time.Millisecond

// peerKey is the context key of a connection's peer check result.
type peerKey struct{}

// ServeControl listens on the unix socket path (normally
// SocketPath(env.Store.Dir())) and serves Handler(env) there, refusing
// clients of another user (checkPeer). It removes a stale socket file left
// by a crashed server, but refuses to start when something answers on path
// or when path is not a socket. The socket is created with mode 0600.
//
// stop cancels running operations, closes the listener and every
// connection, waits for the handlers to return and removes the socket file;
// it may be called more than once. Cancelling ctx does the same. Call stop
// before closing env.Store.
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
	var running sync.WaitGroup
	handler := Handler(env)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err, _ := r.Context().Value(peerKey{}).(error); err != nil {
				env.logger().Warn("control socket: refused a client", "err", err)
				refuse(w, http.StatusForbidden, err)
				return
			}
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: requestTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			running.Add(1)
			if uc, ok := c.(*net.UnixConn); ok {
				if err := checkPeer(uc); err != nil {
					return context.WithValue(ctx, peerKey{}, err)
				}
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				running.Done()
			}
		},
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln) // returns http.ErrServerClosed on stop
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			// Close also closes the listener, which unlinks the socket file,
			// and every connection, which ends the handlers' writes.
			srv.Close()
			<-served
			running.Wait()
		})
	}
	context.AfterFunc(ctx, stop)
	return stop, nil
}

// logger returns env.Logger, or the default logger when it is nil.
func (env *Env) logger() *slog.Logger {
	if env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
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
