// Package server is berth's HTTP face: the OCI Distribution API under /v2/,
// the token endpoint, health and metrics, served with fiber. It turns
// requests into store calls and store errors into OCI error bodies, and holds
// no registry logic of its own.
package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// Config is what serve's flags decide.
type Config struct {
	// Logger receives access-log lines and errors; nil means slog.Default().
	Logger *slog.Logger
	// Auth checks every /v2 request and serves /token; nil serves without
	// authentication (--auth none).
	Auth *auth.Service
	// Service is the token audience and the challenge's service (--service).
	Service string
	// Timeouts bound slow clients; zero fields mean DefaultTimeouts.
	Timeouts Timeouts
	// Limits bound the connections held; zero fields mean the defaults
	// (DefaultMaxConnections, DefaultMaxConnectionsPerAddr).
	Limits Limits
	// TLS, when set, makes Serve speak HTTPS (Certificate.TLSConfig).
	TLS *tls.Config
	// TrustedProxies are the peers whose X-Forwarded-For, -Proto and -Host
	// headers are believed (proxy.go); none when empty.
	TrustedProxies []netip.Prefix
	// Version is reported by the berth_build_info metric.
	Version string
	// OnPull, when set, is called with a pull event for each manifest GET
	// while some webhook wants pulls. It must not block: the events
	// package collects them and writes them in batches.
	OnPull func(store.Event)
	// NoPullTimes stops manifest GETs from noting last-pull times
	// (store.RecordPull), which retention's keep-pulled rules read. Only
	// for measuring what the noting costs.
	NoPullTimes bool
	// MaxUploadsPerUser caps the upload sessions one account (or, without
	// one, one client address) may have open; 0 means no cap.
	MaxUploadsPerUser int
	// UI, when not nil, is mounted on the same port (the web UI under
	// /ui/, with / redirecting there). An interface so that server need
	// not import the packages the UI uses (admin).
	UI Mounter
	// Mirror, when not nil, is the pull-through cache: pulls of its
	// namespaces are filled from upstream registries (mirror.go).
	Mirror Mirror
	// StreamBlobs makes blob GETs stream the bytes through berth even when
	// the blob store can hand clients a URL (S3: --s3-redirect=false);
	// otherwise they answer 307 to a presigned URL (blobs.go).
	StreamBlobs bool
}

// Mounter adds its routes to the application. Its handlers run after the
// server's middleware (recover, request id, client address, access log).
type Mounter interface {
	Mount(r fiber.Router)
}

// Server serves one store over HTTP. Create it with New.
type Server struct {
	store   *store.Store
	auth    *auth.Service
	service string
	log     *slog.Logger
	app     *fiber.App
	tls     *tls.Config
	proxies proxySet
	metrics *metrics
	onPull  func(store.Event)
	// pullTimes notes each manifest GET for retention (Config.NoPullTimes).
	pullTimes bool
	ui        Mounter
	mirror    Mirror
	// redirectBlobs answers blob GETs with a presigned URL where the blob
	// store has them (!Config.StreamBlobs).
	redirectBlobs bool
	// timeouts and limits are kept by the connections (conn.go,
	// listener.go), not by fasthttp.
	timeouts Timeouts
	limits   Limits
	// maxUploads caps the open upload sessions per owner (uploadOwner).
	maxUploads int
	// draining is set when Shutdown begins, so /readyz turns 503.
	draining atomic.Bool
	// conns is the listener Serve wraps, for Shutdown.
	conns atomic.Pointer[connListener]
}

// New builds the HTTP application for st.
func New(st *store.Store, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Service == "" {
		cfg.Service = "berth"
	}
	s := &Server{
		store: st, auth: cfg.Auth, service: cfg.Service, log: cfg.Logger,
		tls: cfg.TLS, proxies: cfg.TrustedProxies, onPull: cfg.OnPull, ui: cfg.UI, mirror: cfg.Mirror, metrics: newMetrics(st, cfg.Auth, cfg.Version, cfg.Logger),
		timeouts: cfg.Timeouts.withDefaults(), limits: cfg.Limits, maxUploads: cfg.MaxUploadsPerUser,
		pullTimes: !cfg.NoPullTimes, redirectBlobs: !cfg.StreamBlobs,
	}
	if s.limits.MaxConnections <= 0 {
		s.limits.MaxConnections = DefaultMaxConnections
	}
	if s.limits.MaxConnectionsPerAddr <= 0 {
		s.limits.MaxConnectionsPerAddr = DefaultMaxConnectionsPerAddr
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "berth",
		DisableStartupMessage: true,
		// Blob uploads arrive as request body streams; without this fasthttp
		// would buffer each body whole in memory.
		StreamRequestBody: true,
		// BodyLimit is not enforced on streamed bodies; manifests have their
		// own cap (store.MaxManifestSize) in putManifest.
		BodyLimit: store.MaxManifestSize,
		// No ReadTimeout, WriteTimeout or IdleTimeout: the connection
		// keeps its own deadlines (Timeouts in conn.go), because
		// fasthttp's read timeout covers headers and body together.
		ErrorHandler: s.handleError,
		// Repository names are case-sensitive and may end in a slash-less
		// path; routing is ours (parseTarget), not fiber's.
		CaseSensitive:     true,
		StrictRouting:     false,
		UnescapePath:      false,
		ReduceMemoryUsage: false,
	})
	s.routes()
	return s
}

// App exposes the fiber application, for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve accepts connections on ln until Shutdown, over TLS when the
// Config asked for it.
func (s *Server) Serve(ln net.Listener) error {
	cl := s.newConnListener(ln)
	s.conns.Store(cl)
	done := make(chan struct{})
	defer close(done)
	go cl.releaseMemory(done)
	ln = cl
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	return s.app.Listener(ln)
}

// Shutdown stops accepting connections and waits for running requests until
// ctx ends; from its start /readyz answers 503.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	done := make(chan struct{})
	defer close(done)
	if cl := s.conns.Load(); cl != nil {
		// Connections that never sent a request would hold fasthttp's
		// shutdown until the timeout; close them as they are found.
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				cl.closeUnused()
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return s.app.ShutdownWithContext(ctx)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
