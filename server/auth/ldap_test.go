package auth

import (
	"errors"
	"testing"

	"github.com/berth-registry/berth/store"
)

func TestValidateLDAPConfig(t *testing.T) {
	ok := store.LDAPConfig{URL: "ldap://127.0.0.1:389", BaseDN: "dc=x", UserFilter: "(uid=%s)"}
	tests := []struct {
		name   string
		change func(c *store.LDAPConfig)
		ok     bool
	}{
		{"ok", func(*store.LDAPConfig) {}, true},
		{"ldaps", func(c *store.LDAPConfig) { c.URL = "ldaps://ldap.example.org" }, true},
		{"group filter", func(c *store.LDAPConfig) { c.GroupFilter = "(member=%s)" }, true},
		{"http url", func(c *store.LDAPConfig) { c.URL = "http://x" }, false},
		{"no host", func(c *store.LDAPConfig) { c.URL = "ldap://" }, false},
		{"starttls on ldaps", func(c *store.LDAPConfig) { c.URL, c.StartTLS = "ldaps://x", true }, false},
		{"no base", func(c *store.LDAPConfig) { c.BaseDN = "" }, false},
		{"filter without %s", func(c *store.LDAPConfig) { c.UserFilter = "(uid=alice)" }, false},
		{"filter with two %s", func(c *store.LDAPConfig) { c.UserFilter = "(|(uid=%s)(cn=%s))" }, false},
		{"filter syntax", func(c *store.LDAPConfig) { c.UserFilter = "(uid=%s" }, false},
		{"group filter without %s", func(c *store.LDAPConfig) { c.GroupFilter = "(member=x)" }, false},
		{"ca not PEM", func(c *store.LDAPConfig) { c.CAPEM = "not a certificate" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := ValidateLDAPConfig(c)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrLDAPConfigInvalid)) {
				t.Fatalf("ValidateLDAPConfig(%+v) = %v, want ok=%v", c, err, tc.ok)
			}
		})
	}
}

func TestUserFilter_Escapes(t *testing.T) {
	c := store.LDAPConfig{UserFilter: "(&(objectClass=person)(uid=%s))"}
	for name, want := range map[string]string{
		"alice":    `(&(objectClass=person)(uid=alice))`,
		"*)(uid=*": `(&(objectClass=person)(uid=\2a\29\28uid=\2a))`,
		`a\b`:      `(&(objectClass=person)(uid=a\5cb))`,
		"alic*":    `(&(objectClass=person)(uid=alic\2a))`,
	} {
		if got := userFilter(c, name); got != want {
			t.Errorf("userFilter(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestLDAPSignIn_EmptyPasswordNeverSent(t *testing.T) {
	// The URL points nowhere: an empty password must be refused before
	// any connection, so the answer is bad credentials, not unavailable.
	c := store.LDAPConfig{URL: "ldap://127.0.0.1:1", BaseDN: "dc=x", UserFilter: "(uid=%s)"}
	if _, err := LDAPSignIn(c, "alice", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("LDAPSignIn with an empty password = %v, want ErrBadCredentials", err)
	}
	if _, err := LDAPSignIn(c, "alice", "pw"); !errors.Is(err, ErrLDAPUnavailable) {
		t.Fatalf("LDAPSignIn against a closed port = %v, want ErrLDAPUnavailable", err)
	}
}
