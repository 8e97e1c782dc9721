package main

import "github.com/urfave/cli/v2"

// commands is the command table; each command gets the --data flag.
func commands() []*cli.Command {
	cmds := []*cli.Command{
		serveCommand(),
		userCommand(),
		aclCommand(),
		gcCommand(),
		duCommand(),
		repoCommand(),
		tagCommand(),
		backupCommand(),
		restoreCommand(),
		verifyCommand(),
		tlsCommand(),
		webhookCommand(),
		retentionCommand(),
		immutableCommand(),
		quotaCommand(),
		orgCommand(),
		teamCommand(),
		accessCommand(),
		ldapCommand(),
		mirrorCommand(),
		importCommand(),
		blobsCommand(),
		versionCommand(),
	}
	for _, c := range cmds {
		withData(c)
	}
	return cmds
}
