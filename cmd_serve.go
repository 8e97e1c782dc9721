package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/server"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
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
			&cli.DurationFlag{Name: "token-ttl", Value: 5 * time.Minute, EnvVars: []string{"BERTH_TOKEN_TTL"}, Usage: "lifetime of access tokens"},
			&cli.DurationFlag{Name: "gc-interval", EnvVars: []string{"BERTH_GC_INTERVAL"}, Usage: "run garbage collection this often (0: never)"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"BERTH_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, EnvVars: []string{"BERTH_SHUTDOWN_TIMEOUT"}, Usage: "how long running requests may finish after SIGTERM"},
		},
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	dir := dataDir(c)
	st, err := store.Open(dir, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%s is in use by another berth process (is the server already running?)", dir)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	cfg := server.Config{Logger: log, Service: c.String("service")}
	switch c.String("auth") {
	case "none":
		log.Warn("AUTHENTICATION IS OFF (--auth none): anyone who reaches this port can push, pull and delete")
	case "token":
		if err := admin.EnsureInitialAdmin(st, os.Stdout); err != nil {
			return err
		}
		cfg.Auth, err = auth.NewService(st, auth.Options{
			Issuer:        c.String("service"),
			TTL:           c.Duration("token-ttl"),
			AnonymousPull: c.Bool("anonymous-pull"),
		})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("--auth must be token or none, not %q", c.String("auth"))
	}

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopControl, err := admin.ServeControl(ctx, &admin.Env{Store: st, Logger: log}, admin.SocketPath(dir))
	if err != nil {
		return err
	}
	defer stopControl()
	go admin.RunGCLoop(ctx, st, c.Duration("gc-interval"), store.GCOptions{}, log)

	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return err
	}
	srv := server.New(st, cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("berth serving", "addr", ln.Addr().String(), "data", dir, "version", version)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.Duration("shutdown-timeout"))
	sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-errc
}
