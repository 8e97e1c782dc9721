package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-registry/berth/store"
)

// UserAdmin gives a user the admin right, or takes it away with Revoke.
type UserAdmin struct {
	Name   string `arg:"NAME" json:"name"`
	Revoke bool   `flag:"revoke" usage:"take the admin right away instead of giving it" json:"revoke,omitempty"`
}

var UserAdminOp = register(&Op[UserAdmin, UserChange]{
	Name: "user admin",
	Do: func(_ context.Context, env *Env, _ *Task, req UserAdmin) (*UserChange, error) {
		err := env.Store.SetAdmin(req.Name, !req.Revoke)
		if errors.Is(err, store.ErrLastAdmin) {
			return nil, fmt.Errorf("%s is the only admin: make another user admin first (berth user admin NAME)", req.Name)
		}
		if err != nil {
			return nil, userError(req.Name, err)
		}
		verb := "gave the admin right to"
		if req.Revoke {
			verb = "took the admin right from"
		}
		return &UserChange{Verb: verb, Name: req.Name}, nil
	},
	Render: renderUserChange,
})
