package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// mirrorCommand is `berth mirror ...`: upstream registries that berth
// caches as a pull-through mirror (docs/mirror.md).
func mirrorCommand() *cli.Command {
	return &cli.Command{
		Name:  "mirror",
		Usage: "manage the upstream registries berth caches (pull-through mirror)",
		Subcommands: []*cli.Command{
			adminCommand(admin.MirrorAddOp, &cli.Command{
				Name:  "add",
				Usage: "add an upstream; its content is pulled as NAME/<repo>, with ?ns=<host>, or (--docker-hub) by Docker's registry-mirrors",
			}),
			adminCommand(admin.MirrorListOp, &cli.Command{Name: "list", Usage: "list the upstreams (passwords are never shown)"}),
			adminCommand(admin.MirrorDelOp, &cli.Command{Name: "del", Usage: "forget an upstream; what it cached stays until berth repo del"}),
			adminCommand(admin.MirrorTestOp, &cli.Command{Name: "test", Usage: "sign in to an upstream as a pull would and report its answer"}),
			adminCommand(admin.MirrorPrefetchOp, &cli.Command{Name: "prefetch", Usage: "fill the cache with images (NAME/REPO:TAG or @DIGEST): every platform's manifests and blobs"}),
			adminCommand(admin.MirrorScheduleOp, &cli.Command{Name: "schedule", Usage: "have the server prefetch images of a mirror (REPO:TAG in its namespace) every interval; no --prefetch clears it"}),
		},
	}
}
