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

// adminHome shows the users and the server, and the output of the last
// user operation when a POST rendered it.
func (u *UI) adminHome(c *fiber.Ctx, v *viewer) error {
	return u.renderAdmin(c, v, "", "")
}

func (u *UI) renderAdmin(c *fiber.Ctx, v *viewer, output, failure string) error {
	users := &admin.Users{}
	if u.auth != nil {
		var err error
		if users, err = admin.UserListOp.Run(context.Background(), u.opts.Admin, admin.UserList{}); err != nil {
			return err
		}
	}
	srv := map[string]string{"Version": u.opts.Version, "Go": runtime.Version()}
	if !u.opts.Started.IsZero() {
		srv["Uptime"] = time.Since(u.opts.Started).Round(time.Second).String()
		srv["Started"] = u.opts.Started.UTC().Format("2006-01-02 15:04 UTC")
	}
	if u.opts.CertExpiry != nil {
		exp := u.opts.CertExpiry()
		srv["CertExpiry"] = exp.UTC().Format("2006-01-02 15:04 UTC") + " (in " + strconv.Itoa(int(time.Until(exp).Hours()/24)) + " days)"
	}
	return u.render(c, v, "admin", "Administration", map[string]any{
		"Server": srv, "Users": users.Users, "Output": output, "Failure": failure, "AuthOn": u.auth != nil,
	})
}

// storage shows the disk space of the data directory's filesystem and
// the repositories that hold the most, from the kept summaries
// (summaries.go): the page costs a look at what is kept, not a du of every
// repository.
func (u *UI) storage(c *fiber.Ctx, v *viewer) error {
	snap, err := u.summaries.get()
	if err != nil {
		return err
	}
	usage := snap.byUse[:min(len(snap.byUse), pageSize)]
	var total int64
	for _, r := range snap.byName {
		total += r.Exclusive
	}
	data := map[string]any{"Usage": usage, "MoreUsage": len(snap.byUse) - len(usage), "AsOf": snap.Taken,
		"Repos": len(snap.byName), "Total": total}
	if disk, err := u.st.DiskSpace(); err != nil {
		data["DiskError"] = "disk space unknown: " + err.Error()
	} else {
		data["Disk"] = disk
		data["Used"] = disk.Total - disk.Free
		if disk.Total > 0 {
			data["FreePercent"] = int(100 * disk.Free / disk.Total)
		}
	}
	return u.render(c, v, "storage", "Storage", data)
}

// userAdmin gives or takes the admin right: `berth user admin [--revoke]`.
func (u *UI) userAdmin(c *fiber.Ctx, v *viewer) error {
	return opResult(u, c, v, admin.UserAdminOp, admin.UserAdmin{Name: c.FormValue("name"), Revoke: c.FormValue("revoke") == "on"})
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

// gcPage shows the GC form and the past runs, newest first.
func (u *UI) gcPage(c *fiber.Ctx, v *viewer, output, failure string) error {
	runs, err := u.st.GCRuns()
	if err != nil {
		return err
	}
	return u.render(c, v, "gc", "Garbage collection", map[string]any{
		"Runs": runs, "Output": output, "Failure": failure, "Grace": admin.ShortDuration(admin.GCOp.Defaults.Grace),
	})
}

func (u *UI) gcHome(c *fiber.Ctx, v *viewer) error { return u.gcPage(c, v, "", "") }

// gc runs garbage collection, as a dry run unless the form says "run".
func (u *UI) gc(c *fiber.Ctx, v *viewer) error {
	req := admin.GCOp.Defaults
	req.DryRun = c.FormValue("mode") != "run"
	return runOp(u, c, admin.GCOp, req, func(output, failure string) error { return u.gcPage(c, v, output, failure) })
}
