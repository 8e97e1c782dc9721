package main

import (
	"io"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/store"
)

// gcCommand is `berth gc`: it runs here on a stopped registry, or inside
// the running server through its control socket.
func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "remove manifests, blobs and uploads that nothing references",
		Description: "Safe while the server runs and pushes go on. Removes untagged manifests that no\n" +
			"index or present subject reaches, blobs no remaining manifest references, upload\n" +
			"sessions idle longer than --upload-ttl, and files no record knows. Nothing younger\n" +
			"than --grace is removed; --grace 0s turns that protection off (tests, idle registries).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be removed, change nothing"},
			durationFlag("grace", store.DefaultGrace, "keep everything pushed or uploaded more recently than this"),
			durationFlag("upload-ttl", store.DefaultUploadTTL, "remove upload sessions idle for longer than this"),
			&cli.BoolFlag{Name: "keep-untagged", Usage: "keep untagged manifests; remove only what no manifest references"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c)
			}
			args := admin.Args{Flags: map[string]string{
				"dry-run":       strconv.FormatBool(c.Bool("dry-run")),
				"keep-untagged": strconv.FormatBool(c.Bool("keep-untagged")),
				"progress":      strconv.FormatBool(isTerminal(c.App.Writer) && isTerminal(c.App.ErrWriter)),
			}}
			for _, f := range []string{"grace", "upload-ttl"} {
				if c.IsSet(f) {
					args.Flags[f] = durationOf(c, f).String()
				}
			}
			return admin.Run(c.Context, dataDir(c), "gc", args, adminStdio(c, nil))
		},
	}
}

// isTerminal reports whether w is a terminal: progress bars only go there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
