package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// orgCommand is `berth org ...`: organizations and their grants
// (docs/auth.md, "Organizations, teams and grants").
func orgCommand() *cli.Command {
	return &cli.Command{
		Name:  "org",
		Usage: "manage organizations and what their teams and users may do",
		Subcommands: []*cli.Command{
			adminCommand(admin.OrgAddOp, &cli.Command{Name: "add", Usage: "add an organization: it owns the namespace ORG/"}),
			adminCommand(admin.OrgDelOp, &cli.Command{Name: "del", Usage: "delete an organization with its teams and grants (its repositories stay)"}),
			adminCommand(admin.OrgListOp, &cli.Command{Name: "list", Usage: "list organizations, teams, grants and visibility"}),
			adminCommand(admin.OrgGrantOp, &cli.Command{Name: "grant", Usage: "give a team or user read, write or admin on ORG's repositories"}),
			adminCommand(admin.OrgRevokeOp, &cli.Command{Name: "revoke", Usage: "take a grant back (same --team/--user and --repos)"}),
		},
	}
}

// teamCommand is `berth team ...`.
func teamCommand() *cli.Command {
	return &cli.Command{
		Name:  "team",
		Usage: "manage the teams of organizations",
		Subcommands: []*cli.Command{
			adminCommand(admin.TeamAddOp, &cli.Command{Name: "add", Usage: "add a team to an organization"}),
			adminCommand(admin.TeamDelOp, &cli.Command{Name: "del", Usage: "delete a team and its grants"}),
			adminCommand(admin.TeamAddMemberOp, &cli.Command{Name: "add-member", Usage: "add a user to a team"}),
			adminCommand(admin.TeamDelMemberOp, &cli.Command{Name: "del-member", Usage: "remove a user from a team"}),
			adminCommand(admin.TeamLDAPGroupOp, &cli.Command{Name: "ldap-group", Usage: "make an LDAP group's members members of the team (no DN: unmap)"}),
		},
	}
}

// accessCommand is `berth access explain`.
func accessCommand() *cli.Command {
	return &cli.Command{
		Name:  "access",
		Usage: "explain access decisions",
		Subcommands: []*cli.Command{
			adminCommand(admin.AccessExplainOp, &cli.Command{
				Name:  "explain",
				Usage: "say whether ACCOUNT (or anonymous) may pull, push, delete on REPO, or read the catalog, and which grant or rule decides",
			}),
		},
	}
}

// ldapCommand is `berth ldap ...` (docs/ldap.md).
func ldapCommand() *cli.Command {
	return &cli.Command{
		Name:  "ldap",
		Usage: "sign users in against an LDAP or Active Directory server",
		Subcommands: []*cli.Command{
			adminCommand(admin.LDAPSetOp, &cli.Command{Name: "set", Usage: "configure LDAP sign-in (replaces the settings)"}),
			adminCommand(admin.LDAPShowOp, &cli.Command{Name: "show", Usage: "print the LDAP settings (never the bind password)"}),
			adminCommand(admin.LDAPTestOp, &cli.Command{Name: "test", Usage: "look a user up as the bind DN and print its DN, groups and teams"}),
			adminCommand(admin.LDAPDisableOp, &cli.Command{Name: "disable", Usage: "turn LDAP sign-in off; local users are unaffected"}),
		},
	}
}
