// Command berth is a container registry in one binary: the OCI Distribution
// API, token authentication, garbage collection and backups over one data
// directory.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
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
		Usage: "print the version, commit and Go version, and those of the server running on --data",
		Description: "The server's version comes through DATA/control.sock, so it shows for the server's\n" +
			"user and root; others see why it is missing.",
		Action: func(c *cli.Context) error {
			fmt.Fprintln(c.App.Writer, strings.ReplaceAll(versionInfo(), ", ", "\n"))
			if !dataGiven(c) {
				return nil
			}
			dir := dataDir(c)
			switch v, err := admin.ServerVersion(c.Context, dir); {
			case err == nil:
				fmt.Fprintf(c.App.Writer, "server: %s (serving %s)\n", v, dir)
			case errors.Is(err, admin.ErrNoServer):
				fmt.Fprintf(c.App.Writer, "server: none answers on %s\n", admin.SocketPath(dir))
			default:
				return err
			}
			return nil
		},
	}
}

// versionInfo describes this binary: "berth 1.2.0, commit …, go1.26 linux/amd64".
func versionInfo() string {
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("berth %s, commit %s, %s %s/%s", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// dataGiven reports whether --data or BERTH_DATA was given at any level.
func dataGiven(c *cli.Context) bool {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("data") {
			return true
		}
	}
	return false
}
