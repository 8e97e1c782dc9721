package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/store"
)

// UserAdd adds a user; UserPasswd changes a password. The password is
// read and hashed in the CLI process (Prepare), so plaintext never crosses
// the control socket: only PasswordHash does.
type UserAdd struct {
	Name  string `arg:"NAME" json:"name"`
	Admin bool   `flag:"admin" usage:"may do everything, whatever the access rules say" json:"admin,omitempty"`
	NewPassword
}

// UserPasswd changes the password of a user, which signs them out
// everywhere.
type UserPasswd struct {
	Name string `arg:"NAME" json:"name"`
	NewPassword
}

// NewPassword is a new password as user add and passwd take it: read in
// the CLI process, from stdin or a terminal prompt (Prepare), and sent only
// as its bcrypt hash.
type NewPassword struct {
	PasswordStdin bool   `flag:"password-stdin" usage:"read the password from stdin instead of prompting" json:"-"`
	PasswordHash  string `json:"password_hash"`
}

// read reads and hashes the password of user, in the CLI process. A hash
// already in place (a caller of the Go API that hashed it) is kept.
func (p *NewPassword) read(user string, c Client) error {
	if p.PasswordHash != "" {
		return nil
	}
	h, err := NewPasswordHash(c.In, p.PasswordStdin, c.Prompt, user)
	if err != nil {
		return err
	}
	p.PasswordHash = string(h)
	return nil
}

// hash returns the bcrypt hash the client sent, checked.
func (p NewPassword) hash() ([]byte, error) {
	if p.PasswordHash == "" {
		return nil, errors.New("no password hash given")
	}
	if err := checkBcryptHash(p.PasswordHash); err != nil {
		return nil, fmt.Errorf("password hash: %w", err)
	}
	return []byte(p.PasswordHash), nil
}

// UserDel deletes a user.
type UserDel struct {
	Name string `arg:"NAME" json:"name"`
}

// UserList lists the users.
type UserList struct{}

// UserChange is the result of user add, passwd and del: what changed, and
// whether the stale initial-admin-password file was removed with it.
type UserChange struct {
	Verb          string `json:"verb"` // "added admin", "added user", "changed the password of", "deleted user"
	Name          string `json:"name"`
	ForgotInitial bool   `json:"forgot_initial,omitempty"`
}

// Users is the result of user list. Times are UTC so that the output does
// not depend on the time zone of the process that ran the operation.
type Users struct {
	Users []UserInfo `json:"users"`
}

// UserInfo is one user as user list shows it.
type UserInfo struct {
	Name    string    `json:"name"`
	Admin   bool      `json:"admin"`
	Created time.Time `json:"created"`
}

var UserAddOp = register(&Op[UserAdd, UserChange]{
	Name:    "user add",
	Prepare: func(req *UserAdd, c Client) error { return req.read(req.Name, c) },
	Do: func(_ context.Context, env *Env, _ *Task, req UserAdd) (*UserChange, error) {
		hash, err := req.hash()
		if err != nil {
			return nil, err
		}
		if err := env.Store.AddUser(store.User{Name: req.Name, PasswordHash: hash, Admin: req.Admin}); err != nil {
			return nil, userError(req.Name, err)
		}
		verb := "added user"
		if req.Admin {
			verb = "added admin"
		}
		return &UserChange{Verb: verb, Name: req.Name}, nil
	},
	Render: renderUserChange,
})

var UserPasswdOp = register(&Op[UserPasswd, UserChange]{
	Name:    "user passwd",
	Prepare: func(req *UserPasswd, c Client) error { return req.read(req.Name, c) },
	Do: func(_ context.Context, env *Env, _ *Task, req UserPasswd) (*UserChange, error) {
		hash, err := req.hash()
		if err != nil {
			return nil, err
		}
		if err := env.Store.SetPassword(req.Name, hash); err != nil {
			return nil, userError(req.Name, err)
		}
		res := &UserChange{Verb: "changed the password of", Name: req.Name}
		res.ForgotInitial, err = forgetInitialPassword(env, req.Name)
		return res, err
	},
	Render: renderUserChange,
})

var UserDelOp = register(&Op[UserDel, UserChange]{
	Name: "user del",
	Do: func(_ context.Context, env *Env, _ *Task, req UserDel) (*UserChange, error) {
		if err := env.Store.DeleteUser(req.Name); err != nil {
			return nil, userError(req.Name, err)
		}
		res := &UserChange{Verb: "deleted user", Name: req.Name}
		var err error
		res.ForgotInitial, err = forgetInitialPassword(env, req.Name)
		return res, err
	},
	Render: renderUserChange,
})

var UserListOp = register(&Op[UserList, Users]{
	Name: "user list",
	Do: func(_ context.Context, env *Env, _ *Task, _ UserList) (*Users, error) {
		users, err := env.Store.Users()
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		res := &Users{Users: []UserInfo{}}
		for _, u := range users {
			res.Users = append(res.Users, UserInfo{Name: u.Name, Admin: u.Admin, Created: u.Created.UTC()})
		}
		return res, nil
	},
	Render: func(w Output, res *Users) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADMIN\tCREATED")
		for _, u := range res.Users {
			isAdmin := "no"
			if u.Admin {
				isAdmin = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, isAdmin, u.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	},
})

func renderUserChange(w Output, res *UserChange) error {
	fmt.Fprintf(w.Out, "%s %s\n", res.Verb, res.Name)
	if res.ForgotInitial {
		fmt.Fprintf(w.Out, "removed %s from the data directory: its password is no longer valid\n", initialPasswordFile)
	}
	return nil
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
// It reports whether there was a file to remove.
func forgetInitialPassword(env *Env, name string) (bool, error) {
	if name != initialAdminName {
		return false, nil
	}
	err := os.Remove(store.InitialPasswordPath(env.Store.Dir()))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("remove the stale %s: %w", initialPasswordFile, err)
	}
	return true, nil
}
