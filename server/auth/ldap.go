package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/berth-registry/berth/store"
)

// ErrLDAPUnavailable wraps every failure to reach or use the directory
// (connection refused, timeout, TLS, the service account's bind): sign-in
// through LDAP then fails with this error, never with a fallback.
var ErrLDAPUnavailable = errors.New("LDAP directory unavailable")

// ErrLDAPConfigInvalid is returned by ValidateLDAPConfig.
var ErrLDAPConfigInvalid = errors.New("invalid LDAP settings")

// LDAPUser is a directory entry found for a user name: its DN and the DNs
// of its groups (memberOf, or the group search).
type LDAPUser struct {
	Name   string   `json:"name"`
	DN     string   `json:"dn"`
	Groups []string `json:"groups"`
}

// defaultLDAPTimeout bounds a connection and each operation when the
// settings give none.
const defaultLDAPTimeout = 5 * time.Second

// ValidateLDAPConfig checks settings before they are stored: an ldap:// or
// ldaps:// URL with a host, a base DN, a user filter with one %s, a group
// filter (when set) with one %s, StartTLS only with ldap://, CA
// certificates that parse, and a web UI re-check interval of at most a
// day. Errors wrap ErrLDAPConfigInvalid.
func ValidateLDAPConfig(c store.LDAPConfig) error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		return fmt.Errorf("%w: --url %q: want ldap://host[:port] or ldaps://host[:port]", ErrLDAPConfigInvalid, c.URL)
	case c.StartTLS && u.Scheme == "ldaps":
		return fmt.Errorf("%w: --start-tls is for ldap:// URLs; ldaps:// is TLS already", ErrLDAPConfigInvalid)
	case c.BaseDN == "":
		return fmt.Errorf("%w: --base-dn is required", ErrLDAPConfigInvalid)
	case strings.Count(c.UserFilter, "%s") != 1:
		return fmt.Errorf("%w: --user-filter %q: want one %%s for the user name, such as (uid=%%s)", ErrLDAPConfigInvalid, c.UserFilter)
	case c.GroupFilter != "" && strings.Count(c.GroupFilter, "%s") != 1:
		return fmt.Errorf("%w: --group-filter %q: want one %%s for the user's DN, such as (member=%%s)", ErrLDAPConfigInvalid, c.GroupFilter)
	case c.UIRecheckSeconds < 0 || c.UIRecheckSeconds > maxUIRecheckSeconds:
		return fmt.Errorf("%w: --ui-recheck %d: want 1 to %d seconds", ErrLDAPConfigInvalid, c.UIRecheckSeconds, maxUIRecheckSeconds)
	}
	if _, err := ldap.CompileFilter(userFilter(c, "x")); err != nil {
		return fmt.Errorf("%w: --user-filter %q: %v", ErrLDAPConfigInvalid, c.UserFilter, err)
	}
	if c.GroupFilter != "" {
		if _, err := ldap.CompileFilter(fmt.Sprintf(c.GroupFilter, "x")); err != nil {
			return fmt.Errorf("%w: --group-filter %q: %v", ErrLDAPConfigInvalid, c.GroupFilter, err)
		}
	}
	if c.CAPEM != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.CAPEM)) {
		return fmt.Errorf("%w: --ca holds no PEM certificate", ErrLDAPConfigInvalid)
	}
	return nil
}

// userFilter is the user filter with name escaped (RFC 4515), so a name
// such as "*)(uid=*" is matched as those characters, never as syntax.
func userFilter(c store.LDAPConfig, name string) string {
	return fmt.Sprintf(c.UserFilter, ldap.EscapeFilter(name))
}

// LDAPLookup finds the user called name as the service account (no user
// password involved): what `berth ldap test` prints and what tells whether
// a user still exists. It returns ErrBadCredentials when no entry (or more
// than one) matches, and an error wrapping ErrLDAPUnavailable when the
// directory cannot be asked.
func LDAPLookup(c store.LDAPConfig, name string) (LDAPUser, error) {
	conn, err := ldapConnect(c)
	if err != nil {
		return LDAPUser{}, err
	}
	defer conn.Close()
	u, err := ldapFind(conn, c, name)
	if err == nil && c.GroupFilter != "" {
		u.Groups, err = ldapGroups(conn, c, u.DN)
	}
	return u, err
}

// LDAPSignIn checks name and password against the directory: it searches
// for the user as the service account, then binds as the user's DN with
// password, then reads the groups. An empty password is refused before
// anything is sent, since LDAP treats a bind without one as anonymous and
// lets it succeed. It returns ErrBadCredentials for an unknown user or a
// wrong password, an error wrapping ErrLDAPUnavailable when the directory
// cannot be asked. The password goes nowhere but the bind request.
func LDAPSignIn(c store.LDAPConfig, name, password string) (LDAPUser, error) {
	if password == "" {
		return LDAPUser{}, ErrBadCredentials
	}
	conn, err := ldapConnect(c)
	if err != nil {
		return LDAPUser{}, err
	}
	defer conn.Close()
	u, err := ldapFind(conn, c, name)
	if err != nil {
		return LDAPUser{}, err
	}
	if err := conn.Bind(u.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return LDAPUser{}, ErrBadCredentials
		}
		return LDAPUser{}, fmt.Errorf("%w: bind as %s: %v", ErrLDAPUnavailable, u.DN, ldapReason(err))
	}
	if c.GroupFilter != "" {
		// Groups are searched as the service account again: the user
		// may not be allowed to read them.
		if err := conn.Bind(c.BindDN, c.BindPassword); err != nil {
			return LDAPUser{}, fmt.Errorf("%w: bind as %s: %v", ErrLDAPUnavailable, c.BindDN, ldapReason(err))
		}
		if u.Groups, err = ldapGroups(conn, c, u.DN); err != nil {
			return LDAPUser{}, err
		}
	}
	return u, nil
}

// ldapConnect dials the directory, upgrades with StartTLS when asked and
// binds as the service account.
func ldapConnect(c store.LDAPConfig) (*ldap.Conn, error) {
	timeout := defaultLDAPTimeout
	if c.TimeoutSeconds > 0 {
		timeout = time.Duration(c.TimeoutSeconds) * time.Second
	}
	tlsConfig, err := ldapTLS(c)
	if err != nil {
		return nil, err
	}
	conn, err := ldap.DialURL(c.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}), ldap.DialWithTLSConfig(tlsConfig))
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %v", ErrLDAPUnavailable, c.URL, ldapReason(err))
	}
	conn.SetTimeout(timeout)
	if c.StartTLS {
		if err := conn.StartTLS(tlsConfig); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: StartTLS with %s: %v", ErrLDAPUnavailable, c.URL, ldapReason(err))
		}
	}
	if err := conn.Bind(c.BindDN, c.BindPassword); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: bind as %s: %v", ErrLDAPUnavailable, c.BindDN, ldapReason(err))
	}
	return conn, nil
}

func ldapTLS(c store.LDAPConfig) (*tls.Config, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLDAPConfigInvalid, err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if c.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
			return nil, fmt.Errorf("%w: the CA holds no PEM certificate", ErrLDAPConfigInvalid)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// ldapFind searches for exactly one entry of name.
func ldapFind(conn *ldap.Conn, c store.LDAPConfig, name string) (LDAPUser, error) {
	attrs := []string{"dn"}
	if c.GroupFilter == "" {
		attrs = append(attrs, "memberOf")
	}
	res, err := conn.Search(ldap.NewSearchRequest(c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, 0, false, userFilter(c, name), attrs, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return LDAPUser{}, ErrBadCredentials
	case err != nil:
		return LDAPUser{}, fmt.Errorf("%w: search %s: %v", ErrLDAPUnavailable, c.BaseDN, ldapReason(err))
	case len(res.Entries) != 1:
		// None, or a filter that matches several: never guess which.
		return LDAPUser{}, ErrBadCredentials
	}
	e := res.Entries[0]
	return LDAPUser{Name: name, DN: e.DN, Groups: e.GetAttributeValues("memberOf")}, nil
}

// ldapGroups searches the groups whose filter matches the user's DN.
func ldapGroups(conn *ldap.Conn, c store.LDAPConfig, dn string) ([]string, error) {
	base := c.GroupBaseDN
	if base == "" {
		base = c.BaseDN
	}
	res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, fmt.Sprintf(c.GroupFilter, ldap.EscapeFilter(dn)), []string{"dn"}, nil))
	if err != nil {
		return nil, fmt.Errorf("%w: search groups in %s: %v", ErrLDAPUnavailable, base, ldapReason(err))
	}
	groups := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		groups = append(groups, e.DN)
	}
	return groups, nil
}

// ldapReason is the part of an LDAP error worth a log line, on one line.
func ldapReason(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
