package ui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
	// Directory says how an account that is no local user was evaluated:
	// as an LDAP directory user, a member of the teams its groups map to.
	Directory string
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
	scopes := []auth.Scope{{Type: auth.TypeRepository, Name: test.Repo, Actions: []string{test.Action}}}
	usr := store.User{Name: test.Account}
	if test.Account != "" {
		found, err := u.st.User(test.Account)
		if errors.Is(err, store.ErrUserUnknown) {
			return u.testDirectoryUser(c, v, test, scopes)
		}
		if err != nil {
			return err
		}
		usr = found
	}
	access, err := u.auth.Authorize(usr, scopes)
	if err != nil {
		return err
	}
	test.Allowed = auth.Covers(access, auth.TypeRepository, test.Repo, test.Action)
	return u.rulesPage(c, v, "", "", test)
}

// testDirectoryUser answers the tester for an account that is no local
// user: with LDAP sign-in on, as the token path would for that directory
// user now, a member of the teams its groups (asked of the directory, as
// the service account) map to.
func (u *UI) testDirectoryUser(c *fiber.Ctx, v *viewer, test ruleTest, scopes []auth.Scope) error {
	noUser := "no user " + strconv.Quote(test.Account)
	settings, _, err := u.auth.DirectorySettings()
	if err != nil {
		return err
	}
	if settings == "" {
		return u.rulesPage(c, v, "", noUser, ruleTest{})
	}
	groups, err := u.auth.LookupDirectoryUser(test.Account)
	switch {
	case errors.Is(err, auth.ErrLDAPUnavailable):
		c.Status(fiber.StatusServiceUnavailable)
		return u.rulesPage(c, v, "", fmt.Sprintf("%q is no local user, and the LDAP directory cannot be reached to look it up: %v", test.Account, err), ruleTest{})
	case errors.Is(err, auth.ErrBadCredentials):
		return u.rulesPage(c, v, "", noUser+": not a local user, and not a user of the LDAP directory", ruleTest{})
	case err != nil:
		return err
	}
	access, err := u.auth.AuthorizeDirectory(test.Account, groups, scopes)
	if err != nil {
		return err
	}
	authz, err := u.auth.Authorizer()
	if err != nil {
		return err
	}
	test.Allowed = auth.Covers(access, auth.TypeRepository, test.Repo, test.Action)
	if teams := authz.TeamsOfGroups(groups); len(teams) > 0 {
		test.Directory = fmt.Sprintf("%s is an LDAP directory user, a member of %s through its groups.", test.Account, strings.Join(teams, ", "))
	} else {
		test.Directory = fmt.Sprintf("%s is an LDAP directory user in no group mapped to a team.", test.Account)
	}
	return u.rulesPage(c, v, "", "", test)
}
