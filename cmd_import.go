package main

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/importer"
)

// importCommand is `berth import registry2|oci|remote`: it moves another
// registry's content in, here on a stopped registry or inside the running
// server through its control socket (docs/import.md).
func importCommand() *cli.Command {
	common := func() []cli.Flag {
		return []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print repositories, tags, manifests, blobs, bytes and problems; change nothing"},
			&cli.StringFlag{Name: "only", Usage: "import only repositories matching this glob (* matches slashes too)"},
			&cli.BoolFlag{Name: "keep-fallback-tags", Usage: "keep referrers fallback tags (sha256-<hex>, .sig, .att, .sbom) as tags too"},
			&cli.BoolFlag{Name: "copy", Usage: "copy blob files instead of hard-linking them"},
			&cli.IntFlag{Name: "jobs", Value: importer.DefaultJobs, Usage: "blobs imported at once"},
		}
	}
	return &cli.Command{
		Name:  "import",
		Usage: "move another registry's content in, without a re-push",
		Subcommands: []*cli.Command{
			{
				Name:      "registry2",
				Usage:     "import a registry:2 (distribution) storage directory",
				ArgsUsage: "DIR",
				Flags:     common(),
				Action:    importAction("import registry2", true),
			},
			{
				Name:      "oci",
				Usage:     "import an OCI image layout, or a tree of them such as zot's storage",
				ArgsUsage: "DIR",
				Flags:     append(common(), &cli.StringFlag{Name: "repo", Usage: "the repository a single layout goes to (default: the directory's name)"}),
				Action:    importAction("import oci", true),
			},
			{
				Name:      "remote",
				Usage:     "copy a running registry over the API",
				ArgsUsage: "URL",
				Flags: append(common(),
					&cli.StringFlag{Name: "user", Usage: "sign in to the source as this user"},
					&cli.BoolFlag{Name: "password-stdin", Usage: "read the source password from stdin"}),
				Action: importAction("import remote", false),
			},
		},
	}
}

// importAction parses the flags, makes a directory absolute (over the
// socket the server opens it) and runs the admin command.
func importAction(name string, isDir bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		words, err := positionalArgs(c)
		if err != nil {
			return err
		}
		if len(words) != 1 {
			return usageError(c)
		}
		where := words[0]
		if isDir {
			if where, err = filepath.Abs(where); err != nil {
				return err
			}
		}
		args := admin.Args{Words: []string{where}, Flags: map[string]string{
			"progress": strconv.FormatBool(isTerminal(c.App.ErrWriter)),
			"jobs":     strconv.Itoa(c.Int("jobs")),
		}}
		for _, f := range []string{"dry-run", "keep-fallback-tags", "copy", "password-stdin"} {
			if commandFlag(c.Command, f) != nil && c.Bool(f) {
				args.Flags[f] = "true"
			}
		}
		for _, f := range []string{"only", "repo", "user"} {
			if commandFlag(c.Command, f) != nil && c.String(f) != "" {
				args.Flags[f] = c.String(f)
			}
		}
		return admin.Run(c.Context, dataDir(c), name, args, adminStdio(c, os.Stdin))
	}
}
