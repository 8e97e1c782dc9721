package main

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// duCommand is `berth du`: disk usage per repository.
func duCommand() *cli.Command {
	return &cli.Command{
		Name:  "du",
		Usage: "show the disk space of each repository: shared with others, and its own",
		Description: "EXCLUSIVE is what deleting the repository would free (its own blobs and its\n" +
			"manifests, once gc runs); SHARED is blobs other repositories link too.\n" +
			"Sorted by EXCLUSIVE, largest first.",
		ArgsUsage: "[REPO...]",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			repos, trailingJSON := splitTrailingJSON(c.Args().Slice())
			args := admin.Args{
				Words: repos,
				Flags: map[string]string{"json": strconv.FormatBool(c.Bool("json") || trailingJSON)},
			}
			return admin.Run(c.Context, dataDir(c), "du", args, adminStdio(c, nil))
		},
	}
}

// splitTrailingJSON takes --json out of the positional arguments: urfave/cli
// stops parsing flags at the first argument, and the contract's synopsis
// `berth du [REPO...] [--json]` puts the flag after the names. Nothing else
// is taken: a repository name cannot start with '-'.
func splitTrailingJSON(args []string) (repos []string, asJSON bool) {
	for _, a := range args {
		if a == "--json" || a == "-json" {
			asJSON = true
			continue
		}
		repos = append(repos, a)
	}
	return repos, asJSON
}
