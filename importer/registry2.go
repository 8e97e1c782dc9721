package importer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-registry/berth/store"
)

// Registry2 reads distribution's (registry:2) filesystem storage. Its
// layout, from distribution's registry/storage/paths.go, under
// <root>/docker/registry/v2:
//
//	blobs/<alg>/<first 2 hex>/<hex>/data                       every blob and manifest body
//	repositories/<name>/_layers/<alg>/<hex>/link               blobs the repository may serve
//	repositories/<name>/_manifests/revisions/<alg>/<hex>/link  every manifest of the repository
//	repositories/<name>/_manifests/tags/<tag>/current/link     the manifest a tag points at
//	repositories/<name>/_uploads/...                           uploads in progress: skipped
//
// A name has slashes, so a repository is any directory under repositories/
// that has a _manifests or _layers directory; others nest inside it.
type Registry2 struct {
	root string // .../docker/registry/v2
}

// OpenRegistry2 returns the source at dir: the directory that holds
// docker/registry/v2 (registry:2's rootdirectory), or v2 itself.
func OpenRegistry2(dir string) (*Registry2, error) {
	for _, root := range []string{filepath.Join(dir, "docker", "registry", "v2"), dir} {
		if fi, err := os.Stat(filepath.Join(root, "repositories")); err == nil && fi.IsDir() {
			return &Registry2{root: root}, nil
		}
		if _, err := os.Stat(filepath.Join(root, "blobs")); err == nil && root == dir {
			return &Registry2{root: root}, nil
		}
	}
	return nil, fmt.Errorf("%s is not a registry:2 storage directory: no docker/registry/v2/repositories in it", dir)
}

func (r *Registry2) Describe() string { return "registry2 " + r.root }

func (r *Registry2) Repositories(ctx context.Context) ([]string, error) {
	base := filepath.Join(r.root, "repositories")
	var repos []string
	err := filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == base && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		switch e.Name() {
		case "_manifests", "_layers", "_uploads":
			rel, _ := filepath.Rel(base, filepath.Dir(path))
			if name := filepath.ToSlash(rel); len(repos) == 0 || repos[len(repos)-1] != name {
				repos = append(repos, name)
			}
			return fs.SkipDir
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	sort.Strings(repos)
	return dedupe(repos), nil
}

func (r *Registry2) repoDir(repo string) string {
	return filepath.Join(r.root, "repositories", filepath.FromSlash(repo))
}

func (r *Registry2) Roots(ctx context.Context, repo string) (map[string]store.Digest, []store.Digest, error) {
	tags := map[string]store.Digest{}
	tagDir := filepath.Join(r.repoDir(repo), "_manifests", "tags")
	entries, err := os.ReadDir(tagDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for _, e := range entries {
		d, err := readLink(filepath.Join(tagDir, e.Name(), "current", "link"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a tag directory left by a delete
		}
		if err != nil {
			return nil, nil, fmt.Errorf("tag %s: %w", e.Name(), err)
		}
		tags[e.Name()] = d
	}
	var untagged []store.Digest
	revDir := filepath.Join(r.repoDir(repo), "_manifests", "revisions")
	algs, err := os.ReadDir(revDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for _, alg := range algs {
		hexes, err := os.ReadDir(filepath.Join(revDir, alg.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hexes {
			d, err := readLink(filepath.Join(revDir, alg.Name(), h.Name(), "link"))
			if errors.Is(err, fs.ErrNotExist) {
				continue // a revision deleted through the API
			}
			if err != nil {
				return nil, nil, fmt.Errorf("revision %s: %w", h.Name(), err)
			}
			untagged = append(untagged, d)
		}
	}
	return tags, untagged, ctx.Err()
}

// readLink reads one of distribution's link files: a digest, nothing else.
func readLink(path string) (store.Digest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	d, err := store.ParseDigest(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func (r *Registry2) dataPath(d store.Digest) string {
	h := d.Hex()
	return filepath.Join(r.root, "blobs", d.Algorithm(), h[:2], h, "data")
}

func (r *Registry2) Manifest(ctx context.Context, repo string, d store.Digest) ([]byte, string, error) {
	return readManifestFile(r.dataPath(d), d)
}

func (r *Registry2) Referrers(context.Context, string, store.Digest) ([]store.Digest, error) {
	return nil, nil
}

func (r *Registry2) Blob(ctx context.Context, repo string, d store.Digest) (Blob, error) {
	return fileBlob(r.dataPath(d), d)
}

// readManifestFile reads a manifest body from a file, bounded by the
// store's manifest size limit.
func readManifestFile(path string, d store.Digest) ([]byte, string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("manifest %s: %w", d, ErrMissing)
	}
	if err != nil {
		return nil, "", err
	}
	if fi.Size() > store.MaxManifestSize {
		return nil, "", fmt.Errorf("manifest %s: %d bytes, more than %d", d, fi.Size(), store.MaxManifestSize)
	}
	b, err := os.ReadFile(path)
	return b, "", err
}

// fileBlob returns the blob file at path, or ErrMissing.
func fileBlob(path string, d store.Digest) (Blob, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, fmt.Errorf("blob %s: %w", d, ErrMissing)
	}
	if err != nil {
		return Blob{}, err
	}
	return Blob{Path: path, Size: fi.Size()}, nil
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
