package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// aclCommand is `berth acl ...`: the ordered access rules, numbered from 1
// as `acl list` prints them.
func aclCommand() *cli.Command {
	return &cli.Command{
		Name:  "acl",
		Usage: "manage the access rules (first match wins, default deny)",
		Subcommands: []*cli.Command{
			adminCommand(admin.ACLListOp, &cli.Command{Name: "list", Usage: "list the rules, numbered from 1"}),
			adminCommand(admin.ACLAddOp, &cli.Command{
				Name:  "add",
				Usage: "add a rule (at the end, or as number I with --at)",
				Description: "--account and --name take an exact value, a glob (* and ? stop at '/'), or a\n" +
					"/regular expression/; --name may contain ${account}. --account \"\" is the\n" +
					"anonymous caller; an omitted --account or --name matches anything.",
			}),
			adminCommand(admin.ACLDelOp, &cli.Command{Name: "del", Usage: "delete rule number I"}),
			adminCommand(admin.ACLMoveOp, &cli.Command{Name: "move", Usage: "move rule number I to number --to J (the rules between move by one)"}),
			adminCommand(admin.ACLImportOp, &cli.Command{
				Name:  "import",
				Usage: "import users: and acl: of a docker_auth auth_config.yml (- for stdin)",
				Description: "The file's acl replaces every rule at once; nothing is imported if any entry\n" +
					"cannot keep its meaning. Bcrypt users are added or get the file's password;\n" +
					"others are refused by name, and the command then exits non-zero.",
			}),
		},
	}
}
