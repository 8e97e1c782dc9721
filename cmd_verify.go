package main

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// verifyCommand is `berth verify`: it runs here on a stopped registry, or
// inside the running server through its control socket.
func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check every blob against its digest and every manifest's references",
		Description: "Hashes every blob file, checks that every manifest's blobs and children are in its\n" +
			"repository and every tag points at a stored manifest, and reports debris older than\n" +
			"gc's grace period. Each fault is printed with the images it breaks; the exit status\n" +
			"is non-zero on any fault. --repair moves corrupt blobs to DATA/quarantine and forgets\n" +
			"them and missing ones, so that re-pushing the images listed heals the store.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "repair", Usage: "quarantine corrupt blobs and forget missing ones, so a re-push heals"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c)
			}
			args := admin.Args{Flags: map[string]string{
				"repair":   strconv.FormatBool(c.Bool("repair")),
				"progress": strconv.FormatBool(isTerminal(c.App.ErrWriter)),
			}}
			return admin.Run(c.Context, dataDir(c), "verify", args, adminStdio(c, nil))
		},
	}
}
