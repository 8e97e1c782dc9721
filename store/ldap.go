package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var bucketLDAP = []byte("ldap")

// ErrLDAPNotConfigured is returned by LDAPConfig when LDAP sign-in is off.
var ErrLDAPNotConfigured = errors.New("LDAP sign-in is not configured")

// LDAPConfig is how berth signs users in against a directory (server/auth
// ldap.go does the talking). BindPassword is the service account's
// password; it is stored as given, like the signing keys, so meta.db must
// stay private (it is 0600).
type LDAPConfig struct {
	URL          string `json:"url"`                    // ldap://host:port or ldaps://host:port
	BindDN       string `json:"bindDN"`                 // the service account that searches
	BindPassword string `json:"bindPassword,omitempty"` // its password
	BaseDN       string `json:"baseDN"`                 // where users are searched
	// UserFilter finds a user by name; %s is replaced by the escaped name
	// ("(uid=%s)", "(sAMAccountName=%s)").
	UserFilter string `json:"userFilter"`
	// GroupBaseDN and GroupFilter, when GroupFilter is set, find a user's
	// groups by search ("(member=%s)", %s the user's escaped DN) for
	// directories without memberOf; otherwise groups come from the user's
	// memberOf attribute.
	GroupBaseDN string `json:"groupBaseDN,omitempty"`
	GroupFilter string `json:"groupFilter,omitempty"`
	StartTLS    bool   `json:"startTLS,omitempty"`
	CAPEM       string `json:"caPEM,omitempty"` // CA certificates to trust, PEM
	// TimeoutSeconds bounds each connection and operation; 0 means 5.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// UIRecheckSeconds is how often a web UI session of a directory user
	// asks the directory again whether the user exists and which groups
	// it is in; 0 (settings stored before it existed) means 120.
	UIRecheckSeconds int `json:"uiRecheckSeconds,omitempty"`
}

// LDAPConfig returns the LDAP settings, or ErrLDAPNotConfigured.
func (s *Store) LDAPConfig() (LDAPConfig, error) {
	var c LDAPConfig
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLDAP)
		if b == nil {
			return ErrLDAPNotConfigured
		}
		v := b.Get([]byte("config"))
		if v == nil {
			return ErrLDAPNotConfigured
		}
		if err := decode(v, &c); err != nil {
			return fmt.Errorf("ldap config: %w", err)
		}
		return nil
	})
	return c, err
}

// SetLDAPConfig stores c, or turns LDAP sign-in off when c is nil. Either
// way the web UI sessions of directory users end in the same transaction:
// they were verified under the settings before.
func (s *Store) SetLDAPConfig(c *LDAPConfig) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		if err := deleteDirectoryUISessions(tx); err != nil {
			return err
		}
		if c == nil {
			return tx.Bucket(bucketLDAP).Delete([]byte("config"))
		}
		return putRecord(tx, bucketLDAP, []byte("config"), *c)
	})
}
