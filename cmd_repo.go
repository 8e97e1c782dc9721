package main

import "github.com/urfave/cli/v2"

// repoCommand is `berth repo ...`.
func repoCommand() *cli.Command {
	return &cli.Command{
		Name:  "repo",
		Usage: "manage repositories",
		Subcommands: []*cli.Command{
			{
				Name:        "del",
				Usage:       "delete a repository: its tags, manifests and blob links",
				Description: "The blobs stay on disk until `berth gc` finds that no other repository links them.",
				ArgsUsage:   "NAME",
				Action:      runAdmin("repo del", 1, nil),
			},
		},
	}
}
