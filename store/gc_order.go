package store

import "sort"

// batchManifests orders the doomed manifests for the sweep and cuts them
// into batches of about gcBatch.
//
// Doomed manifests that refer to each other (an index and its children, a
// referrer and its subject) form a group, and a group is never split across
// batches: the sweep re-checks a whole group in one write transaction, so
// a change that saves one member (a tag pushed for a child) saves, in the
// same transaction, every member that member needs kept. Within a group
// parents come first (an index before its children, a referrer before its
// subject), so each removal leaves no reference to a removed manifest.
func batchManifests(graphs map[string]*repoGraph) [][]*plannedManifest {
	repos := make([]string, 0, len(graphs))
	for repo := range graphs {
		repos = append(repos, repo)
	}
	sort.Strings(repos)
	var batches [][]*plannedManifest
	var cur []*plannedManifest
	for _, repo := range repos {
		for _, group := range graphs[repo].groups() {
			if len(cur) > 0 && len(cur)+len(group) > gcBatch {
				batches = append(batches, cur)
				cur = nil
			}
			cur = append(cur, group...)
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// edges returns, for each doomed manifest, the doomed manifests it refers
// to: its children and its subject.
func (g *repoGraph) edges() map[Digest][]Digest {
	out := make(map[Digest][]Digest, len(g.doomed))
	for d := range g.doomed {
		rec := &g.nodes[d].rec
		for _, c := range rec.Children {
			if g.doomed[c] {
				out[d] = append(out[d], c)
			}
		}
		if g.doomed[rec.Subject] {
			out[d] = append(out[d], rec.Subject)
		}
	}
	return out
}

// groups returns the doomed manifests of g in groups of those connected by
// edges, each group in topological order (parents first), groups in the
// order of their first member.
func (g *repoGraph) groups() [][]*plannedManifest {
	edges := g.edges()
	order := topoOrder(g.doomed, edges)

	// Union-find over the same edges.
	parent := make(map[Digest]Digest, len(order))
	var find func(Digest) Digest
	find = func(d Digest) Digest {
		for parent[d] != d {
			parent[d] = parent[parent[d]]
			d = parent[d]
		}
		return d
	}
	for _, d := range order {
		parent[d] = d
	}
	for from, tos := range edges {
		for _, to := range tos {
			if a, b := find(from), find(to); a != b {
				parent[a] = b
			}
		}
	}

	index := make(map[Digest]int)
	var out [][]*plannedManifest
	for _, d := range order {
		root := find(d)
		i, ok := index[root]
		if !ok {
			i = len(out)
			index[root] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], g.nodes[d])
	}
	return out
}

// topoOrder sorts nodes so that every edge points forward (Kahn's
// algorithm), ties broken by digest so the order is stable. Digests make
// cycles impossible; were there one, its members would come last, in
// digest order.
func topoOrder(nodes map[Digest]bool, edges map[Digest][]Digest) []Digest {
	indegree := make(map[Digest]int, len(nodes))
	for _, tos := range edges {
		for _, to := range tos {
			indegree[to]++
		}
	}
	all := make([]Digest, 0, len(nodes))
	for d := range nodes {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	var ready, order []Digest
	for _, d := range all {
		if indegree[d] == 0 {
			ready = append(ready, d)
		}
	}
	done := make(map[Digest]bool, len(nodes))
	for len(ready) > 0 {
		d := ready[0]
		ready = ready[1:]
		order = append(order, d)
		done[d] = true
		for _, to := range edges[d] {
			if indegree[to]--; indegree[to] == 0 {
				ready = append(ready, to)
			}
		}
	}
	for _, d := range all {
		if !done[d] {
			order = append(order, d)
		}
	}
	return order
}
