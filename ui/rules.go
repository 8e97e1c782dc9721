package ui

import (
	"context"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// ruleTest is the answer of the "may ACCOUNT do ACTION on REPOSITORY?"
// tester.
type ruleTest struct {
	Account, Action, Repo string
	Allowed               bool
	Asked                 bool
}

// rulesPage shows the access rules with their add and delete forms and the
// tester; output and failure are an operation's result.
func (u *UI) rulesPage(c *fiber.Ctx, v *viewer, output, failure string, test ruleTest) error {
	rules, err := admin.ACLListOp.Run(context.Background(), u.opts.Admin, admin.ACLList{})
	if err != nil {
		return err
	}
	text, err := admin.ACLListOp.Text(rules)
	if err != nil {
		return err
	}
	type row struct {
		Number, Of int
		store.Rule
	}
	rows := make([]row, len(rules.Rules))
	for i, r := range rules.Rules {
		rows[i] = row{i + 1, len(rules.Rules), r}
	}
	return u.render(c, v, "rules", "Access rules", map[string]any{
		"Rules": rows, "Listing": text, "Output": output, "Failure": failure, "Test": test,
	})
}

func (u *UI) rules(c *fiber.Ctx, v *viewer) error {
	return u.rulesPage(c, v, "", "", ruleTest{})
}

// ruleOp runs an acl operation and shows the rules page with its result.
func ruleOp[Req, Res any](u *UI, c *fiber.Ctx, v *viewer, op *admin.Op[Req, Res], req Req) error {
	return runOp(u, c, op, req, func(output, failure string) error { return u.rulesPage(c, v, output, failure, ruleTest{}) })
}

// ruleAdd adds a rule. An empty account or name matches anything, as
// when `berth acl add` leaves the flag out; "anonymous" makes the account
// "" (the anonymous caller).
func (u *UI) ruleAdd(c *fiber.Ctx, v *viewer) error {
	req := admin.ACLAdd{Actions: c.FormValue("actions"), Type: c.FormValue("type"), Comment: c.FormValue("comment")}
	if a := c.FormValue("account"); a != "" || c.FormValue("anonymous") == "on" {
		req.Account = &a
	}
	if n := c.FormValue("name"); n != "" {
		req.Name = &n
	}
	if at := c.FormValue("at"); at != "" {
		req.At = &at
	}
	return ruleOp(u, c, v, admin.ACLAddOp, req)
}

func (u *UI) ruleDel(c *fiber.Ctx, v *viewer) error {
	return ruleOp(u, c, v, admin.ACLDelOp, admin.ACLDel{Number: c.FormValue("number")})
}

// ruleMove moves a rule one up or down (dir "up" or "down"), or to the
// number in "to": `berth acl move`.
func (u *UI) ruleMove(c *fiber.Ctx, v *viewer) error {
	req := admin.ACLMove{Number: c.FormValue("number"), To: c.FormValue("to")}
	if dir := c.FormValue("dir"); dir != "" {
		n, err := strconv.Atoi(req.Number)
		if err != nil || dir != "up" && dir != "down" {
			return errStatus(fiber.StatusBadRequest, "move a rule by its number, up or down")
		}
		if dir == "up" {
			n--
		} else {
			n++
		}
		req.To = strconv.Itoa(n)
	}
	return ruleOp(u, c, v, admin.ACLMoveOp, req)
}

// ruleTester answers whether an account may take an action on a
// repository under the rules now, with the evaluation the API uses.
func (u *UI) ruleTester(c *fiber.Ctx, v *viewer) error {
	test := ruleTest{Account: c.Query("account"), Action: c.Query("action"), Repo: c.Query("repo"), Asked: true}
	if u.auth == nil {
		return u.rulesPage(c, v, "", "--auth none: everyone may do everything", ruleTest{})
	}
	if store.ValidateRepository(test.Repo) != nil {
		return u.rulesPage(c, v, "", "not a repository name: "+strconv.Quote(test.Repo), ruleTest{})
	}
	usr := store.User{Name: test.Account}
	if test.Account != "" {
		found, err := u.st.User(test.Account)
		if errors.Is(err, store.ErrUserUnknown) {
			return u.rulesPage(c, v, "", "no user "+strconv.Quote(test.Account), ruleTest{})
		}
		if err != nil {
			return err
		}
		usr = found
	}
	access, err := u.auth.Authorize(usr, []auth.Scope{{Type: auth.TypeRepository, Name: test.Repo, Actions: []string{test.Action}}})
	if err != nil {
		return err
	}
	test.Allowed = auth.Covers(access, auth.TypeRepository, test.Repo, test.Action)
	return u.rulesPage(c, v, "", "", test)
}
