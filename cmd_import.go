package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// importCommand is `berth import registry2|oci|remote`: it moves another
// registry's content in, here on a stopped registry or inside the running
// server through its control socket (docs/import.md).
func importCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "move another registry's content in, without a re-push",
		Subcommands: []*cli.Command{
			adminCommand(admin.ImportRegistry2Op, &cli.Command{Name: "registry2", Usage: "import a registry:2 (distribution) storage directory"}),
			adminCommand(admin.ImportOCIOp, &cli.Command{Name: "oci", Usage: "import an OCI image layout, or a tree of them such as zot's storage"}),
			adminCommand(admin.ImportRemoteOp, &cli.Command{Name: "remote", Usage: "copy a running registry over the API"}),
		},
	}
}
