package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrRecordInvalid is wrapped by the errors for a meta.db record berth
// could not have written: a restore refuses the archive, and Open the data
// directory, naming the record.
var ErrRecordInvalid = errors.New("meta.db holds an invalid record")

// recordError names the record b/k and says what is wrong with it.
func recordError(b []byte, k []byte, format string, args ...any) error {
	return fmt.Errorf("%w: %s %q: %s", ErrRecordInvalid, b, k, fmt.Sprintf(format, args...))
}

// ValidateRecords checks every record of meta.db against the rules berth
// writes by: users are named as their key says and by the user-name
// grammar, with a password hash; every repository name in a key follows
// the repository grammar, every tag the tag grammar, every digest the
// digest grammar; every record decodes; and every access rule passes
// checkRule (server/auth's ValidateRule; nil skips the rule check). It
// returns the first invalid record as an error wrapping ErrRecordInvalid,
// nil when all are valid, or an error of the read.
//
// It reads every record, so it is for a restore, which must not let a
// hostile or damaged archive in; Open runs the cheap part (validateAuth).
func (s *Store) ValidateRecords(checkRule func(Rule) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		if err := validateAuth(tx); err != nil {
			return err
		}
		err := tx.Bucket(bucketUsers).ForEach(func(k, _ []byte) error {
			if err := ValidateUserName(string(k)); err != nil {
				return recordError(bucketUsers, k, "%v", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := validateRules(tx, checkRule); err != nil {
			return err
		}
		return validateContent(tx)
	})
}

// validateAuth checks users and repositories, the records a hostile
// archive uses to sign in as another user or to reach outside the
// repository grammar: few, so Open checks them every time. It leaves out
// the user-name grammar, which is newer than some stored names: such a
// user can still sign in and be deleted.
func validateAuth(tx *bolt.Tx) error {
	err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		u, err := decodeUser(v)
		switch {
		case err != nil:
			return recordError(bucketUsers, k, "%v", err)
		case u.Name != string(k):
			return recordError(bucketUsers, k, "its record is for user %q: it would let one sign in as the other", u.Name)
		case len(u.PasswordHash) == 0:
			return recordError(bucketUsers, k, "it has no password hash")
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketRepos).ForEach(func(k, _ []byte) error {
		if err := ValidateRepository(string(k)); err != nil {
			return recordError(bucketRepos, k, "%v", err)
		}
		return nil
	})
}

func validateRules(tx *bolt.Tx, checkRule func(Rule) error) error {
	return tx.Bucket(bucketRules).ForEach(func(k, v []byte) error {
		var r Rule
		if len(k) != 8 {
			return recordError(bucketRules, k, "its key is not a position")
		}
		if err := decode(v, &r); err != nil {
			return recordError(bucketRules, k, "%v", err)
		}
		if checkRule != nil {
			if err := checkRule(r); err != nil {
				return fmt.Errorf("%w: access rule %d (account %q, name %q): %v", ErrRecordInvalid, positionOf(k)+1, r.Account, r.Name, err)
			}
		}
		return nil
	})
}

func positionOf(k []byte) uint64 {
	var n uint64
	for _, c := range k {
		n = n<<8 | uint64(c)
	}
	return n
}

// keyShape says what each part of a bucket's composite keys must be.
type keyShape []func(string) error

var (
	partRepo   = ValidateRepository
	partTag    = ValidateTag
	partDigest = func(s string) error { _, err := ParseDigest(s); return err }
)

var contentKeys = []struct {
	bucket []byte
	shape  keyShape
	value  func([]byte) error
}{
	{bucketBlobs, keyShape{partDigest}, func(v []byte) error { var r blobRecord; return decode(v, &r) }},
	{bucketLinks, keyShape{partRepo, partDigest}, nil},
	{bucketBlobRepos, keyShape{partDigest, partRepo}, nil},
	{bucketManifests, keyShape{partRepo, partDigest}, func(v []byte) error { _, _, err := decodeManifest(v); return err }},
	{bucketRefs, keyShape{partRepo, partDigest, partDigest}, nil},
	{bucketTags, keyShape{partRepo, partTag}, partDigestBytes},
	{bucketReferrers, keyShape{partRepo, partDigest, partDigest}, nil},
	{bucketBroken, keyShape{partRepo, partDigest}, nil},
	{bucketTagTimes, keyShape{partRepo, partTag}, nil},
	{bucketPulls, keyShape{partRepo, partDigest}, nil},
	{bucketLifts, keyShape{partRepo, partTag}, nil},
	{bucketKeys, nil, func(v []byte) error { var k SigningKey; return decode(v, &k) }},
	{bucketTokens, nil, func(v []byte) error { var t RefreshToken; return decode(v, &t) }},
}

func partDigestBytes(v []byte) error { return partDigest(string(v)) }

// validateContent checks the keys and values of the content buckets.
func validateContent(tx *bolt.Tx) error {
	for _, c := range contentKeys {
		err := tx.Bucket(c.bucket).ForEach(func(k, v []byte) error {
			if c.shape != nil {
				parts := splitKey(k)
				if len(parts) != len(c.shape) {
					return recordError(c.bucket, k, "its key has %d parts, not %d", len(parts), len(c.shape))
				}
				for i, check := range c.shape {
					if err := check(parts[i]); err != nil {
						return recordError(c.bucket, k, "%v", err)
					}
				}
			}
			if c.value != nil {
				if err := c.value(v); err != nil {
					return recordError(c.bucket, k, "%v", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
