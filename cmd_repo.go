package main

import "github.com/urfave/cli/v2"

// repoCommand is `berth repo ...`.
func repoCommand() *cli.Command {
	return &cli.Command{
		Name:  "repo",
		Usage: "manage repositories",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the repositories, one a line",
				Action: runAdmin("repo list", 0, nil),
			},
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

// tagCommand is `berth tag ...`.
func tagCommand() *cli.Command {
	return &cli.Command{
		Name:  "tag",
		Usage: "list and delete tags",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list the tags of a repository, one a line",
				ArgsUsage: "REPO",
				Action:    runAdmin("tag list", 1, nil),
			},
			{
				Name:        "del",
				Usage:       "delete a tag",
				Description: "The image stays until `berth gc` finds that nothing else tags or lists it.",
				ArgsUsage:   "REPO:TAG",
				Action:      runAdmin("tag del", 1, nil),
			},
		},
	}
}
