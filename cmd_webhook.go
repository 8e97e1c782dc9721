package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// webhookCommand is `berth webhook ...`: endpoints that receive push,
// delete and pull events (docs/webhooks.md).
func webhookCommand() *cli.Command {
	return &cli.Command{
		Name:  "webhook",
		Usage: "manage the endpoints that receive the registry's events",
		Subcommands: []*cli.Command{
			adminCommand(admin.WebhookAddOp, &cli.Command{
				Name:  "add",
				Usage: "add an endpoint; events committed from now on are delivered to it",
				Description: "Every delivery is signed: Berth-Signature is \"v1=\" and the hex HMAC-SHA256,\n" +
					"keyed with the secret, of Berth-Event-Id \".\" Berth-Timestamp \".\" body.",
			}),
			adminCommand(admin.WebhookListOp, &cli.Command{Name: "list", Usage: "list the endpoints (secrets and header values are never shown)"}),
			adminCommand(admin.WebhookDelOp, &cli.Command{Name: "del", Usage: "delete an endpoint with its queue and dead letters"}),
			adminCommand(admin.WebhookTestOp, &cli.Command{Name: "test", Usage: "send a signed ping event to an endpoint now and report its answer"}),
			adminCommand(admin.WebhookStatusOp, &cli.Command{Name: "status", Usage: "queue length, oldest event, dead letters and last error of each endpoint (NAME: with its dead letters)"}),
			adminCommand(admin.WebhookReplayOp, &cli.Command{Name: "replay", Usage: "queue dead letters again, ids unchanged", ArgsUsage: "NAME ID...|--all"}),
		},
	}
}
