package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RetentionOptions adjust ApplyRetention.
type RetentionOptions struct {
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// Now is the time ages are measured from; zero means the store's
	// clock. Tests set it to age content without waiting.
	Now time.Time
	// Rules, when not nil, replace the stored rules for this run.
	Rules []RetentionRule
}

// RemovedTag is a tag a retention run removed (or would remove).
type RemovedTag struct {
	Repo   string `json:"repo"`
	Tag    string `json:"tag"`
	Digest Digest `json:"digest"`
}

// RetentionReport is what a retention run removed, or with DryRun would
// remove.
type RetentionReport struct {
	DryRun bool `json:"dryRun,omitempty"`
	// Tags are the removed tags; a manifest another kept tag points at
	// stays (it is untagged, not deleted).
	Tags []RemovedTag `json:"tags"`
	// Manifests are the removed manifests: those only removed tags held,
	// with the children and referrers nothing kept holds, and untagged
	// manifests past a rule's age.
	Manifests []RemovedManifest `json:"manifests"`
	// Bytes is what the run frees once GC has run, counted as du counts
	// exclusive bytes: the manifests' bodies and the blobs only removed
	// manifests of one repository reference and no other repository links.
	Bytes int64 `json:"bytes"`
	// Kept counts planned removals skipped because the content changed
	// while the run went on (a tag pushed again, a manifest re-put).
	Kept int `json:"kept,omitempty"`
	// Repos counts the repositories a rule matched.
	Repos int `json:"repos"`
}

// retentionBatch bounds the tags removed in one write transaction, so a
// run over many tags does not hold the writer lock long.
const retentionBatch = 1000

// ApplyRetention applies the retention rules: in each repository that a
// rule matches it removes the tags no matching rule keeps (immutable tags
// are always kept), then deletes the manifests that only those tags held,
// with their children and referrers unless something kept holds them, and
// the untagged manifests older than a rule's UntaggedAfter. The plan comes
// from one read transaction; every removal is checked again in its write
// transaction, so a tag pushed or moved during the run, or a manifest
// re-put or newly referenced, is kept. Blobs are left for GC, which
// should follow.
func (s *Store) ApplyRetention(ctx context.Context, opts RetentionOptions) (RetentionReport, error) {
	return s.applyRetention(ctx, opts, s.keptTags)
}

// keepFunc decides, by index in tags, which tags of repo survive.
type keepFunc func(repo string, tags []TagInfo, rules []*RetentionRule, now time.Time) []bool

func (s *Store) applyRetention(ctx context.Context, opts RetentionOptions, keep keepFunc) (RetentionReport, error) {
	now := opts.Now
	if now.IsZero() {
		now = s.now()
	}
	r := RetentionReport{DryRun: opts.DryRun}
	rules := opts.Rules
	var repos []string
	err := s.db.View(func(tx *bolt.Tx) error {
		if rules == nil {
			var err error
			if rules, err = retentionRules(tx); err != nil {
				return err
			}
		}
		for _, repo := range allRepos(tx) {
			if matchesAny(rules, repo) {
				repos = append(repos, repo)
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("retention: %w", err)
	}
	// One repository at a time: memory stays that of the largest one
	// (and the report), not of the whole registry.
	for _, repo := range repos {
		if err := checkContext(ctx, "retention"); err != nil {
			return r, err
		}
		p, err := s.planRetention(repo, rules, now, keep)
		if err != nil {
			return r, fmt.Errorf("retention plan: %w", err)
		}
		r.Repos++
		r.Bytes += p.bytes
		if opts.DryRun {
			r.Tags = append(r.Tags, p.tags...)
			for _, batch := range batchManifests(p.graphs) {
				for _, m := range batch {
					r.Manifests = append(r.Manifests, RemovedManifest{Repo: m.repo, Digest: m.digest, Size: m.size})
				}
			}
			continue
		}
		if err := s.untag(ctx, p, &r); err != nil {
			return r, err
		}
		var gr GCReport
		gp := &gcPlan{manifests: batchManifests(p.graphs)}
		if err := s.sweepManifests(ctx, gp, &gr, GCOptions{}); err != nil {
			return r, fmt.Errorf("retention: %w", err)
		}
		r.Manifests, r.Kept = append(r.Manifests, gr.Manifests...), r.Kept+gr.Kept
	}
	r.sort()
	return r, nil
}

func (r *RetentionReport) sort() {
	sort.Slice(r.Tags, func(i, j int) bool {
		a, b := r.Tags[i], r.Tags[j]
		return a.Repo < b.Repo || a.Repo == b.Repo && a.Tag < b.Tag
	})
	sort.Slice(r.Manifests, func(i, j int) bool {
		a, b := r.Manifests[i], r.Manifests[j]
		return a.Repo < b.Repo || a.Repo == b.Repo && a.Digest < b.Digest
	})
}

// retentionPlan is what one read transaction found to remove.
type retentionPlan struct {
	tags   []RemovedTag
	stamps map[string][]byte // key(repo, tag) → its tagtimes value when planned (nil: none)
	graphs map[string]*repoGraph
	bytes  int64
}

// untag removes the planned tags that still point where they did and have
// not been pushed again since the plan.
func (s *Store) untag(ctx context.Context, p *retentionPlan, r *RetentionReport) error {
	for start := 0; start < len(p.tags); start += retentionBatch {
		if err := checkContext(ctx, "retention"); err != nil {
			return err
		}
		batch := p.tags[start:min(start+retentionBatch, len(p.tags))]
		var removed []RemovedTag
		err := s.db.Update(func(tx *bolt.Tx) error {
			removed = nil
			tags, times := tx.Bucket(bucketTags), tx.Bucket(bucketTagTimes)
			for _, t := range batch {
				k := key(t.Repo, t.Tag)
				if Digest(tags.Get(k)) != t.Digest || !bytes.Equal(times.Get(k), p.stamps[string(k)]) {
					continue
				}
				if err := tags.Delete(k); err != nil {
					return err
				}
				if err := times.Delete(k); err != nil {
					return err
				}
				removed = append(removed, t)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("retention: remove tags: %w", err)
		}
		r.Tags = append(r.Tags, removed...)
		r.Kept += len(batch) - len(removed)
	}
	return nil
}

// planRetention reads repo and decides, in one read transaction, which of
// its tags and manifests go.
func (s *Store) planRetention(repo string, rules []RetentionRule, now time.Time, keep keepFunc) (*retentionPlan, error) {
	p := &retentionPlan{stamps: make(map[string][]byte), graphs: make(map[string]*repoGraph)}
	var matching []*RetentionRule
	for i := range rules {
		if rules[i].repos.Match(repo) {
			matching = append(matching, &rules[i])
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(repo)) == nil {
			return nil // deleted since the list was read
		}
		return s.planRepo(tx, p, repo, matching, now, keep)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", repo, err)
	}
	return p, nil
}

// planRepo plans one repository under the rules that match it.
func (s *Store) planRepo(tx *bolt.Tx, p *retentionPlan, repo string, rules []*RetentionRule, now time.Time, keep keepFunc) error {
	pulls := s.lastPulls(tx, repo)
	tags, err := tagInfos(tx, repo, pulls)
	if err != nil {
		return err
	}
	g, err := readGraph(tx, repo)
	if err != nil {
		return err
	}
	kept := keep(repo, tags, rules, now)
	// Fallback tags of signatures follow their subject: kept while it is.
	var seeds []Digest
	for i, t := range tags {
		if _, sig := SignatureSubject(t.Tag); !sig && kept[i] {
			seeds = append(seeds, t.Digest)
		}
	}
	// A fallback tag whose subject is a tagged image here follows the
	// subject; otherwise the rules decide it like any tag. Immutable ones
	// stay.
	held := g.closure(seeds)
	imageTagged := make(map[Digest]bool)
	for _, t := range tags {
		if _, sig := SignatureSubject(t.Tag); !sig {
			imageTagged[t.Digest] = true
		}
	}
	for i, t := range tags {
		subject, sig := SignatureSubject(t.Tag)
		if _, immutable := s.immutableRule(repo, t.Tag); sig && imageTagged[subject] && !immutable {
			kept[i] = held[subject]
		}
		if kept[i] {
			seeds = append(seeds, t.Digest)
		}
	}
	tagged := make(map[Digest]bool)
	var roots []Digest // manifests this run removes, with what they hold alone
	for i, t := range tags {
		tagged[t.Digest] = true
		if !kept[i] {
			k := key(repo, t.Tag)
			p.tags = append(p.tags, RemovedTag{Repo: repo, Tag: t.Tag, Digest: t.Digest})
			if v := tx.Bucket(bucketTagTimes).Get(k); v != nil {
				p.stamps[string(k)] = bytes.Clone(v)
			}
			roots = append(roots, t.Digest)
		}
	}
	untaggedAge := time.Duration(0)
	for _, r := range rules {
		untaggedAge = max(untaggedAge, r.UntaggedAfter)
	}
	parents := g.parents()
	for d, n := range g.nodes {
		top := !parents[d] && (n.rec.Subject == "" || g.nodes[n.rec.Subject] == nil)
		if !top || tagged[d] {
			continue
		}
		last := time.Unix(0, n.rec.Created)
		if pulls[d].After(last) {
			last = pulls[d]
		}
		if untaggedAge > 0 && last.Before(now.Add(-untaggedAge)) {
			roots = append(roots, d)
		} else {
			seeds = append(seeds, d) // left to GC and its grace period
		}
	}
	held = g.closure(seeds)
	for d := range g.closure(roots) {
		if !held[d] {
			g.doomed[d] = true
		}
	}
	if len(g.doomed) == 0 {
		return nil
	}
	g.keepHeads(tx)
	p.graphs[repo] = g
	p.bytes += g.freedBytes(tx, repo)
	return nil
}

// keptTags returns, by index in tags, which tags some rule keeps.
// Immutable tags are kept whatever the rules say.
func (s *Store) keptTags(repo string, tags []TagInfo, rules []*RetentionRule, now time.Time) []bool {
	kept := make([]bool, len(tags))
	governed := false
	// Fallback tags of signatures follow their subject (planRepo): they
	// take no place among the last pushed or pulled.
	var byPush []int
	for i, t := range tags {
		if _, sig := SignatureSubject(t.Tag); !sig {
			byPush = append(byPush, i)
		}
	}
	byPull := append([]int(nil), byPush...)
	sort.SliceStable(byPush, func(a, b int) bool { return tags[byPush[a]].Pushed.After(tags[byPush[b]].Pushed) })
	sort.SliceStable(byPull, func(a, b int) bool { return tags[byPull[a]].Pulled.After(tags[byPull[b]].Pulled) })
	for _, r := range rules {
		if !r.governsTags() {
			continue
		}
		governed = true
		for _, i := range byPush[:min(r.KeepLast, len(byPush))] {
			kept[i] = true
		}
		for _, i := range byPull[:min(r.KeepPulled, len(byPull))] {
			if !tags[i].Pulled.IsZero() {
				kept[i] = true
			}
		}
		for i, t := range tags {
			if r.KeepWithin > 0 && (t.Pushed.After(now.Add(-r.KeepWithin)) || t.Pulled.After(now.Add(-r.KeepWithin))) {
				kept[i] = true
			}
			if r.tags != nil && r.tags.MatchString(t.Tag) {
				kept[i] = true
			}
		}
	}
	for i, t := range tags {
		if !governed {
			kept[i] = true
		} else if _, ok := s.immutableRule(repo, t.Tag); ok {
			kept[i] = true
		}
	}
	return kept
}

// readGraph decodes the manifests of one repository.
func readGraph(tx *bolt.Tx, repo string) (*repoGraph, error) {
	g := &repoGraph{nodes: make(map[Digest]*plannedManifest), doomed: make(map[Digest]bool)}
	pre := prefix(repo)
	c := tx.Bucket(bucketManifests).Cursor()
	for k, v := c.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
		d := Digest(k[len(pre):])
		rec, body, err := decodeManifest(v)
		if err != nil {
			return nil, fmt.Errorf("manifest %s@%s: %w", repo, d, err)
		}
		g.nodes[d] = &plannedManifest{repo: repo, digest: d, rec: rec, size: int64(len(body))}
	}
	return g, nil
}

// parents returns the manifests some manifest of g lists as a child.
func (g *repoGraph) parents() map[Digest]bool {
	out := make(map[Digest]bool)
	for _, n := range g.nodes {
		for _, c := range n.rec.Children {
			out[c] = true
		}
	}
	return out
}

// closure returns the manifests of g that from reach: themselves, their
// children and their referrers, to a fixpoint.
func (g *repoGraph) closure(from []Digest) map[Digest]bool {
	referrers := make(map[Digest][]Digest)
	for d, n := range g.nodes {
		if n.rec.Subject != "" {
			referrers[n.rec.Subject] = append(referrers[n.rec.Subject], d)
		}
	}
	out := make(map[Digest]bool)
	queue := append([]Digest(nil), from...)
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if out[d] || g.nodes[d] == nil {
			continue
		}
		out[d] = true
		queue = append(queue, g.nodes[d].rec.Children...)
		queue = append(queue, referrers[d]...)
	}
	return out
}

// freedBytes is what removing g's doomed manifests frees once GC runs, as
// du counts exclusive bytes: their bodies, and each blob that only doomed
// manifests reference and that no other repository links.
func (g *repoGraph) freedBytes(tx *bolt.Tx, repo string) int64 {
	var n int64
	blobs := make(map[Digest]bool)
	for d := range g.doomed {
		n += g.nodes[d].size
		for _, b := range g.nodes[d].rec.Blobs {
			blobs[b] = true
		}
	}
	refs := tx.Bucket(bucketRefs).Cursor()
	others := tx.Bucket(bucketBlobRepos).Cursor()
	for b := range blobs {
		pre := prefix(repo, string(b))
		only := true
		for k, _ := refs.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = refs.Next() {
			if !g.doomed[Digest(k[len(pre):])] {
				only = false
				break
			}
		}
		bp := prefix(string(b))
		for k, _ := others.Seek(bp); only && k != nil && bytes.HasPrefix(k, bp); k, _ = others.Next() {
			if string(k[len(bp):]) != repo {
				only = false
			}
		}
		if !only {
			continue
		}
		var br blobRecord
		if decode(tx.Bucket(bucketBlobs).Get([]byte(b)), &br) == nil {
			n += br.Size
		}
	}
	return n
}
