// Command berth is a container registry in one binary: the OCI Distribution
// API, token authentication, garbage collection and backups over one data
// directory.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "berth",
		Usage:                "a container registry in one binary",
		Version:              version,
		Flags:                []cli.Flag{dataFlag()},
		EnableBashCompletion: true,
		HideVersion:          true,
		Commands:             commands(),
	}
}

// dataFlag is given to the app and to every command, because urfave/cli v2
// has no inherited flags and --data is accepted before or after the
// command name.
func dataFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "data",
		Usage:   "the data directory: the only state berth has",
		EnvVars: []string{"BERTH_DATA"},
		Value:   "./data",
	}
}

// dataDir returns --data from the innermost command level that set it, then
// the environment or default.
func dataDir(c *cli.Context) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("data") {
			return ctx.String("data")
		}
	}
	return c.String("data")
}

// withData adds the data flag to a command and its subcommands.
func withData(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, dataFlag())
	for _, sub := range cmd.Subcommands {
		withData(sub)
	}
	return cmd
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit and Go version",
		Action: func(c *cli.Context) error {
			commit := "unknown"
			if info, ok := debug.ReadBuildInfo(); ok {
				for _, s := range info.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(c.App.Writer, "berth %s\ncommit %s\n%s %s/%s\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
