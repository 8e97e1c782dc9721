package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// The user commands. Passwords arrive as bcrypt hashes in the flag
// "password-hash": the CLI hashes them (NewPasswordHash), so plaintext never
// crosses the control socket.

var userAddCommand = Command{
	Name:  "user add",
	Usage: "NAME [--admin] [--password-stdin]",
	Run:   runUserAdd,
}

var userPasswdCommand = Command{
	Name:  "user passwd",
	Usage: "NAME [--password-stdin]",
	Run:   runUserPasswd,
}

var userDelCommand = Command{
	Name:  "user del",
	Usage: "NAME",
	Run:   runUserDel,
}

var userListCommand = Command{
	Name:  "user list",
	Usage: "",
	Run:   runUserList,
}

func runUserAdd(_ context.Context, env *Env, args Args, stdio Stdio) error {
	name, err := oneWord(args)
	if err != nil {
		return err
	}
	hash, err := passwordHashFlag(args)
	if err != nil {
		return err
	}
	isAdmin, err := boolFlag(args, "admin")
	if err != nil {
		return err
	}
	if err := env.Store.AddUser(store.User{Name: name, PasswordHash: hash, Admin: isAdmin}); err != nil {
		return userError(name, err)
	}
	kind := "user"
	if isAdmin {
		kind = "admin"
	}
	fmt.Fprintf(stdio.Out, "added %s %s\n", kind, name)
	return nil
}

func runUserPasswd(_ context.Context, env *Env, args Args, stdio Stdio) error {
	name, err := oneWord(args)
	if err != nil {
		return err
	}
	hash, err := passwordHashFlag(args)
	if err != nil {
		return err
	}
	if err := env.Store.SetPassword(name, hash); err != nil {
		return userError(name, err)
	}
	fmt.Fprintf(stdio.Out, "changed the password of %s\n", name)
	return forgetInitialPassword(env, name, stdio)
}

func runUserDel(_ context.Context, env *Env, args Args, stdio Stdio) error {
	name, err := oneWord(args)
	if err != nil {
		return err
	}
	if err := env.Store.DeleteUser(name); err != nil {
		return userError(name, err)
	}
	fmt.Fprintf(stdio.Out, "deleted user %s\n", name)
	return forgetInitialPassword(env, name, stdio)
}

// runUserList prints a table of users. Times are UTC so that the output
// does not depend on the time zone of the process that runs the command.
func runUserList(_ context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	users, err := env.Store.Users()
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADMIN\tCREATED")
	for _, u := range users {
		isAdmin := "no"
		if u.Admin {
			isAdmin = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, isAdmin, u.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// passwordHashFlag returns the bcrypt hash the CLI sent.
func passwordHashFlag(args Args) ([]byte, error) {
	hash, ok := args.Flag("password-hash")
	if !ok {
		return nil, errors.New("no password hash given")
	}
	if err := checkBcryptHash(hash); err != nil {
		return nil, fmt.Errorf("password hash: %w", err)
	}
	return []byte(hash), nil
}

// userError words the store's errors about one user for the command line.
func userError(name string, err error) error {
	switch {
	case errors.Is(err, store.ErrUserExists):
		return fmt.Errorf("user %s already exists", name)
	case errors.Is(err, store.ErrUserUnknown):
		return fmt.Errorf("no user %s", name)
	}
	return err
}

// forgetInitialPassword removes DATA/initial-admin-password once the
// password it holds stops working (the initial admin changed it or was
// deleted), so the file never shows a stale password as if it were valid.
func forgetInitialPassword(env *Env, name string, stdio Stdio) error {
	if name != initialAdminName {
		return nil
	}
	err := os.Remove(filepath.Join(env.Store.Dir(), initialPasswordFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("remove the stale %s: %w", initialPasswordFile, err)
	}
	fmt.Fprintf(stdio.Out, "removed %s from the data directory: its password is no longer valid\n", initialPasswordFile)
	return nil
}
