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
			adminCommand(admin.UserAdminOp, &cli.Command{Name: "admin", Usage: "make a user admin, or take the right away with --revoke (not from the only admin)"}),
			adminCommand(admin.UserListOp, &cli.Command{Name: "list", Usage: "list the users: name, admin, created"}),
			adminCommand(admin.UserSessionsOp, &cli.Command{Name: "sessions", Usage: "list a user's saved sign-ins: refresh tokens (docker login) and web UI sessions: id, kind, created, last used, expires, client"}),
			adminCommand(admin.UserRevokeOp, &cli.Command{
				Name:        "revoke",
				Usage:       "end one of a user's saved sign-ins, or all of them",
				Description: "The client must sign in again with its password. Access tokens it already holds\nrun out within --token-ttl (5 minutes); `berth user passwd` ends those at once.",
				ArgsUsage:   "NAME ID|--all",
			}),
			adminCommand(admin.UserImportHtpasswdOp, &cli.Command{
				Name:        "import-htpasswd",
				Usage:       "import the bcrypt entries of an htpasswd file (- for stdin)",
				Description: "Entries hashed otherwise (MD5, SHA-1, crypt, plain) are refused by name; the\ngood ones are imported anyway, and the command then exits non-zero.",
			}),
		},
	}
}
