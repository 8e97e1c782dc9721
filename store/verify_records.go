package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// recordsSnapshot is what verifyRecords found in its read transaction.
type recordsSnapshot struct {
	blobs     []BlobInfo
	manifests int
	tags      int
	uploads   []uploadEntry
	faults    []Fault
}

// uploadEntry is an upload session as verify needs it.
type uploadEntry struct {
	id, repo string
	updated  time.Time
}

// verifyRecords checks the records against each other in one read
// transaction, a consistent state in which every rule the store keeps must
// hold, and lists the blobs and upload sessions for the file checks.
func (s *Store) verifyRecords() (recordsSnapshot, error) {
	pageFaults, err := s.checkPages()
	if err != nil {
		return recordsSnapshot{}, err
	}
	var snap recordsSnapshot
	err = s.db.View(func(tx *bolt.Tx) error {
		snap = recordsSnapshot{faults: slices.Clone(pageFaults)}
		add := func(f Fault) { snap.faults = append(snap.faults, f) }
		snap.blobs, snap.manifests, snap.tags = verifyRecordsIn(tx, add)
		snap.uploads = uploadEntries(tx, add)
		return nil
	})
	return snap, err
}

// verifyRecordsIn runs every check of the records against each other in
// tx, the ones Verify and CheckConsistency share, and returns the blob
// records for the checks of the files, with the counts of manifests and
// tags.
func verifyRecordsIn(tx *bolt.Tx, add func(Fault)) (blobs []BlobInfo, manifests, tags int) {
	blobs = verifyBlobRecords(tx, add)
	manifests = verifyManifests(tx, add)
	tags = verifyTags(tx, add)
	verifyIndexEntries(tx, add)
	verifyLinks(tx, add)
	verifyUploadOwners(tx, add)
	return blobs, manifests, tags
}

// verifyUploadOwners checks that every session with an owner has its
// uploadowners entry, and every entry its session.
func verifyUploadOwners(tx *bolt.Tx, add func(Fault)) {
	uploads, owners := tx.Bucket(bucketUploads), tx.Bucket(bucketUploadOwners)
	uploads.ForEach(func(k, v []byte) error {
		var rec uploadRecord
		if decode(v, &rec) == nil && rec.Owner != "" && owners.Get(key(rec.Owner, string(k))) == nil {
			add(Fault{Kind: FaultIndex, Subject: "upload " + string(k), Problem: fmt.Sprintf("its owner %q has no uploadowners entry for it", rec.Owner)})
		}
		return nil
	})
	owners.ForEach(func(k, _ []byte) error {
		owner, id := splitPair(k)
		var rec uploadRecord
		if v := uploads.Get([]byte(id)); v == nil || decode(v, &rec) != nil || rec.Owner != owner {
			add(Fault{Kind: FaultIndex, Subject: fmt.Sprintf("uploadowners entry %q", k), Problem: "it names no session of that owner"})
		}
		return nil
	})
}

// checkPages runs bbolt's page check. It takes the writer lock for that
// time, because on a read transaction the check misreads pages that a
// concurrent commit frees (bbolt's Tx.Check says so). It is quick for a
// registry's meta.db, which holds no blob bytes.
func (s *Store) checkPages() ([]Fault, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("check meta.db: %w", err)
	}
	defer tx.Rollback()
	var faults []Fault
	for err := range tx.Check() { // drain: the checker uses tx until it closes
		faults = append(faults, Fault{Kind: FaultMetaDB, Subject: "meta.db", Problem: err.Error()})
	}
	return faults, nil
}

// CheckPages runs bbolt's page check on meta.db and returns an error
// naming the first fault it found (after draining the checker, which uses
// the transaction until it closes), or nil when the pages are sound. Like
// Verify, it holds the writer lock for the check's time.
func (s *Store) CheckPages() error {
	faults, err := s.checkPages()
	if err != nil {
		return err
	}
	if len(faults) > 0 {
		return fmt.Errorf("meta.db fails bbolt's page check (%d faults), the first: %s", len(faults), faults[0].Problem)
	}
	return nil
}

func verifyBlobRecords(tx *bolt.Tx, add func(Fault)) []BlobInfo {
	var out []BlobInfo
	tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		d, err := ParseDigest(string(k))
		if err != nil {
			add(Fault{Kind: FaultIndex, Subject: fmt.Sprintf("blob record %q", k), Problem: "its key is not a digest"})
			return nil
		}
		var rec blobRecord
		if err := decode(v, &rec); err != nil {
			add(Fault{Kind: FaultIndex, Subject: string(d), Problem: "its record cannot be read: " + err.Error()})
			return nil
		}
		out = append(out, BlobInfo{Digest: d, Size: rec.Size, Created: time.Unix(0, rec.Created)})
		return nil
	})
	return out
}

// verifyManifests checks that every manifest's blobs are linked and its
// children stored in its repository, and that the refs index knows each
// reference. It returns how many manifests there are.
func verifyManifests(tx *bolt.Tx, add func(Fault)) int {
	links, manifests, refs := tx.Bucket(bucketLinks), tx.Bucket(bucketManifests), tx.Bucket(bucketRefs)
	mirrors := tx.Bucket(bucketMirrors)
	n := 0
	manifests.ForEach(func(k, v []byte) error {
		n++
		repo, d := splitPair(k)
		// A mirror's cache holds what clients asked for: a manifest whose
		// other blobs or children nobody pulled yet is whole (CacheManifest).
		ns, _, _ := strings.Cut(repo, "/")
		cache := mirrors.Get([]byte(ns)) != nil
		broken := func(format string, args ...any) {
			add(Fault{Kind: FaultBrokenManifest, Subject: repo + "@" + string(d), repo: repo, manifest: d,
				Problem: fmt.Sprintf(format, args...)})
		}
		rec, body, err := decodeManifest(v)
		if err != nil {
			broken("its record cannot be read: %v", err)
			return nil
		}
		if problem, _ := manifestProblem(d, rec, body); problem != "" {
			add(Fault{Kind: FaultCorruptManifest, Subject: repo + "@" + string(d), repo: repo, manifest: d, Problem: problem})
		}
		for _, b := range rec.Blobs {
			if !cache && links.Get(key(repo, string(b))) == nil {
				broken("lists blob %s, which %s does not have: re-push the image", b, repo)
			}
		}
		for _, c := range rec.Children {
			if !cache && manifests.Get(key(repo, string(c))) == nil {
				broken("lists manifest %s, which %s does not store: re-push the index", c, repo)
			}
		}
		for _, target := range append(slices.Clone(rec.Blobs), rec.Children...) {
			if refs.Get(key(repo, string(target), string(d))) == nil {
				add(Fault{Kind: FaultIndex, Subject: repo + "@" + string(d),
					Problem: fmt.Sprintf("the refs index lacks its reference to %s", target)})
			}
		}
		return nil
	})
	return n
}

// verifyTags checks that every tag points at a stored manifest and returns
// how many tags there are.
func verifyTags(tx *bolt.Tx, add func(Fault)) int {
	manifests := tx.Bucket(bucketManifests)
	n := 0
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		n++
		repo, tag := splitPair(k)
		if manifests.Get(key(repo, string(v))) == nil {
			image := repo + ":" + string(tag)
			add(Fault{Kind: FaultDanglingTag, Subject: image, Images: []string{image},
				Problem: fmt.Sprintf("points at %s, which is not stored: re-push the image or delete the tag", v)})
		}
		return nil
	})
	return n
}

// verifyIndexEntries checks that refs and referrers entries name stored
// manifests.
func verifyIndexEntries(tx *bolt.Tx, add func(Fault)) {
	manifests := tx.Bucket(bucketManifests)
	for _, b := range [][]byte{bucketRefs, bucketReferrers} {
		tx.Bucket(b).ForEach(func(k, _ []byte) error {
			if p := splitKey(k); len(p) != 3 || manifests.Get(key(p[0], p[2])) == nil {
				add(Fault{Kind: FaultIndex, Subject: fmt.Sprintf("%s entry %q", b, strings.Join(p, " ")),
					Problem: "names a manifest that is not stored"})
			}
			return nil
		})
	}
}

// verifyLinks checks that every link has its blob record, its blobrepos
// entry and its repository, and every blobrepos entry its link.
func verifyLinks(tx *bolt.Tx, add func(Fault)) {
	blobs, links, blobRepos, repos := tx.Bucket(bucketBlobs), tx.Bucket(bucketLinks), tx.Bucket(bucketBlobRepos), tx.Bucket(bucketRepos)
	links.ForEach(func(k, _ []byte) error {
		repo, d := splitPair(k)
		if blobs.Get([]byte(d)) == nil {
			add(Fault{Kind: FaultMissingBlob, Subject: string(d), blob: d, repo: repo,
				Problem: fmt.Sprintf("%s links it, but it has no record", repo)})
		}
		if blobRepos.Get(key(string(d), repo)) == nil {
			add(Fault{Kind: FaultIndex, Subject: string(d), Problem: fmt.Sprintf("%s links it, but blobrepos lacks the entry", repo)})
		}
		if repos.Get([]byte(repo)) == nil {
			add(Fault{Kind: FaultIndex, Subject: repo, Problem: fmt.Sprintf("links %s, but the repository has no repos entry", d)})
		}
		return nil
	})
	blobRepos.ForEach(func(k, _ []byte) error {
		d, repo := splitPair(k)
		if links.Get(key(string(repo), d)) == nil {
			add(Fault{Kind: FaultIndex, Subject: string(repo), Problem: fmt.Sprintf("blobrepos says it links %s, but the link is missing", d)})
		}
		return nil
	})
}

func uploadEntries(tx *bolt.Tx, add func(Fault)) []uploadEntry {
	var out []uploadEntry
	tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
		var rec uploadRecord
		if err := decode(v, &rec); err != nil {
			add(Fault{Kind: FaultIndex, Subject: "upload " + string(k), Problem: "its record cannot be read: " + err.Error()})
			return nil
		}
		out = append(out, uploadEntry{id: string(k), repo: rec.Repo, updated: time.Unix(0, rec.Updated)})
		return nil
	})
	return out
}

// attributeImages fills in the images each blob and manifest fault breaks,
// as the store is now.
func (s *Store) attributeImages(faults []Fault) error {
	return s.db.View(func(tx *bolt.Tx) error {
		a := &attributor{tx: tx, tags: map[string]map[Digest][]string{}}
		for i := range faults {
			f := &faults[i]
			switch {
			case f.Kind == FaultBrokenManifest || f.Kind == FaultCorruptManifest:
				f.Images = a.above(f.repo, []Digest{f.manifest})
			case f.blob != "" && f.repo != "":
				f.Images = a.above(f.repo, a.referencing(f.repo, f.blob))
			case f.blob != "":
				tx.Bucket(bucketRepos).ForEach(func(repo, _ []byte) error {
					f.Images = append(f.Images, a.above(string(repo), a.referencing(string(repo), f.blob))...)
					return nil
				})
				slices.Sort(f.Images)
			}
		}
		return nil
	})
}

// attributor finds the images above a manifest within one transaction.
type attributor struct {
	tx   *bolt.Tx
	tags map[string]map[Digest][]string // repo → manifest → its tags
}

// referencing returns the manifests of repo that list target, a blob or a
// child manifest.
func (a *attributor) referencing(repo string, target Digest) []Digest {
	var out []Digest
	p := prefix(repo, string(target))
	c := a.tx.Bucket(bucketRefs).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		out = append(out, Digest(k[len(p):]))
	}
	return out
}

// above returns the images of repo that include one of manifests: the tags
// of each manifest and of every index above it, and repo@digest for a
// manifest that nothing tags or lists. Sorted, without duplicates.
func (a *attributor) above(repo string, manifests []Digest) []string {
	seen := map[Digest]bool{}
	var images []string
	queue := slices.Clone(manifests)
	for len(queue) > 0 {
		m := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[m] {
			continue
		}
		seen[m] = true
		tags := a.tagsOf(repo)[m]
		parents := a.referencing(repo, m)
		for _, t := range tags {
			images = append(images, repo+":"+t)
		}
		if len(tags) == 0 && len(parents) == 0 {
			images = append(images, repo+"@"+string(m))
		}
		queue = append(queue, parents...)
	}
	slices.Sort(images)
	return slices.Compact(images)
}

// tagsOf returns repo's tags by the manifest they point at.
func (a *attributor) tagsOf(repo string) map[Digest][]string {
	if t, ok := a.tags[repo]; ok {
		return t
	}
	t := map[Digest][]string{}
	p := prefix(repo)
	c := a.tx.Bucket(bucketTags).Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		t[Digest(v)] = append(t[Digest(v)], string(k[len(p):]))
	}
	a.tags[repo] = t
	return t
}
