package ui

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/server/auth"
)

// adminOnly lets only admins through, whatever a page showed: a
// non-admin gets 403 for the page and for every admin POST.
func (u *UI) adminOnly(h handlerFunc) handlerFunc {
	return func(c *fiber.Ctx, v *viewer) error {
		if !v.Admin() {
			return errStatus(fiber.StatusForbidden, "admins only")
		}
		return h(c, v)
	}
}

// adminHome shows users, disk usage and the GC form, and the output of the
// last operation when a POST rendered it.
func (u *UI) adminHome(c *fiber.Ctx, v *viewer) error {
	return u.renderAdmin(c, v, "", "")
}

func (u *UI) renderAdmin(c *fiber.Ctx, v *viewer, output, failure string) error {
	ctx := context.Background()
	users := &admin.Users{}
	if u.auth != nil {
		var err error
		if users, err = admin.UserListOp.Run(ctx, u.opts.Admin, admin.UserList{}); err != nil {
			return err
		}
	}
	du, err := admin.DUOp.Run(ctx, u.opts.Admin, admin.DU{})
	if err != nil {
		return err
	}
	// du sorts by exclusive size, largest first: the page shows the
	// largest pageSize, which are the ones worth acting on.
	usage := du.Repos[:min(len(du.Repos), pageSize)]
	srv := map[string]string{"Version": u.opts.Version, "Go": runtime.Version()}
	if !u.opts.Started.IsZero() {
		srv["Uptime"] = time.Since(u.opts.Started).Round(time.Second).String()
	}
	if u.opts.CertExpiry != nil {
		exp := u.opts.CertExpiry()
		srv["CertExpiry"] = exp.UTC().Format("2006-01-02 15:04 UTC") + " (in " + strconv.Itoa(int(time.Until(exp).Hours()/24)) + " days)"
	}
	return u.render(c, v, "admin", "Administration", map[string]any{
		"Server": srv,
		"Users":  users.Users, "Usage": usage, "MoreUsage": len(du.Repos) - len(usage), "Output": output, "Failure": failure, "AuthOn": u.auth != nil,
	})
}

// runOp runs an admin operation and shows its output, as the command
// would have printed it, or its error (status 400) with show: the page the
// form was on.
func runOp[Req, Res any](u *UI, c *fiber.Ctx, op *admin.Op[Req, Res], req Req, show func(output, failure string) error) error {
	res, err := op.Run(context.Background(), u.opts.Admin, req)
	if err != nil {
		c.Status(fiber.StatusBadRequest)
		return show("", op.Name+": "+err.Error())
	}
	text, err := op.Text(res)
	if err != nil {
		return err
	}
	return show(text, "")
}

// opResult runs op and shows the admin page with its result.
func opResult[Req, Res any](u *UI, c *fiber.Ctx, v *viewer, op *admin.Op[Req, Res], req Req) error {
	return runOp(u, c, op, req, func(output, failure string) error { return u.renderAdmin(c, v, output, failure) })
}

// newPassword hashes the form's password in this process, the way the
// CLI does before a request leaves it.
func newPassword(c *fiber.Ctx) (admin.NewPassword, error) {
	pw := c.FormValue("password")
	if pw == "" {
		return admin.NewPassword{}, errStatus(fiber.StatusBadRequest, "a password is required")
	}
	h, err := auth.HashPassword(pw)
	if errors.Is(err, auth.ErrPasswordTooLong) {
		return admin.NewPassword{}, errStatus(fiber.StatusBadRequest, "the password is too long")
	}
	if err != nil {
		return admin.NewPassword{}, err
	}
	return admin.NewPassword{PasswordHash: string(h)}, nil
}

func (u *UI) userAdd(c *fiber.Ctx, v *viewer) error {
	pw, err := newPassword(c)
	if err != nil {
		return err
	}
	req := admin.UserAdd{Name: strings.TrimSpace(c.FormValue("name")), Admin: c.FormValue("admin") == "on", NewPassword: pw}
	return opResult(u, c, v, admin.UserAddOp, req)
}

func (u *UI) userPasswd(c *fiber.Ctx, v *viewer) error {
	pw, err := newPassword(c)
	if err != nil {
		return err
	}
	return opResult(u, c, v, admin.UserPasswdOp, admin.UserPasswd{Name: c.FormValue("name"), NewPassword: pw})
}

func (u *UI) userDel(c *fiber.Ctx, v *viewer) error {
	return opResult(u, c, v, admin.UserDelOp, admin.UserDel{Name: c.FormValue("name")})
}

// gc runs garbage collection, as a dry run unless the form says "run".
func (u *UI) gc(c *fiber.Ctx, v *viewer) error {
	req := admin.GCOp.Defaults
	req.DryRun = c.FormValue("mode") != "run"
	return opResult(u, c, v, admin.GCOp, req)
}
