package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/berth-registry/berth/store"
)

// repoPlan is what an import of one repository records: its manifests,
// children before the indexes that list them, and the blobs they need.
type repoPlan struct {
	name      string
	manifests []store.ManifestImport
	blobs     []store.Digest
	tags      int
	fallback  int // fallback tags turned into referrers
}

// manifestInfo is a manifest read and parsed during planning.
type manifestInfo struct {
	imp    store.ManifestImport
	parsed *store.Manifest
}

// fallbackTag matches the tags that stand in for the referrers API: the
// referrers tag schema (sha256-<hex>, an index of referrers; cosign v3,
// oras) and cosign v2's signature, attestation and SBOM tags.
// Compiled on first use, not at start in every berth process (issue 18).
var fallbackTag = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(sha256)-([0-9a-f]{64})(\.sig|\.att|\.sbom)?$`)
})

// planRepo reads the manifests of repo that the source's roots reach, with
// their children and referrers, and orders them for recording. Every
// problem goes to problem; only a failure to list the repository is
// returned.
func planRepo(ctx context.Context, src Source, repo string, keepFallback bool, problem func(string)) (*repoPlan, error) {
	tags, untagged, err := src.Roots(ctx, repo)
	if err != nil {
		return nil, err
	}
	p := &repoPlan{name: repo}
	seen := map[store.Digest]*manifestInfo{}
	var queue []store.Digest
	want := func(d store.Digest) {
		if _, ok := seen[d]; !ok {
			seen[d] = nil
			queue = append(queue, d)
		}
	}
	tagNames := make([]string, 0, len(tags))
	for t := range tags {
		tagNames = append(tagNames, t)
	}
	sort.Strings(tagNames)
	for _, t := range tagNames {
		want(tags[t])
	}
	for _, d := range untagged {
		want(d)
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := queue[0]
		queue = queue[1:]
		info, err := readManifest(ctx, src, repo, d)
		if err != nil {
			problem(fmt.Sprintf("%s@%s: %v", repo, d, err))
			continue
		}
		seen[d] = info
		for _, c := range info.parsed.Children {
			want(c)
		}
		refs, err := src.Referrers(ctx, repo, d)
		if err != nil {
			problem(fmt.Sprintf("%s@%s: %v", repo, d, err))
		}
		for _, r := range refs {
			want(r)
		}
	}
	for _, t := range tagNames {
		d := tags[t]
		info := seen[d]
		if info == nil {
			problem(fmt.Sprintf("%s:%s not imported: its manifest %s was not imported", repo, t, d))
			continue
		}
		if m := fallbackTag().FindStringSubmatch(t); m != nil {
			p.fallback++
			subject := store.Digest(m[1] + ":" + m[2])
			if m[3] != "" {
				setSubject(info, subject)
			} else {
				for _, c := range info.parsed.Children {
					if ci := seen[c]; ci != nil {
						setSubject(ci, subject)
					}
				}
			}
			if !keepFallback {
				continue
			}
		}
		info.imp.Tags = append(info.imp.Tags, t)
		p.tags++
	}
	p.order(seen)
	return p, nil
}

// setSubject makes a manifest without a subject of its own a referrer of
// subject.
func setSubject(info *manifestInfo, subject store.Digest) {
	if info.parsed.Subject == nil {
		info.imp.Subject = subject
	}
}

// order fills p.manifests children first (a depth-first walk in digest
// order) and p.blobs with every blob they list, each once.
func (p *repoPlan) order(seen map[store.Digest]*manifestInfo) {
	digests := make([]store.Digest, 0, len(seen))
	for d, info := range seen {
		if info != nil {
			digests = append(digests, d)
		}
	}
	sort.Slice(digests, func(i, j int) bool { return digests[i] < digests[j] })
	done := map[store.Digest]bool{}
	blobSeen := map[store.Digest]bool{}
	var visit func(d store.Digest)
	visit = func(d store.Digest) {
		info := seen[d]
		if info == nil || done[d] {
			return
		}
		done[d] = true
		for _, c := range info.parsed.Children {
			visit(c)
		}
		for _, b := range info.parsed.Blobs {
			if !blobSeen[b] {
				blobSeen[b] = true
				p.blobs = append(p.blobs, b)
			}
		}
		p.manifests = append(p.manifests, info.imp)
	}
	for _, d := range digests {
		visit(d)
	}
}

// readManifest fetches, checks and parses manifest d of repo. Schema 1
// manifests are refused with a message saying so: berth stores schema 2
// and OCI only.
func readManifest(ctx context.Context, src Source, repo string, d store.Digest) (*manifestInfo, error) {
	body, mediaType, err := src.Manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	if got := store.DigestOf(d.Algorithm(), body); got != d {
		return nil, fmt.Errorf("the manifest is corrupt: it hashes to %s", got)
	}
	var head struct {
		SchemaVersion int `json:"schemaVersion"`
	}
	if json.Unmarshal(body, &head) == nil && head.SchemaVersion == 1 {
		return nil, errors.New("a Docker schema 1 manifest: skipped (berth keeps schema 2 and OCI only)")
	}
	if strings.Contains(mediaType, "distribution.manifest.v1") {
		return nil, errors.New("a Docker schema 1 manifest: skipped (berth keeps schema 2 and OCI only)")
	}
	m, err := store.ParseManifest(mediaType, body)
	if err != nil {
		return nil, err
	}
	return &manifestInfo{imp: store.ManifestImport{Digest: d, MediaType: mediaType, Body: body}, parsed: m}, nil
}

// matcher returns whether a repository name matches pattern, a glob where
// * matches any run of characters, slashes included, and ? one character;
// an empty pattern matches every name.
func matcher(pattern string) func(string) bool {
	if pattern == "" {
		return func(string) bool { return true }
	}
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re := regexp.MustCompile(b.String())
	return re.MatchString
}
