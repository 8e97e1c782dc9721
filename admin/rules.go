package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// The acl commands number rules from 1, as `acl list` prints them: `acl add
// --at I` makes the new rule number I, and `acl del I` deletes number I.
// (The store counts from 0; the conversion happens only here.)

// ACLList lists the access rules.
type ACLList struct{}

// Rules is the result of acl list.
type Rules struct {
	Rules []store.Rule `json:"rules"`
}

// ACLAdd adds an access rule. An omitted Account or Name matches anything.
type ACLAdd struct {
	Account *string `flag:"account" usage:"who the rule is for (omitted: every signed-in user; '' is anonymous, and only '' matches anonymous)" json:"account,omitempty"`
	Name    *string `flag:"name" usage:"which repositories it covers" json:"name,omitempty"`
	Type    string  `flag:"type" usage:"resource type: repository (default), or registry for the catalog" json:"type,omitempty"`
	Actions string  `flag:"actions" usage:"what it grants: pull,push,delete or * (required)" json:"actions"`
	Comment string  `flag:"comment" usage:"a note shown by acl list" json:"comment,omitempty"`
	// At is the new rule's number; later rules move down. Nil appends.
	At *string `flag:"at" usage:"the rule's number; later rules move down" json:"at,omitempty"`
}

// ACLDel deletes the rule numbered Number (from 1), as acl list shows it.
type ACLDel struct {
	Number string `arg:"I" json:"number"`
}

// RuleChange is the result of acl add and acl del.
type RuleChange struct {
	Added bool `json:"added"`
	// DefaultRule is the number of the rule that keeps the default policy
	// (signed-in users pull everything), added with the first rule; 0 when
	// none was added.
	DefaultRule int        `json:"default_rule,omitempty"`
	Number      int        `json:"number"`
	Deleted     store.Rule `json:"deleted"` // for acl del
}

var ACLListOp = register(&Op[ACLList, Rules]{
	Name: "acl list",
	Do: func(_ context.Context, env *Env, _ *Task, _ ACLList) (*Rules, error) {
		rules, err := env.Store.Rules()
		if err != nil {
			return nil, fmt.Errorf("list access rules: %w", err)
		}
		return &Rules{Rules: rules}, nil
	},
	Render: func(w Output, res *Rules) error {
		if len(res.Rules) == 0 {
			_, err := fmt.Fprintln(w.Out, "no access rules: the default policy applies (admins may do everything; signed-in users pull everything and push and delete under <account>/; anonymous nothing, unless serve --anonymous-pull)")
			return err
		}
		return printRules(w.Out, res.Rules)
	},
})

var ACLAddOp = register(&Op[ACLAdd, RuleChange]{
	Name: "acl add",
	Do: func(_ context.Context, env *Env, _ *Task, req ACLAdd) (*RuleChange, error) {
		r, err := ruleFromRequest(req)
		if err != nil {
			return nil, err
		}
		rules, err := env.Store.Rules()
		if err != nil {
			return nil, fmt.Errorf("read access rules: %w", err)
		}
		at := len(rules) + 1
		if req.At != nil {
			if at, err = strconv.Atoi(*req.At); err != nil || at < 1 || at > len(rules)+1 {
				return nil, fmt.Errorf("--at %s: want a position from 1 to %d", *req.At, len(rules)+1)
			}
		}
		if len(rules) == 0 {
			// The first rule ends the default policy; rather than drop it
			// silently, keep it as a rule of its own after the new one,
			// visible in acl list and deletable like any other.
			if err := env.Store.ReplaceRules([]store.Rule{r, defaultPullRule}); err != nil {
				return nil, fmt.Errorf("add access rule: %w", err)
			}
			return &RuleChange{Added: true, Number: 1, DefaultRule: 2}, nil
		}
		if err := env.Store.InsertRule(r, at-1); err != nil {
			return nil, fmt.Errorf("add access rule: %w", err)
		}
		return &RuleChange{Added: true, Number: at}, nil
	},
	Render: renderRuleChange,
})

var ACLDelOp = register(&Op[ACLDel, RuleChange]{
	Name: "acl del",
	Do: func(_ context.Context, env *Env, _ *Task, req ACLDel) (*RuleChange, error) {
		rules, i, err := ruleNumbered(env, req.Number)
		if err != nil {
			return nil, err
		}
		if err := env.Store.DeleteRule(i - 1); err != nil {
			return nil, fmt.Errorf("delete access rule %d: %w", i, err)
		}
		return &RuleChange{Number: i, Deleted: rules[i-1]}, nil
	},
	Render: renderRuleChange,
})

// ruleNumbered reads the rules and checks that number (from 1, as acl list
// prints them) names one of them.
func ruleNumbered(env *Env, number string) ([]store.Rule, int, error) {
	rules, err := env.Store.Rules()
	if err != nil {
		return nil, 0, fmt.Errorf("read access rules: %w", err)
	}
	i, err := strconv.Atoi(number)
	if err != nil || i < 1 || i > len(rules) {
		return nil, 0, fmt.Errorf("no rule %s: there are %d (see berth acl list)", number, len(rules))
	}
	return rules, i, nil
}

func renderRuleChange(w Output, res *RuleChange) error {
	if res.Added {
		_, err := fmt.Fprintf(w.Out, "added rule %d\n", res.Number)
		if err == nil && res.DefaultRule > 0 {
			_, err = fmt.Fprintf(w.Out, "the default policy is now rule %d (every signed-in user may pull everything); `berth acl del %d` removes it\n", res.DefaultRule, res.DefaultRule)
		}
		return err
	}
	r := res.Deleted
	_, err := fmt.Fprintf(w.Out, "deleted rule %d (account %s, name %s, actions %s)\n", res.Number, showPattern(r.Account), showPattern(r.Name), strings.Join(r.Actions, ","))
	return err
}

// matchAny is the pattern an omitted --account or --name stands for, like
// an absent match field in docker_auth: a regular expression matching every
// value. As an account it matches every signed-in caller, never anonymous
// (only --account ” does). A glob "*" would not do for names: it stops at
// '/'.
const matchAny = "/.*/"

// defaultPullRule is the default policy's pull for signed-in users, kept
// as a rule when the first rule is added. The personal namespaces need no
// rule: they hold whatever the rules say.
var defaultPullRule = store.Rule{Account: "/.+/", Name: "**", Actions: []string{"pull"}, Comment: "default policy: signed-in users pull everything"}

func printRules(w io.Writer, rules []store.Rule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tACCOUNT\tTYPE\tNAME\tACTIONS\tCOMMENT")
	for i, r := range rules {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, showPattern(r.Account), showType(r.Type), showPattern(r.Name), strings.Join(r.Actions, ","), r.Comment)
	}
	return tw.Flush()
}

// showPattern prints "" for the empty pattern (the anonymous account), the
// way it is typed on the command line and in docker_auth's YAML.
func showPattern(p string) string {
	if p == "" {
		return `""`
	}
	return p
}

func showType(t string) string {
	if t == "" {
		return auth.TypeRepository
	}
	return t
}

// ruleFromRequest builds and checks the rule of acl add.
func ruleFromRequest(req ACLAdd) (store.Rule, error) {
	if req.Actions == "" {
		return store.Rule{}, errors.New("--actions is required: pull, push, delete or *, comma-separated")
	}
	r := store.Rule{Account: matchAny, Name: matchAny, Actions: splitActions(req.Actions), Type: req.Type, Comment: req.Comment}
	if req.Account != nil {
		r.Account = *req.Account
	}
	if req.Name != nil {
		r.Name = *req.Name
	}
	if err := checkRule(r); err != nil {
		return store.Rule{}, err
	}
	return r, nil
}

// splitActions splits "pull, push" into its actions, dropping empty items
// and repeats.
func splitActions(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// checkRule accepts a rule the server can compile, and refuses docker_auth
// placeholders other than ${account}, which the server would take literally.
func checkRule(r store.Rule) error {
	for _, field := range []struct{ name, pattern string }{{"account", r.Account}, {"type", r.Type}, {"name", r.Name}} {
		rest := strings.ReplaceAll(field.pattern, "${account}", "")
		if i := strings.Index(rest, "${"); i >= 0 {
			placeholder, _, _ := strings.Cut(rest[i:], "}")
			return fmt.Errorf("%s %q uses %s}: berth substitutes only ${account}", field.name, field.pattern, placeholder)
		}
	}
	return auth.ValidateRule(r)
}
