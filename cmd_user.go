package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// userCommand is `berth user ...`: each subcommand is an admin operation,
// its flags declared by the operation's request type.
func userCommand() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "manage the users who can sign in",
		Subcommands: []*cli.Command{
			adminCommand(admin.UserAddOp, &cli.Command{Name: "add", Usage: "add a user (prompts for the password)"}),
			adminCommand(admin.UserPasswdOp, &cli.Command{Name: "passwd", Usage: "change a user's password (signs the user out everywhere)"}),
			adminCommand(admin.UserDelOp, &cli.Command{Name: "del", Usage: "delete a user"}),
			adminCommand(admin.UserListOp, &cli.Command{Name: "list", Usage: "list the users: name, admin, created"}),
			adminCommand(admin.UserImportHtpasswdOp, &cli.Command{
				Name:        "import-htpasswd",
				Usage:       "import the bcrypt entries of an htpasswd file (- for stdin)",
				Description: "Entries hashed otherwise (MD5, SHA-1, crypt, plain) are refused by name; the\ngood ones are imported anyway, and the command then exits non-zero.",
			}),
		},
	}
}
