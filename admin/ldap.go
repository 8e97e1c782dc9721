package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// LDAPSet configures LDAP sign-in (docs/ldap.md). The bind password is read
// from stdin in the CLI process, and the CA file there too, so relative
// paths and pipes mean the same with the server up or down.
type LDAPSet struct {
	URL               string `flag:"url" usage:"ldap://host:port or ldaps://host:port (required)" json:"url"`
	BindDN            string `flag:"bind-dn" usage:"the service account that searches for users" json:"bind_dn"`
	BindPasswordStdin bool   `flag:"bind-password-stdin" usage:"read the service account's password from stdin" json:"-"`
	BaseDN            string `flag:"base-dn" usage:"where users are searched (required)" json:"base_dn"`
	UserFilter        string `flag:"user-filter" usage:"finds a user by name, %s the escaped name" json:"user_filter"`
	GroupFilter       string `flag:"group-filter" usage:"search groups with this filter, %s the user's DN, e.g. (member=%s); empty: read memberOf" json:"group_filter,omitempty"`
	GroupBaseDN       string `flag:"group-base-dn" usage:"where groups are searched (default: --base-dn)" json:"group_base_dn,omitempty"`
	StartTLS          bool   `flag:"start-tls" usage:"upgrade an ldap:// connection with StartTLS" json:"start_tls,omitempty"`
	CA                string `flag:"ca" usage:"PEM file of the CA certificates to trust for ldaps:// or StartTLS" json:"-"`
	Timeout           int    `flag:"timeout" usage:"seconds a connection or an operation may take" json:"timeout,omitempty"`
	UIRecheck         int    `flag:"ui-recheck" usage:"seconds between the directory checks of a web UI session (user still there, its groups)" json:"ui_recheck,omitempty"`

	BindPassword string `json:"bind_password,omitempty"` // from stdin, by Prepare
	CAPEM        string `json:"ca_pem,omitempty"`        // the --ca file, by Prepare
}

// LDAPShow prints the LDAP settings; LDAPDisable turns LDAP sign-in off.
type LDAPShow struct{}

// LDAPDisable turns LDAP sign-in off.
type LDAPDisable struct{}

// LDAPTest looks a user up as the service account.
type LDAPTest struct {
	User string `arg:"USER" json:"user"`
}

// LDAPSettings is the result of ldap set and show: the settings without
// the bind password.
type LDAPSettings struct {
	Enabled bool             `json:"enabled"`
	Config  store.LDAPConfig `json:"config"`
}

// LDAPTested is the result of ldap test.
type LDAPTested struct {
	auth.LDAPUser
	Teams []string `json:"teams"`
}

var LDAPSetOp = register(&Op[LDAPSet, LDAPSettings]{
	Name:     "ldap set",
	Defaults: LDAPSet{UserFilter: "(uid=%s)", Timeout: 5, UIRecheck: int(auth.DefaultUIRecheck / time.Second)},
	Prepare: func(req *LDAPSet, c Client) error {
		if req.BindPasswordStdin {
			b, err := io.ReadAll(io.LimitReader(c.In, 4097))
			if err != nil {
				return fmt.Errorf("read the bind password from stdin: %w", err)
			}
			if len(b) > 4096 {
				return errors.New("stdin holds more than 4096 bytes: not a password")
			}
			req.BindPassword = strings.TrimRight(string(b), "\r\n")
		}
		if req.CA != "" {
			pem, err := readInputFile(req.CA, c, "CA file")
			if err != nil {
				return err
			}
			req.CAPEM = string(pem)
		}
		return nil
	},
	Do: func(_ context.Context, env *Env, _ *Task, req LDAPSet) (*LDAPSettings, error) {
		c := store.LDAPConfig{
			URL: req.URL, BindDN: req.BindDN, BindPassword: req.BindPassword, BaseDN: req.BaseDN,
			UserFilter: req.UserFilter, GroupFilter: req.GroupFilter, GroupBaseDN: req.GroupBaseDN,
			StartTLS: req.StartTLS, CAPEM: req.CAPEM, TimeoutSeconds: req.Timeout, UIRecheckSeconds: req.UIRecheck,
		}
		if err := auth.ValidateLDAPConfig(c); err != nil {
			return nil, err
		}
		if err := env.Store.SetLDAPConfig(&c); err != nil {
			return nil, fmt.Errorf("store LDAP settings: %w", err)
		}
		return &LDAPSettings{Enabled: true, Config: hideBindPassword(c)}, nil
	},
	Render: renderLDAPSettings,
})

var LDAPShowOp = register(&Op[LDAPShow, LDAPSettings]{
	Name: "ldap show",
	Do: func(_ context.Context, env *Env, _ *Task, _ LDAPShow) (*LDAPSettings, error) {
		c, err := env.Store.LDAPConfig()
		if errors.Is(err, store.ErrLDAPNotConfigured) {
			return &LDAPSettings{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &LDAPSettings{Enabled: true, Config: hideBindPassword(c)}, nil
	},
	Render: renderLDAPSettings,
})

var LDAPDisableOp = register(&Op[LDAPDisable, LDAPSettings]{
	Name: "ldap disable",
	Do: func(_ context.Context, env *Env, _ *Task, _ LDAPDisable) (*LDAPSettings, error) {
		if err := env.Store.SetLDAPConfig(nil); err != nil {
			return nil, fmt.Errorf("turn LDAP sign-in off: %w", err)
		}
		return &LDAPSettings{}, nil
	},
	Render: renderLDAPSettings,
})

var LDAPTestOp = register(&Op[LDAPTest, LDAPTested]{
	Name: "ldap test",
	Do: func(_ context.Context, env *Env, _ *Task, req LDAPTest) (*LDAPTested, error) {
		c, err := env.Store.LDAPConfig()
		if err != nil {
			return nil, fmt.Errorf("%w (berth ldap set)", err)
		}
		u, err := auth.LDAPLookup(c, req.User)
		if errors.Is(err, auth.ErrBadCredentials) {
			return nil, fmt.Errorf("no LDAP user %s: the filter %s under %s matches no entry, or more than one", req.User, c.UserFilter, c.BaseDN)
		}
		if err != nil {
			return nil, err
		}
		authz, err := auth.LoadAuthorizer(env.Store, false)
		if err != nil {
			return nil, err
		}
		res := &LDAPTested{LDAPUser: u, Teams: authz.TeamsOfGroups(u.Groups)}
		if res.Teams == nil {
			res.Teams = []string{}
		}
		if _, err := env.Store.User(req.User); err == nil {
			return res, fmt.Errorf("%s is also a local user: the local password is checked, never LDAP's", req.User)
		}
		return res, nil
	},
	Render: func(w Output, res *LDAPTested) error {
		fmt.Fprintf(w.Out, "dn: %s\n", res.DN)
		for _, g := range res.Groups {
			fmt.Fprintf(w.Out, "group: %s\n", g)
		}
		_, err := fmt.Fprintf(w.Out, "teams: %s\n", strings.Join(res.Teams, ","))
		return err
	},
})

func hideBindPassword(c store.LDAPConfig) store.LDAPConfig {
	if c.BindPassword != "" {
		c.BindPassword = "(set)"
	}
	return c
}

func renderLDAPSettings(w Output, res *LDAPSettings) error {
	if !res.Enabled {
		_, err := fmt.Fprintln(w.Out, "LDAP sign-in is off")
		return err
	}
	c := res.Config
	fmt.Fprintf(w.Out, "url: %s\nbind-dn: %s\nbind-password: %s\nbase-dn: %s\nuser-filter: %s\n", c.URL, c.BindDN, c.BindPassword, c.BaseDN, c.UserFilter)
	if c.GroupFilter != "" {
		fmt.Fprintf(w.Out, "groups: search %s under %s\n", c.GroupFilter, cmpOr(c.GroupBaseDN, c.BaseDN))
	} else {
		fmt.Fprintln(w.Out, "groups: memberOf")
	}
	_, err := fmt.Fprintf(w.Out, "start-tls: %v\nca: %v\nui-recheck: %v\n", c.StartTLS, c.CAPEM != "", auth.UIRecheck(c))
	return err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
