package main

import "github.com/urfave/cli/v2"

// aclCommand is `berth acl ...`: the ordered access rules, numbered from 1
// as `acl list` prints them.
func aclCommand() *cli.Command {
	return &cli.Command{
		Name:  "acl",
		Usage: "manage the access rules (first match wins, default deny)",
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the rules, numbered from 1",
				Action: runAdmin("acl list", 0, nil),
			},
			{
				Name:  "add",
				Usage: "add a rule (at the end, or as number I with --at)",
				Description: "--account and --name take an exact value, a glob (* and ? stop at '/'), or a\n" +
					"/regular expression/; --name may contain ${account}. --account \"\" is the\n" +
					"anonymous caller; an omitted --account or --name matches anything.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "account", Usage: "who the rule is for"},
					&cli.StringFlag{Name: "name", Usage: "which repositories it covers"},
					&cli.StringFlag{Name: "type", Usage: "resource type: repository (default), or registry for the catalog"},
					&cli.StringFlag{Name: "actions", Usage: "what it grants: pull,push,delete or * (required)"},
					&cli.StringFlag{Name: "comment", Usage: "a note shown by acl list"},
					&cli.StringFlag{Name: "at", Usage: "the rule's number; later rules move down"},
				},
				Action: runAdmin("acl add", 0, []string{"account", "name", "type", "actions", "comment", "at"}),
			},
			{
				Name:      "del",
				Usage:     "delete rule number I",
				ArgsUsage: "I",
				Action:    runAdmin("acl del", 1, nil),
			},
			{
				Name:  "import",
				Usage: "import users: and acl: of a docker_auth auth_config.yml (- for stdin)",
				Description: "The file's acl replaces every rule at once; nothing is imported if any entry\n" +
					"cannot keep its meaning. Bcrypt users are added or get the file's password;\n" +
					"others are refused by name, and the command then exits non-zero.",
				ArgsUsage: "FILE",
				Action:    runAdminOnFile("acl import"),
			},
		},
	}
}
