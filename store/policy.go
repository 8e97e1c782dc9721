package store

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RetentionRule says which tags of the repositories matching Repos to
// keep; every other tag of those repositories is removed by a retention
// run (ApplyRetention). Its keep criteria are OR'ed, and so are the rules:
// a tag any matching rule keeps survives. A rule with no keep criterion
// (only UntaggedAfter) keeps every tag.
type RetentionRule struct {
	Name  string `json:"name"`
	Repos string `json:"repos"`
	// KeepLast keeps the N most recently pushed tags.
	KeepLast int `json:"keepLast,omitempty"`
	// KeepPulled keeps the N most recently pulled tags (by their
	// manifest's last pull, by tag or digest).
	KeepPulled int `json:"keepPulled,omitempty"`
	// KeepWithin keeps the tags pushed or pulled within this long.
	KeepWithin time.Duration `json:"keepWithin,omitempty"`
	// KeepTags keeps the tags this regular expression matches (anchored).
	KeepTags string `json:"keepTags,omitempty"`
	// UntaggedAfter deletes the untagged manifests neither pushed nor
	// pulled within this long; zero leaves untagged manifests to GC.
	UntaggedAfter time.Duration `json:"untaggedAfter,omitempty"`
	Created       time.Time     `json:"created"`

	repos Pattern
	tags  *regexp.Regexp
}

// ImmutableRule makes the tags matching Tags in the repositories matching
// Repos immutable: once a tag exists, pushing another manifest under it or
// deleting it fails with *ImmutableError, unless an admin lifted it
// (LiftImmutable). The fallback tags of signatures and attestations
// ("sha256-<hex>", ".sig", ".att") are not caught unless Signatures is set.
type ImmutableRule struct {
	Name       string    `json:"name"`
	Repos      string    `json:"repos"`
	Tags       string    `json:"tags"`
	Signatures bool      `json:"signatures,omitempty"`
	Created    time.Time `json:"created"`

	repos, tagPat Pattern
}

// ImmutableError is the refusal of a change to an immutable tag.
type ImmutableError struct {
	Rule, Repo, Tag string
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("tag %s:%s is immutable (rule %q); an admin can lift it with berth immutable lift %s:%s", e.Repo, e.Tag, e.Rule, e.Repo, e.Tag)
}

// Errors of the rule operations.
var (
	ErrPolicyUnknown = errors.New("no such rule")
	ErrPolicyExists  = errors.New("a rule of that name exists")
	ErrPolicyInvalid = errors.New("invalid rule")
)

// Validate checks r and compiles its patterns; errors wrap ErrPolicyInvalid.
func (r *RetentionRule) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrPolicyInvalid, fmt.Sprintf(format, a...))
	}
	if !objectName().MatchString(r.Name) {
		return bad("name %q: use 1-64 of a-z, 0-9, '.', '_', '-'", r.Name)
	}
	var err error
	if r.repos, err = ParsePattern(r.Repos); err != nil {
		return bad("repos: %v", err)
	}
	if r.KeepLast < 0 || r.KeepPulled < 0 || r.KeepWithin < 0 || r.UntaggedAfter < 0 {
		return bad("counts and durations must not be negative")
	}
	if r.KeepTags != "" {
		if r.tags, err = regexp.Compile(`^(?:` + r.KeepTags + `)$`); err != nil {
			return bad("keep-tags %q: %v", r.KeepTags, err)
		}
	}
	if !r.governsTags() && r.UntaggedAfter == 0 {
		return bad("no criterion: give --keep-last, --keep-pulled, --keep-within, --keep-tags or --untagged-after")
	}
	return nil
}

// governsTags reports whether r removes tags: it has a keep criterion.
func (r *RetentionRule) governsTags() bool {
	return r.KeepLast > 0 || r.KeepPulled > 0 || r.KeepWithin > 0 || r.KeepTags != ""
}

// Validate checks r and compiles its patterns; errors wrap ErrPolicyInvalid.
func (r *ImmutableRule) Validate() error {
	if !objectName().MatchString(r.Name) {
		return fmt.Errorf("%w: name %q: use 1-64 of a-z, 0-9, '.', '_', '-'", ErrPolicyInvalid, r.Name)
	}
	var err error
	if r.repos, err = ParsePattern(r.Repos); err != nil {
		return fmt.Errorf("%w: repos: %v", ErrPolicyInvalid, err)
	}
	if r.tagPat, err = ParsePattern(r.Tags); err != nil {
		return fmt.Errorf("%w: tags: %v", ErrPolicyInvalid, err)
	}
	return nil
}

// Catches reports whether r makes tag of repo immutable.
func (r *ImmutableRule) Catches(repo, tag string) bool {
	if _, sig := SignatureSubject(tag); sig && !r.Signatures {
		return false
	}
	return r.repos.Match(repo) && r.tagPat.Match(tag)
}

// AddRetentionRule stores r after validating it; ErrPolicyExists when the
// name is taken.
func (s *Store) AddRetentionRule(r RetentionRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Created = s.now().UTC()
	return addPolicy(s.db, bucketRetention, r.Name, r)
}

// RetentionRules returns the retention rules, by name, compiled.
func (s *Store) RetentionRules() ([]RetentionRule, error) {
	var out []RetentionRule
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = retentionRules(tx)
		return err
	})
	return out, err
}

func retentionRules(tx *bolt.Tx) ([]RetentionRule, error) {
	var out []RetentionRule
	b := tx.Bucket(bucketRetention)
	if b == nil { // a read-only open of a data dir older than retention
		return nil, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var r RetentionRule
		if err := decode(v, &r); err != nil {
			return fmt.Errorf("retention rule %s: %w", k, err)
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("retention rule %s: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// DeleteRetentionRule removes the rule named name; ErrPolicyUnknown when
// there is none.
func (s *Store) DeleteRetentionRule(name string) error {
	return deletePolicy(s.db, bucketRetention, name)
}

// AddImmutableRule stores r after validating it; ErrPolicyExists when the
// name is taken. It applies to the next change.
func (s *Store) AddImmutableRule(r ImmutableRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Created = s.now().UTC()
	if err := addPolicy(s.db, bucketImmutable, r.Name, r); err != nil {
		return err
	}
	return s.loadImmutable()
}

// ImmutableRules returns the immutability rules, by name.
func (s *Store) ImmutableRules() []ImmutableRule {
	if p := s.immutable.Load(); p != nil {
		return *p
	}
	return nil
}

// DeleteImmutableRule removes the rule named name; ErrPolicyUnknown when
// there is none.
func (s *Store) DeleteImmutableRule(name string) error {
	if err := deletePolicy(s.db, bucketImmutable, name); err != nil {
		return err
	}
	return s.loadImmutable()
}

// loadImmutable reads the immutability rules into memory, where every
// manifest put and tag delete consults them (at Open and after a change).
func (s *Store) loadImmutable() error {
	var rules []ImmutableRule
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImmutable)
		if b == nil { // a read-only open of a data dir older than immutability
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r ImmutableRule
			if err := decode(v, &r); err != nil {
				return fmt.Errorf("immutable rule %s: %w", k, err)
			}
			if err := r.Validate(); err != nil {
				return fmt.Errorf("immutable rule %s: %w", k, err)
			}
			rules = append(rules, r)
			return nil
		})
	})
	if err == nil {
		s.immutable.Store(&rules)
	}
	return err
}

// immutableRule returns the first rule that makes tag of repo immutable.
func (s *Store) immutableRule(repo, tag string) (ImmutableRule, bool) {
	for _, r := range s.ImmutableRules() {
		if r.Catches(repo, tag) {
			return r, true
		}
	}
	return ImmutableRule{}, false
}

// LiftImmutable lets the next overwrite or delete of tag of repo through
// its immutability rule, if it comes within ttl. A lift is used up by
// that one change.
func (s *Store) LiftImmutable(repo, tag string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: lift duration must be positive", ErrPolicyInvalid)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLifts).Put(key(repo, tag), timeValue(s.now().Add(ttl)))
	})
}

// checkMutable fails with *ImmutableError when a rule protects tag of
// repo and no live lift lets the change through; a live lift is used up.
func (s *Store) checkMutable(tx *bolt.Tx, repo, tag string) error {
	r, ok := s.immutableRule(repo, tag)
	if !ok {
		return nil
	}
	lifts := tx.Bucket(bucketLifts)
	k := key(repo, tag)
	if v := lifts.Get(k); v != nil && s.now().Before(parseTimeValue(v)) {
		return lifts.Delete(k)
	}
	return &ImmutableError{Rule: r.Name, Repo: repo, Tag: tag}
}

// checkRetag fails when tag of repo exists, points at a manifest other
// than d, and is immutable.
func (s *Store) checkRetag(tx *bolt.Tx, repo, tag string, d Digest) error {
	v := tx.Bucket(bucketTags).Get(key(repo, tag))
	if v == nil || Digest(v) == d {
		return nil
	}
	return s.checkMutable(tx, repo, tag)
}

func addPolicy(db *bolt.DB, bucket []byte, name string, rec any) error {
	v, err := encode(rec)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s", ErrPolicyExists, name)
		}
		return b.Put([]byte(name), v)
	})
}

func deletePolicy(db *bolt.DB, bucket []byte, name string) error {
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: %s", ErrPolicyUnknown, name)
		}
		return b.Delete([]byte(name))
	})
}

// checkTagsMutable fails when a tag of repo that points at d is immutable:
// deleting a manifest by digest deletes its tags with it.
func (s *Store) checkTagsMutable(tx *bolt.Tx, repo string, d Digest) error {
	if len(s.ImmutableRules()) == 0 {
		return nil
	}
	pre := prefix(repo)
	c := tx.Bucket(bucketTags).Cursor()
	var tags []string
	for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
		if Digest(v) == d {
			tags = append(tags, string(k[len(pre):]))
		}
	}
	for _, t := range tags {
		if err := s.checkMutable(tx, repo, t); err != nil {
			return err
		}
	}
	return nil
}
