package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// gcPlan is what one read transaction found collectable. Every planned
// thing carries the bytes it was planned on, so the sweep can tell whether
// it changed since.
type gcPlan struct {
	// manifests come in batches of whole groups (an index with its
	// children, a subject with its referrers), each group parents first.
	manifests [][]*plannedManifest
	links     []plannedLink
	blobs     []plannedBlob
	uploads   []plannedUpload
	repos     []string // repositories the plan leaves empty
}

type plannedManifest struct {
	repo   string
	digest Digest
	rec    manifestRecord
	head   []byte // the stored value before the body; a re-put changes it
	size   int64
}

type plannedLink struct {
	repo    string
	digest  Digest
	value   []byte
	created time.Time
}

type plannedBlob struct {
	digest  Digest
	size    int64
	value   []byte
	created time.Time
}

type plannedUpload struct {
	id    string
	repo  string
	size  int64
	value []byte
}

// repoGraph is one repository's manifests, as the plan sees them.
type repoGraph struct {
	nodes  map[Digest]*plannedManifest
	seeds  []Digest // tagged or young: kept whatever else holds
	doomed map[Digest]bool
}

// plan finds what to collect, in one read transaction: a consistent
// snapshot, in which all JSON decoding happens.
func (s *Store) plan(opts GCOptions, now time.Time) (*gcPlan, error) {
	cutoff := now.Add(-opts.grace())
	p := &gcPlan{}
	// The pins are read before the transaction, not in it: the blob sweep
	// holds the pin lock while it commits, and a commit that grows the file
	// waits for open read transactions.
	pinned := s.gc.pinnedNow()
	err := s.db.View(func(tx *bolt.Tx) error {
		graphs, err := readGraphs(tx, cutoff, opts.KeepUntagged, opts.NoGrace)
		if err != nil {
			return err
		}
		for _, g := range graphs {
			g.mark()
			g.keepHeads(tx)
		}
		p.manifests = batchManifests(graphs)
		doomedLinks, err := p.planLinks(tx, graphs, cutoff, opts.NoGrace)
		if err != nil {
			return err
		}
		if err := p.planBlobs(tx, doomedLinks, cutoff, pinned, opts.NoGrace); err != nil {
			return err
		}
		if err := p.planRepos(tx, graphs, doomedLinks); err != nil {
			return err
		}
		return p.planUploads(tx, now.Add(-opts.uploadTTL()))
	})
	if err != nil {
		return nil, fmt.Errorf("gc plan: %w", err)
	}
	return p, nil
}

// readGraphs decodes every manifest and seeds each repository's keep set
// with its tagged manifests, those younger than cutoff, and with keepAll
// every manifest.
func readGraphs(tx *bolt.Tx, cutoff time.Time, keepAll bool, noGrace func(string) bool) (map[string]*repoGraph, error) {
	graphs := make(map[string]*repoGraph)
	graph := func(repo string) *repoGraph {
		g := graphs[repo]
		if g == nil {
			g = &repoGraph{nodes: make(map[Digest]*plannedManifest), doomed: make(map[Digest]bool)}
			graphs[repo] = g
		}
		return g
	}
	err := tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
		repo, d := splitPair(k)
		rec, body, err := decodeManifest(v)
		if err != nil {
			return fmt.Errorf("manifest %s@%s: %w", repo, d, err)
		}
		g := graph(repo)
		g.nodes[d] = &plannedManifest{repo: repo, digest: d, rec: rec, size: int64(len(body))}
		young := !time.Unix(0, rec.Created).Before(cutoff) && (noGrace == nil || !noGrace(repo))
		if keepAll || young {
			g.seeds = append(g.seeds, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		repo, _ := splitPair(k)
		if g := graphs[repo]; g != nil && g.nodes[Digest(v)] != nil {
			g.seeds = append(g.seeds, Digest(v))
		}
		return nil
	})
	return graphs, err
}

// mark keeps the seeds and, to a fixpoint, the children of kept manifests
// and the manifests whose subject is kept; every other manifest is doomed.
func (g *repoGraph) mark() {
	referrers := make(map[Digest][]Digest)
	for d, n := range g.nodes {
		if n.rec.Subject != "" {
			referrers[n.rec.Subject] = append(referrers[n.rec.Subject], d)
		}
	}
	kept := make(map[Digest]bool, len(g.nodes))
	queue := append([]Digest(nil), g.seeds...)
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if kept[d] || g.nodes[d] == nil {
			continue
		}
		kept[d] = true
		queue = append(queue, g.nodes[d].rec.Children...)
		queue = append(queue, referrers[d]...)
	}
	for d := range g.nodes {
		if !kept[d] {
			g.doomed[d] = true
		}
	}
}

// keepHeads copies the stored head of every doomed manifest: the sweep
// compares it with what is stored then to notice a re-put (which refreshes
// Created) without decoding JSON in its write transaction.
func (g *repoGraph) keepHeads(tx *bolt.Tx) {
	b := tx.Bucket(bucketManifests)
	for d := range g.doomed {
		n := g.nodes[d]
		v := b.Get(key(n.repo, string(d)))
		n.head = bytes.Clone(v[:len(v)-int(n.size)])
	}
}

// planLinks finds the links older than cutoff that only doomed manifests
// reference, and returns them as a set of link keys.
func (p *gcPlan) planLinks(tx *bolt.Tx, graphs map[string]*repoGraph, cutoff time.Time, noGrace func(string) bool) (map[string]bool, error) {
	doomed := make(map[string]bool)
	refs := tx.Bucket(bucketRefs).Cursor()
	err := tx.Bucket(bucketLinks).ForEach(func(k, v []byte) error {
		repo, d := splitPair(k)
		if !parseTimeValue(v).Before(cutoff) && (noGrace == nil || !noGrace(repo)) {
			return nil
		}
		pre := append(append([]byte(nil), k...), sep)
		for rk, _ := refs.Seek(pre); rk != nil && bytes.HasPrefix(rk, pre); rk, _ = refs.Next() {
			if g := graphs[repo]; g == nil || !g.doomed[Digest(rk[len(pre):])] {
				return nil
			}
		}
		doomed[string(k)] = true
		p.links = append(p.links, plannedLink{repo: repo, digest: d, value: bytes.Clone(v), created: parseTimeValue(v)})
		return nil
	})
	return doomed, err
}

// planBlobs finds the unpinned blobs older than cutoff whose every link is
// doomed (or which have none).
func (p *gcPlan) planBlobs(tx *bolt.Tx, doomedLinks map[string]bool, cutoff time.Time, pinned func(Digest) bool, noGrace func(string) bool) error {
	repos := tx.Bucket(bucketBlobRepos).Cursor()
	return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		var rec blobRecord
		if err := decode(v, &rec); err != nil {
			return fmt.Errorf("blob record %s: %w", k, err)
		}
		d := Digest(k)
		young := !time.Unix(0, rec.Created).Before(cutoff)
		if (young && noGrace == nil) || pinned(d) {
			return nil
		}
		// A young blob goes only when it has links, all doomed, all in
		// repositories without grace; one without links keeps its grace.
		linked := false
		pre := prefix(string(d))
		for rk, _ := repos.Seek(pre); rk != nil && bytes.HasPrefix(rk, pre); rk, _ = repos.Next() {
			repo := string(rk[len(pre):])
			if !doomedLinks[string(key(repo, string(d)))] || young && !noGrace(repo) {
				return nil
			}
			linked = true
		}
		if young && !linked {
			return nil
		}
		p.blobs = append(p.blobs, plannedBlob{digest: d, size: rec.Size, value: bytes.Clone(v), created: time.Unix(0, rec.Created)})
		return nil
	})
}

// planRepos finds the repositories that hold nothing once the doomed
// manifests and links are gone. Tags point only at kept manifests, so a
// repository whose manifests are all doomed has no tags either.
func (p *gcPlan) planRepos(tx *bolt.Tx, graphs map[string]*repoGraph, doomedLinks map[string]bool) error {
	links := tx.Bucket(bucketLinks).Cursor()
	return tx.Bucket(bucketRepos).ForEach(func(k, _ []byte) error {
		repo := string(k)
		if g := graphs[repo]; g != nil && len(g.doomed) < len(g.nodes) {
			return nil
		}
		pre := prefix(repo)
		for lk, _ := links.Seek(pre); lk != nil && bytes.HasPrefix(lk, pre); lk, _ = links.Next() {
			if !doomedLinks[string(lk)] {
				return nil
			}
		}
		if hasPrefix(tx.Bucket(bucketTags), pre) {
			return nil
		}
		p.repos = append(p.repos, repo)
		return nil
	})
}

// planUploads finds the sessions not updated since cutoff.
func (p *gcPlan) planUploads(tx *bolt.Tx, cutoff time.Time) error {
	return tx.Bucket(bucketUploads).ForEach(func(k, v []byte) error {
		var rec uploadRecord
		if err := decode(v, &rec); err != nil {
			return fmt.Errorf("upload record %s: %w", k, err)
		}
		if time.Unix(0, rec.Updated).Before(cutoff) {
			p.uploads = append(p.uploads, plannedUpload{id: string(k), repo: rec.Repo, size: rec.Offset, value: bytes.Clone(v)})
		}
		return nil
	})
}

// report fills r with the plan, for a dry run.
func (p *gcPlan) report(r *GCReport) {
	for _, batch := range p.manifests {
		for _, m := range batch {
			r.Manifests = append(r.Manifests, RemovedManifest{Repo: m.repo, Digest: m.digest, Size: m.size})
		}
	}
	for _, l := range p.links {
		r.Links = append(r.Links, RemovedLink{Repo: l.repo, Digest: l.digest})
	}
	for _, b := range p.blobs {
		r.Blobs = append(r.Blobs, RemovedBlob{Digest: b.digest, Size: b.size})
	}
	for _, u := range p.uploads {
		r.Uploads = append(r.Uploads, RemovedUpload{ID: u.id, Repo: u.repo, Size: u.size})
	}
	r.Repositories = append(r.Repositories, p.repos...)
}

// splitPair splits a two-part key repo\x00digest. Both are copies.
func splitPair(k []byte) (string, Digest) {
	i := bytes.IndexByte(k, sep)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), Digest(k[i+1:])
}
