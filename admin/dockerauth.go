package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// aclImportCommand imports the `users:` and `acl:` sections of a
// cesanta/docker_auth auth_config.yml read from stdin; other sections
// (server, token, ...) are ignored.
//
//   - acl: the whole list is checked first; if any entry cannot be kept with
//     its meaning (a match on ip, labels or other fields berth lacks, a
//     placeholder other than ${account}, a bad pattern or action, an empty
//     action list) nothing at all is imported. Otherwise it replaces every
//     access rule in one transaction. Absent match fields match anything, as
//     in docker_auth. A file without `acl:` leaves the rules alone; an empty
//     `acl: []` is refused, because docker_auth then denies everything
//     while berth without rules applies its default policy.
//   - users: handled like user import-htpasswd: bcrypt users are added (not
//     as admins) or get the file's password, others are refused by name, and
//     the command fails at the end listing them. The entry "" (docker_auth's
//     way of allowing anonymous access) is skipped: anonymous needs no user.
//
// The CLI reads File (- for stdin) and sends its content as Data.
type ACLImport struct {
	File      string `arg:"FILE" json:"-"`
	Overwrite bool   `flag:"overwrite" usage:"replace the password of users that exist already (else they are refused by name)" json:"overwrite,omitempty"`
	Data      []byte `json:"data"`
}

var ACLImportOp = register(&Op[ACLImport, Imported]{
	Name: "acl import",
	Prepare: func(req *ACLImport, c Client) error {
		var err error
		req.Data, err = readInputFile(req.File, c, "auth_config.yml")
		return err
	},
	Do: func(_ context.Context, env *Env, _ *Task, req ACLImport) (*Imported, error) {
		imp, err := parseDockerAuth(req.Data)
		if err != nil {
			return nil, err
		}
		res := &Imported{Lines: []string{}}
		imported := 0
		for _, u := range imp.users {
			r, err := importUser(env.Store, u.Name, []byte(u.Hash), req.Overwrite, res)
			if err != nil {
				return res, err
			}
			if r != nil {
				imp.refused = append(imp.refused, *r)
				continue
			}
			imported++
		}
		if imp.anonymous {
			res.Lines = append(res.Lines, `skipped user "": anonymous access needs no user in berth (see serve --anonymous-pull and rules with account "")`)
		}
		if err := replaceRules(env.Store, imp, res); err != nil {
			return res, err
		}
		return res, refusedError(imported, imp.refused)
	},
	Render: renderImported,
})

// maxConfigSize bounds the auth_config.yml read from stdin.
const maxConfigSize = 16 << 20

// dockerAuthConfig is the part of auth_config.yml berth reads.
type dockerAuthConfig struct {
	Users map[string]*dockerAuthUser `yaml:"users"`
	ACL   *[]dockerAuthEntry         `yaml:"acl"`
}

type dockerAuthUser struct {
	Password *string `yaml:"password"`
}

type dockerAuthEntry struct {
	Match   map[string]yaml.Node `yaml:"match"` // nodes, to refuse fields berth lacks by name whatever their shape
	Actions *[]string            `yaml:"actions"`
	Comment string               `yaml:"comment"`
}

// dockerAuthImport is an auth_config.yml turned into berth's terms.
type dockerAuthImport struct {
	users     []importedUser
	refused   []refusal
	anonymous bool // the file has the "" user
	hasACL    bool
	rules     []store.Rule
	// anonymousCopies counts the rules added to keep the anonymous
	// caller's matches (see parseDockerAuth).
	anonymousCopies int
}

// parseDockerAuth reads an auth_config.yml. An error means nothing may be
// imported.
func parseDockerAuth(data []byte) (dockerAuthImport, error) {
	var imp dockerAuthImport
	var cfg dockerAuthConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return imp, fmt.Errorf("parse auth_config.yml: %s", yamlError(err))
	}
	if cfg.ACL != nil {
		if len(*cfg.ACL) == 0 {
			return imp, errors.New("acl: is empty, which in docker_auth denies everyone, while berth without rules applies its default policy: add a rule or remove the acl: key")
		}
		imp.hasACL = true
		for i, e := range *cfg.ACL {
			r, err := ruleFromDockerAuth(e)
			if err != nil {
				return imp, fmt.Errorf("acl entry %d: %w", i+1, err)
			}
			imp.rules = append(imp.rules, r)
			if r.Account != "" && auth.PatternMatchesAnonymous(r.Account) {
				// Right after the original, the copy keeps the anonymous
				// caller's first match where docker_auth had it.
				anon := r
				anon.Account = ""
				imp.rules = append(imp.rules, anon)
				imp.anonymousCopies++
			}
		}
	}
	names := make([]string, 0, len(cfg.Users))
	for name := range cfg.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			imp.anonymous = true
			continue
		}
		u := cfg.Users[name]
		if err := checkDockerAuthUser(name, u); err != nil {
			imp.refused = append(imp.refused, refusal{Name: name, Reason: err.Error()})
			continue
		}
		imp.users = append(imp.users, importedUser{Name: name, Hash: *u.Password})
	}
	return imp, nil
}

func checkDockerAuthUser(name string, u *dockerAuthUser) error {
	if err := store.ValidateUserName(name); err != nil {
		return err
	}
	if u == nil || u.Password == nil {
		return errors.New("no password")
	}
	return checkBcryptHash(*u.Password)
}

// ruleFromDockerAuth converts one acl entry, keeping its meaning or failing.
func ruleFromDockerAuth(e dockerAuthEntry) (store.Rule, error) {
	// An absent type matches every resource type in docker_auth, the
	// catalog included; berth's empty Type would mean repository only.
	r := store.Rule{Account: matchAny, Name: matchAny, Type: "*", Comment: e.Comment}
	keys := make([]string, 0, len(e.Match))
	for k := range e.Match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var field *string
		switch k {
		case "account":
			field = &r.Account
		case "name":
			field = &r.Name
		case "type":
			field = &r.Type
		default:
			return store.Rule{}, fmt.Errorf("match on %q is not supported by berth (only account, name and type)", k)
		}
		v := e.Match[k]
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			// null is absent, as in docker_auth: the default stays.
		case v.Kind == yaml.ScalarNode:
			*field = v.Value
		default:
			return store.Rule{}, fmt.Errorf("match %s on line %d is not a string", k, v.Line)
		}
	}
	switch {
	case e.Actions == nil:
		return store.Rule{}, errors.New("no actions: list")
	case len(*e.Actions) == 0:
		return store.Rule{}, errors.New("actions: [] (an explicit deny) is not supported by berth: no match already denies, so reorder or narrow the rules above it")
	}
	r.Actions = *e.Actions
	if err := checkRule(r); err != nil {
		return store.Rule{}, err
	}
	return r, nil
}

// yamlError gives a YAML error on one line: the decoder lists a file's type
// errors on several.
func yamlError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

func replaceRules(s *store.Store, imp dockerAuthImport, res *Imported) error {
	if !imp.hasACL {
		res.Lines = append(res.Lines, "the file has no acl: section: access rules left as they are")
		return nil
	}
	old, err := s.Rules()
	if err != nil {
		return fmt.Errorf("read access rules: %w", err)
	}
	if err := s.ReplaceRules(imp.rules); err != nil {
		return fmt.Errorf("replace access rules: %w", err)
	}
	line := fmt.Sprintf("replaced %d access rules with the %d of the file", len(old), len(imp.rules)-imp.anonymousCopies)
	if imp.anonymousCopies > 0 {
		line += fmt.Sprintf(", and %d copies with account \"\" for anonymous callers, whom docker_auth's patterns matched and berth's do not", imp.anonymousCopies)
	}
	res.Lines = append(res.Lines, line)
	return nil
}
