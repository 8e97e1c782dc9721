package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// retentionCommand is `berth retention ...`: rules that decide which tags
// to keep (docs/retention.md).
func retentionCommand() *cli.Command {
	return &cli.Command{
		Name:  "retention",
		Usage: "rules that remove old tags and untagged manifests; run before each scheduled gc",
		Subcommands: []*cli.Command{
			adminCommand(admin.RetentionAddOp, &cli.Command{
				Name:  "add",
				Usage: "add a rule: in the repositories it covers, tags no rule keeps are removed",
				Description: "Keep criteria (--keep-last, --keep-pulled, --keep-within, --keep-tags) are OR'ed, and so are\n" +
					"rules. A manifest another kept tag points at is only untagged; children of kept indexes and\n" +
					"referrers of kept images stay. Immutable tags are always kept.",
			}),
			adminCommand(admin.RetentionListOp, &cli.Command{Name: "list", Usage: "list the retention rules"}),
			adminCommand(admin.RetentionDelOp, &cli.Command{Name: "del", Usage: "delete a retention rule"}),
			adminCommand(admin.RetentionRunOp, &cli.Command{
				Name:        "run",
				Usage:       "apply the rules now and print what was (or, with --dry-run, would be) removed",
				Description: "Blobs are freed by the gc that follows; the bytes printed are what it frees, counted as du counts.",
			}),
		},
	}
}

// immutableCommand is `berth immutable ...`: tags that cannot be moved or
// deleted (docs/retention.md).
func immutableCommand() *cli.Command {
	return &cli.Command{
		Name:  "immutable",
		Usage: "rules that make tags impossible to overwrite or delete",
		Subcommands: []*cli.Command{
			adminCommand(admin.ImmutableAddOp, &cli.Command{
				Name:        "add",
				Usage:       "add a rule; pushing another manifest under a caught tag, or deleting it, gets 403 DENIED",
				Description: "Fallback tags of signatures (sha256-<hex>, .sig, .att) are not caught unless --signatures.",
			}),
			adminCommand(admin.ImmutableListOp, &cli.Command{Name: "list", Usage: "list the immutability rules"}),
			adminCommand(admin.ImmutableDelOp, &cli.Command{Name: "del", Usage: "delete an immutability rule"}),
			adminCommand(admin.ImmutableLiftOp, &cli.Command{Name: "lift", Usage: "allow the next overwrite or delete of one immutable tag, once"}),
		},
	}
}

// quotaCommand is `berth quota ...`: byte limits per namespace or
// repository (docs/retention.md).
func quotaCommand() *cli.Command {
	return &cli.Command{
		Name:  "quota",
		Usage: "limits in bytes per namespace (a name's first component) or repository",
		Subcommands: []*cli.Command{
			adminCommand(admin.QuotaSetOp, &cli.Command{
				Name:  "set",
				Usage: "set a limit; a push that would exceed it gets 403 DENIED with usage and limit",
				Description: "A blob that several repositories of a namespace link counts once. Pushes are refused as early\n" +
					"as possible: at a monolithic upload of known size, at the chunk that crosses, at the manifest PUT.",
			}),
			adminCommand(admin.QuotaListOp, &cli.Command{Name: "list", Usage: "list the limits with their usage"}),
			adminCommand(admin.QuotaDelOp, &cli.Command{Name: "del", Usage: "remove a limit"}),
		},
	}
}
