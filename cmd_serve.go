package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/mirror"
	"github.com/berth-registry/berth/server"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
	"github.com/berth-registry/berth/ui"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the registry API",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "0.0.0.0:5000", EnvVars: []string{"BERTH_ADDR"}, Usage: "address to listen on"},
			&cli.StringFlag{Name: "auth", Value: "token", EnvVars: []string{"BERTH_AUTH"}, Usage: "token (users and access rules) or none (anyone may do anything)"},
			&cli.BoolFlag{Name: "anonymous-pull", EnvVars: []string{"BERTH_ANONYMOUS_PULL"}, Usage: "let clients that are not signed in pull"},
			&cli.StringFlag{Name: "service", Value: "berth", EnvVars: []string{"BERTH_SERVICE"}, Usage: "the token service name (audience)"},
			durationFlag("token-ttl", 5*time.Minute, "lifetime of access tokens", "BERTH_TOKEN_TTL"),
			durationFlag("refresh-token-ttl", auth.DefaultRefreshTTL, "lifetime of refresh tokens (docker login's saved sign-in); 0 keeps the default", "BERTH_REFRESH_TOKEN_TTL"),
			&cli.IntFlag{Name: "refresh-tokens-per-user", Value: auth.DefaultRefreshPerUser, EnvVars: []string{"BERTH_REFRESH_TOKENS_PER_USER"}, Usage: "refresh tokens a user may hold; a new one revokes the oldest"},
			durationFlag("gc-interval", 0, "run garbage collection this often, such as 24h (0: never)", "BERTH_GC_INTERVAL"),
			&cli.StringFlag{Name: "free-low", EnvVars: []string{"BERTH_FREE_LOW"},
				Usage: "below this much free disk (such as 10%), prune the least recently used tags of repositories a retention rule covers; refuse pushes if that is not enough (empty: off)"},
			&cli.StringFlag{Name: "free-high", EnvVars: []string{"BERTH_FREE_HIGH"}, Usage: "prune until this much is free (default: --free-low plus 5%)"},
			durationFlag("free-check-interval", 10*time.Second, "how often the free-space watermark measures the disk", "BERTH_FREE_CHECK_INTERVAL"),
			&cli.BoolFlag{Name: "no-pull-times", EnvVars: []string{"BERTH_NO_PULL_TIMES"},
				Usage: "do not record when manifests are pulled (retention's --keep-pulled and the watermark then go by push times)"},
			durationFlag("free-gc-grace", time.Minute, "the watermark's gc keeps what was pushed more recently than this", "BERTH_FREE_GC_GRACE"),
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"BERTH_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"BERTH_LOG_FORMAT"}, Usage: "text (key=value) or json, one line per record"},
			&cli.BoolFlag{Name: "tls", EnvVars: []string{"BERTH_TLS"}, Usage: "serve HTTPS with the certificate that 'berth tls init' wrote in DATA/tls"},
			&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"BERTH_TLS_CERT"}, Usage: "serve HTTPS with this PEM certificate (chain) file; needs --tls-key"},
			&cli.StringFlag{Name: "tls-key", EnvVars: []string{"BERTH_TLS_KEY"}, Usage: "the PEM private key of --tls-cert"},
			&cli.StringSliceFlag{Name: "trusted-proxy", Value: cli.NewStringSlice(server.DefaultTrustedProxies...), EnvVars: []string{"BERTH_TRUSTED_PROXY"},
				Usage: "a reverse proxy (CIDR or address, repeatable; none: nobody) whose X-Forwarded-For, -Proto and -Host are believed"},
			durationFlag("webhook-backoff", time.Second, "wait after a webhook's first failed attempt; it doubles with each failure", "BERTH_WEBHOOK_BACKOFF"),
			durationFlag("webhook-backoff-max", 5*time.Minute, "the longest wait between two attempts of one webhook event", "BERTH_WEBHOOK_BACKOFF_MAX"),
			durationFlag("shutdown-timeout", 30*time.Second, "how long running requests may finish after SIGTERM", "BERTH_SHUTDOWN_TIMEOUT"),
			&cli.IntFlag{Name: "max-connections", EnvVars: []string{"BERTH_MAX_CONNECTIONS"},
				Usage: fmt.Sprintf("most client connections held at once (0: %d, or less when the file limit is lower)", server.DefaultMaxConnections)},
			&cli.IntFlag{Name: "max-connections-per-address", Value: server.DefaultMaxConnectionsPerAddr, EnvVars: []string{"BERTH_MAX_CONNECTIONS_PER_ADDRESS"},
				Usage: "most connections one client address may hold (trusted proxies are exempt)"},
			durationFlag("header-timeout", server.DefaultTimeouts.Header,
				"time a client has to send a request's headers (a new connection: from its accept)", "BERTH_HEADER_TIMEOUT"),
			durationFlag("idle-timeout", server.DefaultTimeouts.Idle,
				"how long a kept-alive connection may wait for its next request", "BERTH_IDLE_TIMEOUT"),
			durationFlag("body-timeout", server.DefaultTimeouts.Body,
				"a request body must deliver --body-min-bytes in every interval this long (a slow upload that keeps moving is never cut)", "BERTH_BODY_TIMEOUT"),
			&cli.Int64Flag{Name: "body-min-bytes", Value: server.DefaultTimeouts.BodyMinBytes, EnvVars: []string{"BERTH_BODY_MIN_BYTES"},
				Usage: "bytes a request body must deliver per --body-timeout"},
			durationFlag("write-timeout", server.DefaultTimeouts.Write,
				"time a client has to take each piece of a response (256 KiB of a blob)", "BERTH_WRITE_TIMEOUT"),
			durationFlag("upload-ttl", store.DefaultUploadTTL,
				"upload sessions idle this long are removed, checked periodically (0: never)", "BERTH_UPLOAD_TTL"),
			&cli.StringFlag{Name: "blob-store", Value: store.DirLocation, EnvVars: []string{"BERTH_BLOB_STORE"},
				Usage: "where blob bytes live: dir (DATA/blobs) or s3://bucket/prefix?endpoint=URL&region=R&path-style=true; recorded in DATA on first use"},
			&cli.StringFlag{Name: "s3-credentials-file", EnvVars: []string{"BERTH_S3_CREDENTIALS_FILE"},
				Usage: "file (mode 0600) with AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines; default: those environment variables"},
			&cli.StringFlag{Name: "s3-public-endpoint", EnvVars: []string{"BERTH_S3_PUBLIC_ENDPOINT"},
				Usage: "S3 endpoint URL that clients can reach, for blob redirects (default: the blob store's endpoint)"},
			&cli.BoolFlag{Name: "s3-redirect", Value: true, EnvVars: []string{"BERTH_S3_REDIRECT"},
				Usage: "answer blob GETs with a 307 to a presigned S3 URL; false streams them through berth"},
			&cli.IntFlag{Name: "max-uploads-per-user", Value: store.DefaultMaxUploadsPerOwner, EnvVars: []string{"BERTH_MAX_UPLOADS_PER_USER"},
				Usage: "most upload sessions one account may have open (0: no limit)"},
		},
		Action: runServe,
	}
}

// refreshCleanupInterval is how often serve deletes expired refresh tokens.
// An expired token is refused whenever it comes; the sweep only keeps the
// ones that never come back from piling up, so hourly is plenty.
const refreshCleanupInterval = time.Hour

func runServe(c *cli.Context) error {
	log, err := newLogger(c.String("log-format"), c.String("log-level"))
	if err != nil {
		return err
	}
	proxies, err := server.ParseTrustedProxies(c.StringSlice("trusted-proxy"))
	if err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	if err := checkServeLimits(c); err != nil {
		return err
	}
	dir := dataDir(c)
	cert, err := loadServeCertificate(c, dir)
	if err != nil {
		return err
	}
	watermark, err := watermarkOf(c)
	if err != nil {
		return err
	}
	blobOpts := store.BlobStoreOptions{
		CredentialsFile: c.String("s3-credentials-file"), PublicEndpoint: c.String("s3-public-endpoint"),
	}
	blobs, err := store.OpenBlobStore(dir, c.String("blob-store"), blobOpts)
	if err != nil {
		return err
	}
	st, err := store.Open(dir, store.Options{Blobs: blobs, BlobOptions: blobOpts})
	if errors.Is(err, store.ErrBlobStoreMismatch) {
		return fmt.Errorf("%w\nTry: berth serve --blob-store '<the recorded one>' (or move the blobs with berth blobs migrate)", err)
	}
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%s is in use by another berth process (is the server already running?)", dir)
	}
	if errors.Is(err, fs.ErrPermission) {
		owner, name := admin.DataOwner(dir)
		return fmt.Errorf("%w: %s belongs to %s\nTry: start berth as that user (sudo -u %s berth serve ..., or systemctl start berth)", err, dir, owner, name)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	// Bind before the first admin is created: a port in use must not leave
	// an admin and a printed password behind a server that never ran.
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.String("addr"), err)
	}
	defer ln.Close()

	cfg := server.Config{
		Logger: log, Service: c.String("service"), TrustedProxies: proxies, Version: version,
		Timeouts: server.Timeouts{
			Header: durationOf(c, "header-timeout"), Idle: durationOf(c, "idle-timeout"),
			Body: durationOf(c, "body-timeout"), BodyMinBytes: c.Int64("body-min-bytes"), Write: durationOf(c, "write-timeout"),
		},
		Limits: server.Limits{
			MaxConnections:        c.Int("max-connections"),
			MaxConnectionsPerAddr: c.Int("max-connections-per-address"),
		},
		MaxUploadsPerUser: c.Int("max-uploads-per-user"),
		NoPullTimes:       c.Bool("no-pull-times"),
		StreamBlobs:       !c.Bool("s3-redirect"),
	}
	if cfg.Limits.MaxConnections == 0 {
		cfg.Limits.MaxConnections = server.MaxConnectionsFor(fileLimit())
	}
	if cert != nil {
		cfg.TLS = cert.TLSConfig()
	}
	switch c.String("auth") {
	case "none":
		log.Warn("AUTHENTICATION IS OFF (--auth none): anyone who reaches this port can push, pull and delete")
	case "token":
		if durationOf(c, "refresh-token-ttl") < 0 || c.Int("refresh-tokens-per-user") < 1 {
			return errors.New("--refresh-token-ttl must not be negative and --refresh-tokens-per-user must be at least 1")
		}
		cfg.Auth, err = auth.NewService(st, auth.Options{
			Issuer:         c.String("service"),
			TTL:            durationOf(c, "token-ttl"),
			AnonymousPull:  c.Bool("anonymous-pull"),
			RefreshTTL:     durationOf(c, "refresh-token-ttl"),
			RefreshPerUser: c.Int("refresh-tokens-per-user"),
		})
		if err != nil {
			return err
		}
		// Rules that do not compile would fail every request but /v2/:
		// refuse to start instead, saying which.
		if _, err := cfg.Auth.Authorizer(); err != nil {
			return fmt.Errorf("%w\nTry: %s, then acl del the rule", err, admin.DataCommand(dir, "acl list"))
		}
		if err := admin.EnsureInitialAdmin(st, os.Stdout, isTerminal(os.Stdout)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--auth must be token or none, not %q", c.String("auth"))
	}

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go reloadOnHangup(ctx, cert, log)
	env := &admin.Env{Store: st, Logger: log, Version: versionInfo()}
	stopControl, err := admin.ServeControl(ctx, env, admin.SocketPath(dir))
	if err != nil {
		return err
	}
	defer stopControl()
	go admin.RunGCLoop(ctx, st, durationOf(c, "gc-interval"), store.GCOptions{}, log)
	go admin.RunUploadExpiry(ctx, st, durationOf(c, "upload-ttl"), log)
	go admin.RunWatermark(ctx, st, watermark, log)
	// Last-pull times (retention's keep-pulled) are noted in memory and
	// written once a second; Close writes the rest at shutdown.
	go st.FlushPullsEvery(ctx, time.Second, func(err error) { log.Warn("last-pull times not written", "err", err) })
	if cfg.Auth != nil {
		go cfg.Auth.RunRefreshCleanup(ctx, refreshCleanupInterval, log)
	}

	stopEvents := startEvents(ctx, st, &cfg, ln.Addr().String(), durationOf(c, "webhook-backoff"), durationOf(c, "webhook-backoff-max"), log)
	defer stopEvents()
	// The web UI's admin pages run the same operations as the control
	// socket, on the same store; server only mounts it (it must not
	// import admin).
	uiOpts := ui.Options{Store: st, Auth: cfg.Auth, Admin: env, Secure: cert != nil, Logger: log, Version: version, Started: time.Now(), Context: ctx}
	if cert != nil {
		uiOpts.CertExpiry = func() time.Time { return cert.Leaf().NotAfter }
	}
	web, err := ui.New(uiOpts)
	if err != nil {
		return err
	}
	cfg.UI = web
	cache := mirror.New(st, log)
	cfg.Mirror = cache
	// Prefetch schedules (berth mirror schedule) stop with ctx; the store
	// closes only after their runs have ended.
	schedCtx, stopSchedules := context.WithCancel(ctx)
	schedules := make(chan struct{})
	go func() { defer close(schedules); cache.RunSchedules(schedCtx) }()
	defer func() { stopSchedules(); <-schedules }()
	srv := server.New(st, cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("berth serving", "addr", ln.Addr().String(), "tls", cert != nil, "data", dir, "blobs", st.BlobStore().Location(), "version", version,
		"max_connections", cfg.Limits.MaxConnections, "max_connections_per_address", cfg.Limits.MaxConnectionsPerAddr)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// A second SIGINT or SIGTERM now ends the process at once.
	stop()
	log.Info("shutting down", "timeout", durationOf(c, "shutdown-timeout"))
	sctx, cancel := context.WithTimeout(context.Background(), durationOf(c, "shutdown-timeout"))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}

// startEvents starts the webhook senders and the pull-event recorder, and
// registers the queue metrics. The returned stop waits for them to end
// (after ctx does), so the store outlives them.
func startEvents(ctx context.Context, st *store.Store, cfg *server.Config, addr string, backoff, backoffMax time.Duration, log *slog.Logger) (stop func()) {
	if err := prometheus.Register(events.QueueCollector{Store: st}); err != nil {
		log.Warn("webhook metrics not registered", "err", err)
	}
	pulls := events.NewPullRecorder(st, log)
	cfg.OnPull = pulls.Record
	ectx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pulls.Run(ectx) }()
	go func() {
		defer wg.Done()
		events.Run(ectx, st, events.Options{
			Logger: log, MinBackoff: backoff, MaxBackoff: backoffMax,
			Source: events.Source{Addr: addr, InstanceID: store.NewEventID()},
		})
	}()
	return func() { cancel(); wg.Wait() }
}

// fileLimit is the process's file descriptor limit (Go raises the soft
// limit to the hard one at start), 0 when unknown.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}

// checkServeLimits refuses limits and timeouts that would make the server
// useless: negative counts, zero or negative durations.
func checkServeLimits(c *cli.Context) error {
	for _, name := range []string{"max-connections", "max-connections-per-address", "max-uploads-per-user"} {
		if c.Int(name) < 0 {
			return fmt.Errorf("--%s must not be negative", name)
		}
	}
	for _, name := range []string{"header-timeout", "idle-timeout", "body-timeout", "write-timeout", "webhook-backoff", "webhook-backoff-max"} {
		if durationOf(c, name) <= 0 {
			return fmt.Errorf("--%s must be positive, not %s", name, durationOf(c, name))
		}
	}
	if c.Int64("body-min-bytes") <= 0 {
		return fmt.Errorf("--body-min-bytes must be positive")
	}
	if durationOf(c, "upload-ttl") < 0 {
		return fmt.Errorf("--upload-ttl must not be negative")
	}
	return nil
}

// newLogger builds the server's log from --log-format and --log-level.
func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// loadServeCertificate loads the certificate serve is to use: DATA/tls with
// --tls, the user's own with --tls-cert and --tls-key, none (plain HTTP)
// without either.
func loadServeCertificate(c *cli.Context, dir string) (*server.Certificate, error) {
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	switch {
	case c.Bool("tls") && (certFile != "" || keyFile != ""):
		return nil, errors.New("--tls uses DATA/tls; --tls-cert and --tls-key name other files: give one or the other")
	case c.Bool("tls"):
		certFile, keyFile = admin.TLSFiles(dir)
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--tls: %s does not exist\nTry: %s (the names clients use)", certFile, admin.DataCommand(dir, "tls init --host NAME[,NAME|IP...]"))
		}
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	return server.LoadCertificate(certFile, keyFile)
}

// reloadOnHangup reloads cert on every SIGHUP until ctx ends; a failed
// reload is logged and the old certificate stays. Without TLS a SIGHUP
// (systemctl reload) is logged and otherwise ignored, instead of ending
// the process as it would by default. SIGHUP stays caught after ctx ends,
// so one that arrives while requests drain does not end them.
func reloadOnHangup(ctx context.Context, cert *server.Certificate, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if cert != nil {
		logCertificate(log, "serving TLS certificate", cert)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		switch err := reload(cert); {
		case cert == nil:
			log.Info("SIGHUP: nothing to reload, serving plain HTTP")
		case err != nil:
			log.Error("SIGHUP: TLS certificate not reloaded, the old one stays", "err", err)
		default:
			logCertificate(log, "SIGHUP: reloaded TLS certificate", cert)
		}
	}
}

func reload(cert *server.Certificate) error {
	if cert == nil {
		return nil
	}
	return cert.Reload()
}

// logCertificate logs the served certificate's names and expiry, as a
// warning when it ends within 30 days.
func logCertificate(log *slog.Logger, msg string, cert *server.Certificate) {
	leaf := cert.Leaf()
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	attrs := []any{"names", strings.Join(names, ","), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339)}
	if cert.ExpiresWithin(30*24*time.Hour, time.Now()) {
		log.Warn(msg+": it expires soon; renew it (berth tls init --force, then SIGHUP)", attrs...)
		return
	}
	log.Info(msg, attrs...)
}

// watermarkOf reads the free-space watermark flags.
func watermarkOf(c *cli.Context) (admin.Watermark, error) {
	w := admin.Watermark{Interval: durationOf(c, "free-check-interval"), Grace: durationOf(c, "free-gc-grace")}
	if w.Grace <= 0 {
		w.Grace = store.NoAge
	}
	if c.String("free-low") == "" {
		return w, nil
	}
	var err error
	if w.Low, err = admin.ParseFraction(c.String("free-low")); err != nil {
		return w, fmt.Errorf("--free-low: %w", err)
	}
	w.High = min(w.Low+0.05, 0.99)
	if c.String("free-high") != "" {
		if w.High, err = admin.ParseFraction(c.String("free-high")); err != nil {
			return w, fmt.Errorf("--free-high: %w", err)
		}
		if w.High < w.Low {
			return w, fmt.Errorf("--free-high %s is below --free-low %s", c.String("free-high"), c.String("free-low"))
		}
	}
	if w.Interval <= 0 {
		return w, fmt.Errorf("--free-check-interval must be positive")
	}
	return w, nil
}
