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

var aclListCommand = Command{
	Name:  "acl list",
	Usage: "",
	Run:   runACLList,
}

var aclAddCommand = Command{
	Name:  "acl add",
	Usage: "[--account A] [--name N] [--type T] --actions pull,push,delete|* [--comment C] [--at I]",
	Run:   runACLAdd,
}

var aclDelCommand = Command{
	Name:  "acl del",
	Usage: "I",
	Run:   runACLDel,
}

// matchAny is the pattern an omitted --account or --name stands for, like
// an absent match field in docker_auth: a regular expression matching every
// value, including "" (anonymous). A glob "*" would not do: it stops at '/'.
const matchAny = "/.*/"

func runACLList(_ context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	rules, err := env.Store.Rules()
	if err != nil {
		return fmt.Errorf("list access rules: %w", err)
	}
	if len(rules) == 0 {
		fmt.Fprintln(stdio.Out, "no access rules: the default policy applies (admins may do everything; signed-in users pull everything and push and delete under <account>/; anonymous nothing, unless serve --anonymous-pull)")
		return nil
	}
	return printRules(stdio.Out, rules)
}

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

func runACLAdd(_ context.Context, env *Env, args Args, stdio Stdio) error {
	if len(args.Words) != 0 {
		return errUsage
	}
	r, err := ruleFromFlags(args)
	if err != nil {
		return err
	}
	rules, err := env.Store.Rules()
	if err != nil {
		return fmt.Errorf("read access rules: %w", err)
	}
	at := len(rules) + 1
	if v, ok := args.Flag("at"); ok {
		if at, err = strconv.Atoi(v); err != nil || at < 1 || at > len(rules)+1 {
			return fmt.Errorf("--at %s: want a position from 1 to %d", v, len(rules)+1)
		}
	}
	if err := env.Store.InsertRule(r, at-1); err != nil {
		return fmt.Errorf("add access rule: %w", err)
	}
	fmt.Fprintf(stdio.Out, "added rule %d\n", at)
	return nil
}

// ruleFromFlags builds and checks the rule of `acl add`.
func ruleFromFlags(args Args) (store.Rule, error) {
	actions, ok := args.Flag("actions")
	if !ok {
		return store.Rule{}, errors.New("--actions is required: pull, push, delete or *, comma-separated")
	}
	r := store.Rule{Account: matchAny, Name: matchAny, Actions: splitActions(actions)}
	if v, ok := args.Flag("account"); ok {
		r.Account = v
	}
	if v, ok := args.Flag("name"); ok {
		r.Name = v
	}
	r.Type, _ = args.Flag("type")
	r.Comment, _ = args.Flag("comment")
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

func runACLDel(_ context.Context, env *Env, args Args, stdio Stdio) error {
	word, err := oneWord(args)
	if err != nil {
		return err
	}
	rules, err := env.Store.Rules()
	if err != nil {
		return fmt.Errorf("read access rules: %w", err)
	}
	i, err := strconv.Atoi(word)
	if err != nil || i < 1 || i > len(rules) {
		return fmt.Errorf("no rule %s: there are %d (see berth acl list)", word, len(rules))
	}
	if err := env.Store.DeleteRule(i - 1); err != nil {
		return fmt.Errorf("delete access rule %d: %w", i, err)
	}
	r := rules[i-1]
	fmt.Fprintf(stdio.Out, "deleted rule %d (account %s, name %s, actions %s)\n", i, showPattern(r.Account), showPattern(r.Name), strings.Join(r.Actions, ","))
	return nil
}
