package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/berth-registry/berth/admin"
)

// The command line of an admin operation is its request type: each field
// tagged `flag:"name[,alias]"` (with `usage:"..."`) is a flag, the fields
// tagged `arg:"NAME"` take the positional arguments in order (`arg:"NAME?"`
// may be left out, last) and `args:"NAME"` takes all of them. Field types:
// string, bool, int, time.Duration, []string (a repeatable flag that keeps
// commas), *string (nil when not given); an embedded struct adds its fields
// (a part several requests share, such as admin.NewPassword).
// Defaults come from the operation's Defaults. So adding a flag is adding a
// field, and the compiler checks every use of it.

// adminCommand is the urfave/cli command of op: its flags and usage from
// the request type, and an action that fills the request and calls op.
func adminCommand[Req, Res any](op *admin.Op[Req, Res], cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, requestFlags(reflect.ValueOf(op.Defaults))...)
	if cmd.ArgsUsage == "" {
		cmd.ArgsUsage = argsUsage(reflect.TypeFor[Req]())
	}
	if cmd.Action == nil {
		cmd.Action = func(c *cli.Context) error {
			req, err := requestFrom(c, op.Defaults)
			if err != nil {
				return err
			}
			return callAdmin(c, op, req, adminStdio(c))
		}
	}
	return cmd
}

// callAdmin calls op with the CLI's streams, cancelling it on Ctrl-C or
// SIGTERM: over the socket the server then stops the operation too.
func callAdmin[Req, Res any](c *cli.Context, op *admin.Op[Req, Res], req Req, stdio admin.Stdio) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return admin.Call(ctx, dataDir(c), op, req, stdio)
}

// adminStdio gives an operation the app's streams; progress bars only when
// stderr is a terminal.
func adminStdio(c *cli.Context) admin.Stdio {
	return admin.Stdio{In: os.Stdin, Out: c.App.Writer, Err: c.App.ErrWriter, Progress: isTerminal(c.App.ErrWriter)}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var durationType = reflect.TypeFor[time.Duration]()

// requestFlags returns the flags of a request struct, with the values of
// defaults as their defaults.
func requestFlags(defaults reflect.Value) []cli.Flag {
	var flags []cli.Flag
	t := defaults.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			// An embedded part shared by several requests (NewPassword).
			flags = append(flags, requestFlags(defaults.Field(i))...)
			continue
		}
		tag, ok := f.Tag.Lookup("flag")
		if !ok {
			continue
		}
		names := strings.Split(tag, ",")
		name, aliases, usage := names[0], names[1:], f.Tag.Get("usage")
		v := defaults.Field(i)
		switch {
		case f.Type == durationType:
			flags = append(flags, &cli.DurationFlag{Name: name, Aliases: aliases, Usage: usage, Value: time.Duration(v.Int())})
		case f.Type.Kind() == reflect.Bool:
			flags = append(flags, &cli.BoolFlag{Name: name, Aliases: aliases, Usage: usage, Value: v.Bool()})
		case f.Type.Kind() == reflect.Int:
			flags = append(flags, &cli.IntFlag{Name: name, Aliases: aliases, Usage: usage, Value: int(v.Int())})
		case f.Type.Kind() == reflect.String:
			flags = append(flags, &cli.StringFlag{Name: name, Aliases: aliases, Usage: usage, Value: v.String()})
		case f.Type == reflect.TypeFor[*string]():
			flags = append(flags, &cli.StringFlag{Name: name, Aliases: aliases, Usage: usage})
		case f.Type == reflect.TypeFor[[]string]():
			// No aliases: urfave/cli copies a set flag's value to its aliases
			// through Set, which would add every value twice.
			flags = append(flags, &cli.GenericFlag{Name: name, Usage: usage, Value: &stringList{}})
		default:
			panic(fmt.Sprintf("berth: flag %s of %s has type %s, which requestFlags does not know", name, t, f.Type))
		}
	}
	return flags
}

// argsUsage is the synopsis of a request's positional arguments.
func argsUsage(t reflect.Type) string {
	var words []string
	for i := range t.NumField() {
		if n, ok := t.Field(i).Tag.Lookup("arg"); ok {
			if name, optional := strings.CutSuffix(n, "?"); optional {
				n = "[" + name + "]"
			}
			words = append(words, n)
		}
		if n, ok := t.Field(i).Tag.Lookup("args"); ok {
			words = append(words, "["+n+"...]")
		}
	}
	return strings.Join(words, " ")
}

// requestFrom fills a copy of defaults from the command line: its
// positional arguments (see positionalArgs) and the flags that were set.
func requestFrom[Req any](c *cli.Context, defaults Req) (Req, error) {
	req := defaults
	words, err := positionalArgs(c)
	if err != nil {
		return req, err
	}
	rest, err := fillRequest(c, reflect.ValueOf(&req).Elem(), words)
	if err != nil {
		return req, err
	}
	if len(rest) != 0 {
		return req, usageError(c)
	}
	return req, nil
}

// fillRequest sets the fields of the struct v from the positional
// arguments words and the flags that were set, and returns the words left.
func fillRequest(c *cli.Context, v reflect.Value, words []string) ([]string, error) {
	t := v.Type()
	rest := words
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			var err error
			if rest, err = fillRequest(c, fv, rest); err != nil {
				return nil, err
			}
			continue
		}
		if n, ok := f.Tag.Lookup("arg"); ok {
			if len(rest) == 0 {
				if strings.HasSuffix(n, "?") {
					continue
				}
				return nil, usageError(c)
			}
			fv.SetString(rest[0])
			rest = rest[1:]
		}
		if _, ok := f.Tag.Lookup("args"); ok {
			fv.Set(reflect.ValueOf(rest))
			rest = nil
		}
		tag, ok := f.Tag.Lookup("flag")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if !c.IsSet(name) {
			continue
		}
		switch {
		case f.Type == durationType:
			fv.SetInt(int64(c.Duration(name)))
		case f.Type.Kind() == reflect.Bool:
			fv.SetBool(c.Bool(name))
		case f.Type.Kind() == reflect.Int:
			fv.SetInt(int64(c.Int(name)))
		case f.Type.Kind() == reflect.String:
			fv.SetString(c.String(name))
		case f.Type == reflect.TypeFor[*string]():
			s := c.String(name)
			fv.Set(reflect.ValueOf(&s))
		case f.Type == reflect.TypeFor[[]string]():
			fv.Set(reflect.ValueOf(c.Generic(name).(*stringList).values))
		}
	}
	return rest, nil
}

// stringList is a repeatable flag that keeps each value whole:
// urfave/cli's string slices split at commas, which file names may contain.
type stringList struct{ values []string }

func (l *stringList) Set(v string) error {
	l.values = append(l.values, v)
	return nil
}

func (l *stringList) String() string { return strings.Join(l.values, ",") }

var _ cli.Generic = (*stringList)(nil)

// positionalArgs returns the command's positional arguments after parsing
// the flags among them. urfave/cli v2 stops parsing flags at the first
// positional argument, but README.md writes `user add NAME --admin` and
// `du REPO --json`; after "--" everything is positional. (A "--" typed
// before the first positional argument is consumed by the flag parser and
// cannot be seen here.)
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
		// By its first name: set through an alias, urfave/cli would not
		// see the flag as set under the name the request reads.
		if err := c.Set(flag.Names()[0], value); err != nil {
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
