package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Command is one maintenance operation. Run must write its output only to
// stdio (never to os.Stdout), read input only from stdio.In, and report
// failure as a one-line error: that is what makes the local and the socket
// path print the same thing.
type Command struct {
	// Name is what the CLI and the control protocol call it: "user add".
	Name string
	// Usage is the argument synopsis after the name, for usage errors:
	// "NAME [--admin]".
	Usage string
	// MakesDataDir lets the command run on a directory that is not yet a
	// data directory, making it one (tls init: HTTPS may be set up before
	// the first start). Every other command refuses such a directory, so a
	// wrong --data cannot pass for an empty registry.
	MakesDataDir bool
	// Run performs the command. ctx is cancelled when the client goes away
	// or the server stops.
	Run func(ctx context.Context, env *Env, args Args, stdio Stdio) error
}

// Env is what a command runs against: the open data directory.
type Env struct {
	Store *store.Store
	// Logger is the server's log, for commands whose runs the server must
	// record (gc); nil when the command runs in the CLI process.
	Logger *slog.Logger
	// Version describes the running server's binary ("berth 1.2.0, commit
	// …"); empty when the command runs in the CLI process.
	Version string
}

// logger returns env.Logger, or the default logger when it is nil.
func (env *Env) logger() *slog.Logger {
	if env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
}

// Stdio is a command's standard streams; none is nil when a command runs
// (Run fills in what the caller left out). Over the socket each read of In
// is a round trip to the client, so only commands that take input read it.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Args are a command's arguments as the CLI parsed them: positional words,
// and flag values by flag name (absent when the flag was not given). They are
// plain data so that they cross the control socket unchanged.
type Args struct {
	Words []string          `json:"words,omitempty"`
	Flags map[string]string `json:"flags,omitempty"`
}

// Flag returns the value of flag name and whether it was given.
func (a Args) Flag(name string) (string, bool) {
	v, ok := a.Flags[name]
	return v, ok
}

// commands is the table of every command, by name: a new command is one
// more Command here, and both the CLI path and the socket find it.
var commands = commandTable(
	userAddCommand, userPasswdCommand, userDelCommand, userListCommand,
	userImportHtpasswdCommand, userSessionsCommand, userRevokeCommand,
	aclListCommand, aclAddCommand, aclDelCommand, aclImportCommand,
	gcCommand, duCommand, repoDelCommand, repoListCommand,
	tagListCommand, tagDelCommand, serverVersionCommand,
	backupCommand, verifyCommand,
	tlsInitCommand,
	importRegistry2Command, importOCICommand, importRemoteCommand,
)

func commandTable(cmds ...Command) map[string]Command {
	table := make(map[string]Command, len(cmds))
	for _, c := range cmds {
		if _, dup := table[c.Name]; dup {
			panic("admin: command " + c.Name + " defined twice")
		}
		table[c.Name] = c
	}
	return table
}

func lookup(name string) (Command, error) {
	c, ok := commands[name]
	if !ok {
		return Command{}, fmt.Errorf("unknown command %q", name)
	}
	return c, nil
}

// errUsage is what a command returns for arguments that do not fit its
// Usage; run turns it into the usage message.
var errUsage = errors.New("usage")

// run calls c.Run, turns errUsage into the usage message and a panic into
// an error, so that a bug in one command cannot take the server down.
func (c Command) run(ctx context.Context, env *Env, args Args, stdio Stdio) (err error) {
	defer func() {
		if r := recover(); r != nil {
			env.logger().Error("admin command panicked", "command", c.Name, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%s: internal error: %v", c.Name, r)
		}
	}()
	err = c.Run(ctx, env, args, stdio)
	recordRun(c.Name, err)
	if errors.Is(err, errUsage) {
		return fmt.Errorf("usage: %s", strings.TrimSpace("berth "+c.Name+" "+c.Usage))
	}
	return err
}

// oneWord returns the only positional argument, or errUsage.
func oneWord(args Args) (string, error) {
	if len(args.Words) != 1 {
		return "", errUsage
	}
	return args.Words[0], nil
}

// boolFlag returns a boolean flag; absent is false.
func boolFlag(args Args, name string) (bool, error) {
	v, ok := args.Flag(name)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not true or false", name, v)
	}
	return b, nil
}
