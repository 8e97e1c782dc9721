package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// gcCommand is `berth gc`: it runs here on a stopped registry, or inside
// the running server through its control socket.
func gcCommand() *cli.Command {
	return adminCommand(admin.GCOp, &cli.Command{
		Name:  "gc",
		Usage: "remove manifests, blobs and uploads that nothing references",
		Description: "Safe while the server runs and pushes go on. Removes untagged manifests that no\n" +
			"index or present subject reaches, blobs no remaining manifest references, upload\n" +
			"sessions idle longer than --upload-ttl, and files no record knows. Nothing younger\n" +
			"than --grace is removed; --grace 0s turns that protection off (tests, idle registries).",
	})
}

// duCommand is `berth du`: disk usage per repository.
func duCommand() *cli.Command {
	return adminCommand(admin.DUOp, &cli.Command{
		Name:  "du",
		Usage: "show the disk space of each repository: shared with others, and its own",
		Description: "EXCLUSIVE is what deleting the repository would free (its own blobs and its\n" +
			"manifests, once gc runs); SHARED is blobs other repositories link too.\n" +
			"Sorted by EXCLUSIVE, largest first.",
	})
}

// repoCommand is `berth repo ...`.
func repoCommand() *cli.Command {
	return &cli.Command{
		Name:  "repo",
		Usage: "manage repositories",
		Subcommands: []*cli.Command{
			adminCommand(admin.RepoListOp, &cli.Command{Name: "list", Usage: "list the repositories, one a line"}),
			adminCommand(admin.RepoVisibilityOp, &cli.Command{Name: "visibility", Usage: "make a repository or namespace public (anyone may pull) or private"}),
			adminCommand(admin.RepoDelOp, &cli.Command{
				Name:        "del",
				Usage:       "delete a repository: its tags, manifests and blob links",
				Description: "The blobs stay on disk until `berth gc` finds that no other repository links them.",
			}),
		},
	}
}

// tagCommand is `berth tag ...`.
func tagCommand() *cli.Command {
	return &cli.Command{
		Name:  "tag",
		Usage: "list and delete tags",
		Subcommands: []*cli.Command{
			adminCommand(admin.TagListOp, &cli.Command{Name: "list", Usage: "list the tags of a repository, one a line"}),
			adminCommand(admin.TagDelOp, &cli.Command{
				Name:        "del",
				Usage:       "delete a tag",
				Description: "The image stays until `berth gc` finds that nothing else tags or lists it.",
			}),
		},
	}
}

// verifyCommand is `berth verify`.
func verifyCommand() *cli.Command {
	return adminCommand(admin.VerifyOp, &cli.Command{
		Name:  "verify",
		Usage: "check every blob against its digest and every manifest's references",
		Description: "Hashes every blob file, checks that every manifest's blobs and children are in its\n" +
			"repository and every tag points at a stored manifest, and reports debris older than\n" +
			"gc's grace period. Each fault is printed with the images it breaks; the exit status\n" +
			"is non-zero on any fault. --repair moves corrupt blobs to DATA/quarantine and forgets\n" +
			"them and missing ones, so that re-pushing the images listed heals the store.",
	})
}

// tlsCommand is `berth tls ...`; the files land in DATA/tls whether the
// server runs or not.
func tlsCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "certificates for serving HTTPS",
		Subcommands: []*cli.Command{
			adminCommand(admin.TLSInitOp, &cli.Command{
				Name:  "init",
				Usage: "create a CA and a server certificate in DATA/tls, and print how to trust the CA",
				Description: "Writes ca.crt, ca.key, server.crt and server.key (keys mode 0600) for `berth serve --tls`.\n" +
					"Existing files are kept unless --force; --force issues a new server certificate from the\n" +
					"existing CA, so clients that trust the CA need nothing new. --new-ca replaces the CA too.\n" +
					"A server running with --tls loads the new certificate on SIGHUP.",
			}),
		},
	}
}
