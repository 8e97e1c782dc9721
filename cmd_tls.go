package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// tlsCommand is `berth tls ...`. `tls init` runs here on a stopped
// registry, or inside the running server through its control socket; the
// files land in DATA/tls either way.
func tlsCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "certificates for serving HTTPS",
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "create a CA and a server certificate in DATA/tls, and print how to trust the CA",
				Description: "Writes ca.crt, ca.key, server.crt and server.key (keys mode 0600) for `berth serve --tls`.\n" +
					"Existing files are kept unless --force; --force issues a new server certificate from the\n" +
					"existing CA, so clients that trust the CA need nothing new. --new-ca replaces the CA too.\n" +
					"A server running with --tls loads the new certificate on SIGHUP.",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "host", Usage: "a name or IP address clients use (repeatable, or comma-separated)"},
					&cli.BoolFlag{Name: "force", Usage: "replace the server certificate (and with --new-ca the CA)"},
					&cli.BoolFlag{Name: "new-ca", Usage: "make a new CA even when DATA/tls has one"},
					&cli.StringFlag{Name: "key", Value: "ecdsa", Usage: "key type: ecdsa (P-256) or rsa (3072 bits, for old clients)"},
					&cli.StringFlag{Name: "port", Value: "5000", Usage: "the port clients use, for the trust instructions"},
				},
				Action: func(c *cli.Context) error {
					words, err := positionalArgs(c)
					if err != nil {
						return err
					}
					if len(words) != 0 {
						return usageError(c)
					}
					args := admin.Args{Flags: map[string]string{
						"host":   strings.Join(c.StringSlice("host"), ","),
						"force":  strconv.FormatBool(c.Bool("force")),
						"new-ca": strconv.FormatBool(c.Bool("new-ca")),
						"key":    c.String("key"),
						"port":   c.String("port"),
					}}
					return admin.Run(c.Context, dataDir(c), "tls init", args, adminStdio(c, nil))
				},
			},
		},
	}
}
