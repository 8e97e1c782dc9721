package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StoredManifest is a manifest as kept in a repository. Body is a copy, safe
// to use after the call.
type StoredManifest struct {
	Digest       Digest
	MediaType    string
	ArtifactType string
	Annotations  map[string]string
	Subject      Digest
	Size         int64
	Body         []byte
	Created      time.Time
}

// PutManifest stores body as a manifest of repo, under reference ref (a tag
// or a digest) and additionally under every tag of extraTags (the OCI
// "?tag=" parameters of a put by digest).
//
// It parses and hashes the body first, then checks, in the same write
// transaction that records the manifest, that every blob it references is
// linked in repo and every child manifest is stored there; otherwise it
// returns *MissingRefError and stores nothing. A descriptor whose size is
// not that of the stored blob or child fails with *SizeMismatchError. Because blob deletes and GC
// remove links in their own write transactions, a manifest never becomes
// visible while one of its blobs is missing. A digest ref that does not match
// the body fails with ErrDigestMismatch.
func (s *Store) PutManifest(repo string, ref Reference, extraTags []string, contentType string, body []byte) (StoredManifest, *Manifest, error) {
	return s.PutManifestBy(Origin{}, repo, ref, extraTags, contentType, body)
}

// PutManifestBy is PutManifest made by origin: in the same transaction it
// records a push event per tag (or one for a put by digest) in the outbox,
// when a webhook wants it.
func (s *Store) PutManifestBy(o Origin, repo string, ref Reference, extraTags []string, contentType string, body []byte) (StoredManifest, *Manifest, error) {
	m, err := ParseManifest(contentType, body)
	if err != nil {
		return StoredManifest{}, nil, err
	}
	d := DigestOf(SHA256, body)
	if ref.Digest != "" {
		if d = DigestOf(ref.Digest.Algorithm(), body); d != ref.Digest {
			return StoredManifest{}, nil, fmt.Errorf("%w: body is %s", ErrDigestMismatch, d)
		}
	}
	tags := extraTags
	if ref.Tag != "" {
		tags = append([]string{ref.Tag}, extraTags...)
	}
	now := s.now()
	rec := newManifestRecord(m, now)
	value, err := encodeManifest(rec, body)
	if err != nil {
		return StoredManifest{}, nil, err
	}
	stored := StoredManifest{
		Digest: d, MediaType: rec.MediaType, ArtifactType: rec.ArtifactType,
		Annotations: rec.Annotations, Subject: rec.Subject, Size: int64(len(body)), Body: body, Created: now,
	}
	evs := func() []Event { return manifestEvents(o, repo, stored, tags) }
	pending, err := s.prepareEvents(evs())
	if err != nil {
		return StoredManifest{}, nil, err
	}
	// Shared with concurrent pushes (groupcommit.go); the function only
	// reads and writes tx, so it may run again when another job fails.
	err = s.groupUpdate(nil, func(tx *bolt.Tx) error {
		for _, t := range tags {
			if err := s.checkRetag(tx, repo, t, d); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketManifests).Get(key(repo, string(d))) == nil {
			if err := s.checkQuotas(tx, repo, nil, int64(len(body))); err != nil {
				return err
			}
		}
		if err := putManifest(tx, repo, d, rec, m.Sizes, value, tags, now); err != nil {
			return err
		}
		return s.recordEvents(tx, pending, evs)
	})
	if err != nil {
		return StoredManifest{}, nil, err
	}
	return stored, m, nil
}

func putManifest(tx *bolt.Tx, repo string, d Digest, rec manifestRecord, sizes map[Digest]int64, value []byte, tags []string, now time.Time) error {
	if missing := missingRefs(tx, repo, rec); len(missing) > 0 {
		return &MissingRefError{Digest: missing[0]}
	}
	if err := checkSizes(tx, repo, rec, sizes); err != nil {
		return err
	}
	return recordManifest(tx, repo, d, rec, value, tags, now)
}

// missingRefs returns the blobs rec lists that repo does not link and the
// children repo does not store, blobs first, in the record's order.
func missingRefs(tx *bolt.Tx, repo string, rec manifestRecord) []Digest {
	links, manifests := tx.Bucket(bucketLinks), tx.Bucket(bucketManifests)
	var missing []Digest
	for _, b := range rec.Blobs {
		if links.Get(key(repo, string(b))) == nil {
			missing = append(missing, b)
		}
	}
	for _, c := range rec.Children {
		if manifests.Get(key(repo, string(c))) == nil {
			missing = append(missing, c)
		}
	}
	return missing
}

// recordManifest writes manifest d of repo with its references, subject
// and tags, clearing a broken mark; the caller has checked its references
// (or marks it broken after).
func recordManifest(tx *bolt.Tx, repo string, d Digest, rec manifestRecord, value []byte, tags []string, now time.Time) error {
	manifests := tx.Bucket(bucketManifests)
	mk := key(repo, string(d))
	existed := manifests.Get(mk) != nil
	// Its references were just checked: a manifest a repair had marked is
	// whole again.
	if err := tx.Bucket(bucketBroken).Delete(mk); err != nil {
		return err
	}
	// Put even when it exists: the fresh Created protects a re-pushed
	// manifest (say, an index's child pushed again before the index) from
	// GC's grace period.
	if err := manifests.Put(mk, value); err != nil {
		return err
	}
	if !existed {
		refs := tx.Bucket(bucketRefs)
		for _, target := range append(append([]Digest(nil), rec.Blobs...), rec.Children...) {
			if err := refs.Put(key(repo, string(target), string(d)), nil); err != nil {
				return err
			}
		}
		if rec.Subject != "" {
			if err := tx.Bucket(bucketReferrers).Put(key(repo, string(rec.Subject), string(d)), nil); err != nil {
				return err
			}
		}
	}
	for _, t := range tags {
		if err := tx.Bucket(bucketTags).Put(key(repo, t), []byte(d)); err != nil {
			return err
		}
		// The push time retention's keep-last orders tags by.
		if err := tx.Bucket(bucketTagTimes).Put(key(repo, t), timeValue(now)); err != nil {
			return err
		}
	}
	return ensureRepo(tx, repo, now)
}

// checkSizes compares the sizes the descriptors declare with the stored
// blobs and child manifests, all present (putManifest checked): a mismatch
// is a manifest that clients such as containerd refuse on pull.
func checkSizes(tx *bolt.Tx, repo string, rec manifestRecord, sizes map[Digest]int64) error {
	blobs, manifests := tx.Bucket(bucketBlobs), tx.Bucket(bucketManifests)
	for _, b := range rec.Blobs {
		var br blobRecord
		if err := decode(blobs.Get([]byte(b)), &br); err != nil {
			return fmt.Errorf("blob %s: %w", b, err)
		}
		if br.Size != sizes[b] {
			return &SizeMismatchError{Digest: b, Declared: sizes[b], Stored: br.Size}
		}
	}
	for _, c := range rec.Children {
		size, err := manifestBodySize(manifests.Get(key(repo, string(c))))
		if err != nil {
			return fmt.Errorf("manifest %s: %w", c, err)
		}
		if size != sizes[c] {
			return &SizeMismatchError{Digest: c, Declared: sizes[c], Stored: size}
		}
	}
	return nil
}

// Manifest returns the manifest of repo that ref names: the tag's current
// target, or the digest. It returns ErrManifestUnknown when there is none,
// and also for a manifest that lists a blob or child repo no longer has
// (verify --repair forgot a corrupt blob), or whose stored body does not
// hash to its digest: to a client it is absent, so a push sends it again,
// whole (see markBroken).
func (s *Store) Manifest(repo string, ref Reference) (StoredManifest, error) {
	return s.manifest(repo, ref, storedManifest)
}

// PulledManifest is Manifest for a pull (GET or HEAD): it fills only
// Digest, MediaType, Size, Body and Created, which the record's binary
// head gives without decoding any JSON (encodeManifest). Its Body may be
// shared with other callers (pullcache.go): it must not be modified.
func (s *Store) PulledManifest(repo string, ref Reference) (StoredManifest, error) {
	var out StoredManifest
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		out, err = s.pulledManifestCached(tx, repo, ref)
		return err
	})
	return out, err
}

// manifest is Manifest and PulledManifest, with read as the decoder.
func (s *Store) manifest(repo string, ref Reference, read func(*bolt.Tx, string, Digest) (StoredManifest, error)) (StoredManifest, error) {
	var out StoredManifest
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		out, err = readManifest(tx, repo, ref, read)
		return err
	})
	return out, err
}

// readManifest is manifest's read in tx. The Body it returns is a copy,
// valid after tx ends.
func readManifest(tx *bolt.Tx, repo string, ref Reference, read func(*bolt.Tx, string, Digest) (StoredManifest, error)) (StoredManifest, error) {
	d := ref.Digest
	if ref.Tag != "" {
		v := tx.Bucket(bucketTags).Get(key(repo, ref.Tag))
		if v == nil {
			return StoredManifest{}, ErrManifestUnknown
		}
		d = Digest(v)
	}
	out, err := read(tx, repo, d)
	if err != nil {
		return StoredManifest{}, err
	}
	out.Body = append([]byte(nil), out.Body...)
	if tx.Bucket(bucketBroken).Get(key(repo, string(d))) != nil {
		return StoredManifest{}, fmt.Errorf("%w: %s lists content that %s no longer has", ErrManifestUnknown, d, repo)
	}
	// bbolt does not checksum its pages: a body that rotted or was
	// swapped in meta.db must not go out under d. A client sees it as
	// absent, as after a repair, and a push stores it again.
	if got := DigestOf(d.Algorithm(), out.Body); got != d {
		return StoredManifest{}, fmt.Errorf("%w: the stored body of %s hashes to %s (berth verify --repair sets it aside)", ErrManifestUnknown, d, got)
	}
	return out, nil
}

// storedManifest reads manifest d of repo. Its Body aliases the
// transaction's memory: copy it before the transaction ends, or drop it.
func storedManifest(tx *bolt.Tx, repo string, d Digest) (StoredManifest, error) {
	v := tx.Bucket(bucketManifests).Get(key(repo, string(d)))
	if v == nil {
		return StoredManifest{}, ErrManifestUnknown
	}
	rec, body, err := decodeManifest(v)
	if err != nil {
		return StoredManifest{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return StoredManifest{
		Digest: d, MediaType: rec.MediaType, ArtifactType: rec.ArtifactType,
		Annotations: rec.Annotations, Subject: rec.Subject, Size: int64(len(body)),
		Body: body, Created: time.Unix(0, rec.Created),
	}, nil
}

// pulledManifest is storedManifest without the fields a pull does not
// send; MediaType is the one string it allocates.
func pulledManifest(tx *bolt.Tx, repo string, d Digest) (StoredManifest, error) {
	v := tx.Bucket(bucketManifests).Get(key(repo, string(d)))
	if v == nil {
		return StoredManifest{}, ErrManifestUnknown
	}
	h, err := decodeManifestHead(v)
	if err != nil {
		return StoredManifest{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return StoredManifest{
		Digest: d, MediaType: string(h.mediaType), Size: int64(len(h.body)),
		Body: h.body, Created: time.Unix(0, h.created),
	}, nil
}

// DeleteManifest deletes what ref names in repo. A tag ref removes only the
// tag. A digest ref removes the manifest, every tag pointing at it and its
// references; it fails with ErrManifestInUse while an index of repo still
// lists it, and with ErrManifestUnknown when absent. Blobs stay linked until
// GC finds nothing references them.
func (s *Store) DeleteManifest(repo string, ref Reference) error {
	return s.DeleteManifestBy(Origin{}, repo, ref)
}

// DeleteManifestBy is DeleteManifest made by origin: in the same
// transaction it records a delete event in the outbox, when a webhook
// wants it. Like registry:2's, the event names the tag or the digest that
// was deleted, not both.
func (s *Store) DeleteManifestBy(o Origin, repo string, ref Reference) error {
	evs := func() []Event {
		return []Event{{Time: s.now(), Action: ActionDelete, Repo: repo, Digest: ref.Digest, Tag: ref.Tag, Origin: o}}
	}
	pending, err := s.prepareEvents(evs())
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if ref.Tag != "" {
			if err := s.checkMutable(tx, repo, ref.Tag); err != nil {
				return err
			}
			if _, err := deleteTag(tx, repo, ref.Tag); err != nil {
				return err
			}
			return s.recordEvents(tx, pending, evs)
		}
		if hasPrefix(tx.Bucket(bucketRefs), prefix(repo, string(ref.Digest))) {
			return ErrManifestInUse
		}
		if err := s.checkTagsMutable(tx, repo, ref.Digest); err != nil {
			return err
		}
		if err := deleteManifest(tx, repo, ref.Digest); err != nil {
			return err
		}
		return s.recordEvents(tx, pending, evs)
	})
}

// DeleteTag deletes tag of repo and returns the manifest it pointed at,
// which stays until GC finds nothing else keeps it. It returns
// ErrManifestUnknown when repo has no such tag. Like a tag DELETE through
// the API, it records a delete event when a webhook wants one.
func (s *Store) DeleteTag(repo, tag string) (Digest, error) {
	evs := func() []Event {
		return []Event{{Time: s.now(), Action: ActionDelete, Repo: repo, Tag: tag}}
	}
	pending, err := s.prepareEvents(evs())
	if err != nil {
		return "", err
	}
	var d Digest
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := s.checkMutable(tx, repo, tag); err != nil {
			return err
		}
		var err error
		if d, err = deleteTag(tx, repo, tag); err != nil {
			return err
		}
		return s.recordEvents(tx, pending, evs)
	})
	return d, err
}

func deleteTag(tx *bolt.Tx, repo, tag string) (Digest, error) {
	tk := key(repo, tag)
	v := tx.Bucket(bucketTags).Get(tk)
	if v == nil {
		return "", ErrManifestUnknown
	}
	d := Digest(v)
	if err := tx.Bucket(bucketTagTimes).Delete(tk); err != nil {
		return "", err
	}
	return d, tx.Bucket(bucketTags).Delete(tk)
}

// deleteManifest removes manifest d of repo with its tags, references and
// referrers entry.
func deleteManifest(tx *bolt.Tx, repo string, d Digest) error {
	v := tx.Bucket(bucketManifests).Get(key(repo, string(d)))
	if v == nil {
		return ErrManifestUnknown
	}
	rec, _, err := decodeManifest(v)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", d, err)
	}
	return removeManifest(tx, repo, d, rec)
}

// removeManifest is deleteManifest for a caller that already holds the
// stored record (GC decodes it before its write transaction).
func removeManifest(tx *bolt.Tx, repo string, d Digest, rec manifestRecord) error {
	mk := key(repo, string(d))
	refs := tx.Bucket(bucketRefs)
	for _, target := range append(append([]Digest(nil), rec.Blobs...), rec.Children...) {
		if err := refs.Delete(key(repo, string(target), string(d))); err != nil {
			return err
		}
	}
	if rec.Subject != "" {
		if err := tx.Bucket(bucketReferrers).Delete(key(repo, string(rec.Subject), string(d))); err != nil {
			return err
		}
	}
	var stale [][]byte
	tags := tx.Bucket(bucketTags)
	p := prefix(repo)
	c := tags.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if Digest(v) == d {
			stale = append(stale, append([]byte(nil), k...))
		}
	}
	for _, k := range stale {
		if err := tags.Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTagTimes).Delete(k); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketPulls).Delete(mk); err != nil {
		return err
	}
	if err := tx.Bucket(bucketBroken).Delete(mk); err != nil {
		return err
	}
	return tx.Bucket(bucketManifests).Delete(mk)
}

// newManifestRecord is the record of parsed manifest m, stored at now.
func newManifestRecord(m *Manifest, now time.Time) manifestRecord {
	rec := manifestRecord{
		MediaType: m.MediaType, ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		Blobs: m.Blobs, Children: m.Children, Created: now.UnixNano(),
	}
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest
	}
	return rec
}
