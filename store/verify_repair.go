package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// repair fixes the faults Verify found that can be fixed without the lost
// bytes, each again checked against the current state under its lock, and
// notes on each what it did.
func (s *Store) repair(faults []Fault) error {
	for i := range faults {
		f := &faults[i]
		var err error
		switch {
		case f.Kind == FaultCorruptBlob && f.object.Key != "":
			f.Repaired, err = s.quarantineObject(f.object)
		case f.Kind == FaultCorruptBlob:
			f.Repaired, err = s.quarantineBlob(f.blob, f.file)
		case f.Kind == FaultMissingBlob && f.object.Key != "":
			f.Repaired, err = s.forgetMissingObject(f.object)
		case f.Kind == FaultCorruptManifest:
			f.Repaired, err = s.repairManifest(f.repo, f.manifest)
		case f.Kind == FaultMissingBlob && f.repo == "":
			f.Repaired, err = s.forgetMissingBlob(f.blob)
		case f.Kind == FaultMissingBlob:
			f.Repaired, err = s.dropUnrecordedLink(f.repo, f.blob)
		case f.upload != "":
			f.Repaired, err = s.dropDatalessUpload(f.upload)
		}
		if err != nil {
			return fmt.Errorf("repair %s %s: %w", f.Kind, f.Subject, err)
		}
	}
	return nil
}

const repushNote = "; a push of the images uploads the blob again"

// quarantineBlob moves the corrupt file of d, if it is still the file that
// was hashed (seen), to DATA/quarantine, then forgets the blob. The file goes
// first, against the usual order, because placeBlob trusts a file at its
// final path: a crash in between must leave a record without a file (which
// the next repair forgets), never a corrupt file that a re-push would take
// for the blob.
func (s *Store) quarantineBlob(d Digest, seen os.FileInfo) (string, error) {
	unlock := s.lockDigest(d)
	defer unlock()
	path := s.BlobPath(d)
	fi, err := os.Lstat(path)
	if err != nil || seen == nil || !os.SameFile(fi, seen) {
		return "", nil // removed or replaced since it was hashed
	}
	dst := s.quarantinePath(d)
	if err := mkdirSynced(filepath.Dir(dst)); err != nil {
		return "", fmt.Errorf("create quarantine: %w", err)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("move to quarantine: %w", err)
	}
	if err := OwnLike(s.dir, filepath.Join(s.dir, "quarantine")); err != nil {
		return "", err
	}
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(dst)} {
		if err := SyncDir(dir); err != nil {
			return "", err
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return forgetBlob(tx, d) }); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(s.dir, dst)
	if err != nil {
		rel = dst
	}
	return "moved to " + filepath.ToSlash(rel) + ", its record and links removed" + repushNote, nil
}

// quarantinePath is where the corrupt file of d goes: DATA/quarantine/<alg>/<hex>,
// with the time appended when an earlier one is there.
func (s *Store) quarantinePath(d Digest) string {
	p := filepath.Join(s.dir, quarantineDir, d.Algorithm(), d.Hex())
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return p
	}
	return p + "." + s.now().UTC().Format("20060102T150405.000000000Z")
}

// forgetMissingBlob forgets d if it still has a record but no file.
func (s *Store) forgetMissingBlob(d Digest) (string, error) {
	unlock := s.lockDigest(d)
	defer unlock()
	if _, err := os.Lstat(s.BlobPath(d)); !errors.Is(err, fs.ErrNotExist) {
		return "", nil // the file is back (a push placed it)
	}
	forgot := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Get([]byte(d)) == nil {
			return nil
		}
		forgot = true
		return forgetBlob(tx, d)
	})
	if err != nil || !forgot {
		return "", err
	}
	return "its record and links removed" + repushNote, nil
}

// forgetBlob deletes the record of d and every repository's link to it.
// Manifests that list d stay; they are broken until a push brings d back.
// The repositories come from blobrepos and, in case that index lacks one,
// from a scan of every repository.
func forgetBlob(tx *bolt.Tx, d Digest) error {
	links := tx.Bucket(bucketLinks)
	repos := map[string]bool{}
	p := prefix(string(d))
	c := tx.Bucket(bucketBlobRepos).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		repos[string(k[len(p):])] = true
	}
	tx.Bucket(bucketRepos).ForEach(func(repo, _ []byte) error {
		if links.Get(key(string(repo), string(d))) != nil {
			repos[string(repo)] = true
		}
		return nil
	})
	for repo := range repos {
		if err := unlinkBroken(tx, repo, d); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketBlobs).Delete([]byte(d))
}

// unlinkBroken removes repo's link to d and marks every manifest of repo
// that needs d, directly or through an index, as broken.
func unlinkBroken(tx *bolt.Tx, repo string, d Digest) error {
	if err := unlinkBlob(tx, repo, d); err != nil {
		return err
	}
	return markBroken(tx, repo, d)
}

// markBroken marks the manifests of repo that reference target (a blob or
// a child manifest), and their parents in turn, in the broken bucket. A
// marked manifest answers ErrManifestUnknown until a push of it checks its
// references again and clears the mark: clients such as go-containerregistry
// skip pushing an image whose manifest the registry has, layers and all, so
// an absent manifest is what makes them send the image again. Marking at
// repair time keeps that check off the pull path: a manifest GET reads one
// key.
func markBroken(tx *bolt.Tx, repo string, target Digest) error {
	refs, broken := tx.Bucket(bucketRefs), tx.Bucket(bucketBroken)
	queue := []Digest{target}
	for len(queue) > 0 {
		p := prefix(repo, string(queue[0]))
		queue = queue[1:]
		var found []Digest
		c := refs.Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			found = append(found, Digest(k[len(p):]))
		}
		for _, m := range found {
			mk := key(repo, string(m))
			if broken.Get(mk) != nil {
				continue
			}
			if err := broken.Put(mk, nil); err != nil {
				return err
			}
			queue = append(queue, m)
		}
	}
	return nil
}

// dropUnrecordedLink removes repo's link to d if d still has no record.
func (s *Store) dropUnrecordedLink(repo string, d Digest) (string, error) {
	dropped := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBlobs).Get([]byte(d)) != nil || tx.Bucket(bucketLinks).Get(key(repo, string(d))) == nil {
			return nil
		}
		dropped = true
		return unlinkBroken(tx, repo, d)
	})
	if err != nil || !dropped {
		return "", err
	}
	return "the link removed" + repushNote, nil
}

// dropDatalessUpload removes the record of upload session id if its data
// file is still missing: no request can continue that session.
func (s *Store) dropDatalessUpload(id string) (string, error) {
	unlock, ok := s.uploads.tryLock(id)
	if !ok {
		return "", nil // a request is using it
	}
	defer unlock()
	if _, err := os.Lstat(s.uploadPath(id)); !errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return deleteUpload(tx, []byte(id)) })
	if err != nil {
		return "", err
	}
	return "the session record removed; the client starts the upload again", nil
}
