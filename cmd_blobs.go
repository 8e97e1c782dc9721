package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// blobsCommand is `berth blobs ...`: where the blob bytes live
// (docs/storage-operations.md).
func blobsCommand() *cli.Command {
	return &cli.Command{
		Name:  "blobs",
		Usage: "manage where the blob bytes are stored",
		Subcommands: []*cli.Command{
			adminCommand(admin.BlobsMigrateOp, &cli.Command{
				Name:  "migrate",
				Usage: "move every blob into another blob store (dir or s3://…), online; run it again to resume",
				Description: "With the server running, it runs inside the server (DATA/control.sock) while pushes and pulls go on:\n" +
					"  berth blobs migrate --to 's3://bucket/prefix?endpoint=https://s3.example&region=eu-1'\n" +
					"  berth blobs migrate --to dir\n" +
					"Each blob is copied, verified on the target, its record switched, and only then its old copy\n" +
					"removed. New pushes go to the target from the start. Afterwards, start serve with the new\n" +
					"--blob-store.",
			}),
		},
	}
}
