package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// userCommand is `berth user ...`. Each action turns its flags into
// admin.Args and calls admin.Run, which runs the command here or in the
// running server; passwords are read and hashed here first.
func userCommand() *cli.Command {
	passwordStdin := &cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin instead of prompting"}
	return &cli.Command{
		Name:  "user",
		Usage: "manage the users who can sign in",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add a user (prompts for the password)",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "admin", Usage: "may do everything, whatever the access rules say"}, passwordStdin},
				Action:    userSetPassword("user add"),
			},
			{
				Name:      "passwd",
				Usage:     "change a user's password (signs the user out everywhere)",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{passwordStdin},
				Action:    userSetPassword("user passwd"),
			},
			{
				Name:      "del",
				Usage:     "delete a user",
				ArgsUsage: "NAME",
				Action:    runAdmin("user del", 1, nil),
			},
			{
				Name:   "list",
				Usage:  "list the users: name, admin, created",
				Action: runAdmin("user list", 0, nil),
			},
			{
				Name:      "sessions",
				Usage:     "list a user's saved sign-ins (refresh tokens): id, created, last used, expires, client",
				ArgsUsage: "NAME",
				Action:    runAdmin("user sessions", 1, nil),
			},
			{
				Name:        "revoke",
				Usage:       "end one of a user's saved sign-ins, or all of them",
				Description: "The client must sign in again with its password. Access tokens it already holds\nrun out within --token-ttl (5 minutes); `berth user passwd` ends those at once.",
				ArgsUsage:   "NAME ID|--all",
				Flags:       []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "revoke every session of the user"}},
				Action:      runAdminWords("user revoke", 1, 2, []string{"all"}),
			},
			{
				Name:        "import-htpasswd",
				Usage:       "import the bcrypt entries of an htpasswd file (- for stdin)",
				Description: "Entries hashed otherwise (MD5, SHA-1, crypt, plain) are refused by name; the\ngood ones are imported anyway, and the command then exits non-zero.",
				ArgsUsage:   "FILE",
				Action:      runAdminOnFile("user import-htpasswd"),
			},
		},
	}
}

// userSetPassword is the action of `user add` and `user passwd`: it reads
// the new password, hashes it here, and sends only the hash.
func userSetPassword(name string) cli.ActionFunc {
	return func(c *cli.Context) error {
		words, err := positionalArgs(c)
		if err != nil {
			return err
		}
		if len(words) != 1 {
			return usageError(c)
		}
		user := words[0]
		hash, err := admin.NewPasswordHash(os.Stdin, c.Bool("password-stdin"), c.App.ErrWriter, user)
		if err != nil {
			return err
		}
		args := admin.Args{Words: []string{user}, Flags: map[string]string{"password-hash": string(hash)}}
		if c.IsSet("admin") {
			args.Flags["admin"] = strconv.FormatBool(c.Bool("admin"))
		}
		return admin.Run(c.Context, dataDir(c), name, args, adminStdio(c, nil))
	}
}

// runAdmin is the action of a command that takes nargs words and the flags
// named in flags, passed on as given.
func runAdmin(name string, nargs int, flags []string) cli.ActionFunc {
	return runAdminWords(name, nargs, nargs, flags)
}

// runAdminWords is runAdmin for a command that takes from minArgs to
// maxArgs words; the command itself checks which combinations make sense.
func runAdminWords(name string, minArgs, maxArgs int, flags []string) cli.ActionFunc {
	return func(c *cli.Context) error {
		words, err := positionalArgs(c)
		if err != nil {
			return err
		}
		if len(words) < minArgs || len(words) > maxArgs {
			return usageError(c)
		}
		args := admin.Args{Words: words, Flags: map[string]string{}}
		for _, f := range flags {
			if c.IsSet(f) {
				args.Flags[f] = c.String(f)
			}
		}
		return admin.Run(c.Context, dataDir(c), name, args, adminStdio(c, nil))
	}
}

// runAdminOnFile is the action of an import: the file is opened here, so a
// relative path means the same with the server up or down, and its content
// reaches the command as stdin.
func runAdminOnFile(name string) cli.ActionFunc {
	return func(c *cli.Context) error {
		words, err := positionalArgs(c)
		if err != nil {
			return err
		}
		if len(words) != 1 {
			return usageError(c)
		}
		in := os.Stdin
		if path := words[0]; path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		return admin.Run(c.Context, dataDir(c), name, admin.Args{}, adminStdio(c, in))
	}
}

// adminStdio gives a command the app's writers and in (nil: nothing).
func adminStdio(c *cli.Context, in *os.File) admin.Stdio {
	stdio := admin.Stdio{Out: c.App.Writer, Err: c.App.ErrWriter}
	if in != nil {
		stdio.In = in
	}
	return stdio
}

// positionalArgs returns the command's positional arguments after parsing
// the flags among them. urfave/cli v2 stops parsing flags at the first
// positional argument, but the contract writes `user add NAME --admin`;
// after "--" everything is positional. (A "--" typed before the first
// positional argument is consumed by the flag parser and cannot be seen
// here.)
func positionalArgs(c *cli.Context) ([]string, error) {
	var words []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(words, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			words = append(words, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		flag := commandFlag(c.Command, name)
		if flag == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s", arg)
		}
		if _, isBool := flag.(*cli.BoolFlag); isBool && !hasValue {
			value = "true"
		} else if !hasValue {
			if i+1 == len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", arg)
			}
			i++
			value = args[i]
		}
		if err := c.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag %s: %w", value, arg, err)
		}
	}
	return words, nil
}

func commandFlag(cmd *cli.Command, name string) cli.Flag {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func usageError(c *cli.Context) error {
	return fmt.Errorf("usage: %s %s", c.Command.HelpName, c.Command.ArgsUsage)
}
