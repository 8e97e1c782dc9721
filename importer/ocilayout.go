package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-registry/berth/store"
)

// refNameAnnotation names a manifest of an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// OCILayout reads OCI image layouts (image-spec image-layout.md): either
// one layout, imported as one repository, or a tree of them such as zot's
// storage, where the layout at <root>/<name>/ is repository <name>:
//
//	<name>/oci-layout              {"imageLayoutVersion": "1.0.0"}
//	<name>/index.json              the tags (ref.name annotations) and untagged manifests
//	<name>/blobs/<alg>/<hex>       every blob and manifest body (zot hard-links duplicates)
//
// zot's own files are skipped: meta.db, cache.db, .uploads, _trivy.
type OCILayout struct {
	root   string
	single string // the repository name when root is one layout, else ""
}

// OpenOCILayout returns the source at dir. When dir is a layout itself,
// its content goes to repository name (the directory's base name when
// name is ""); otherwise every layout below dir is a repository.
func OpenOCILayout(dir, name string) (*OCILayout, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	if isLayout(dir) {
		if name == "" {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return nil, err
			}
			name = strings.ToLower(filepath.Base(abs))
		}
		if err := store.ValidateRepository(name); err != nil {
			return nil, fmt.Errorf("repository name %q for %s: %w (set one with --repo)", name, dir, err)
		}
		return &OCILayout{root: dir, single: name}, nil
	}
	if name != "" {
		return nil, fmt.Errorf("--repo is for a single layout, and %s holds none at its top", dir)
	}
	return &OCILayout{root: dir}, nil
}

func isLayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "index.json"))
	return err == nil
}

func (o *OCILayout) Describe() string { return "oci " + o.root }

func (o *OCILayout) Repositories(ctx context.Context) ([]string, error) {
	if o.single != "" {
		return []string{o.single}, nil
	}
	var repos []string
	err := filepath.WalkDir(o.root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			return nil
		}
		switch e.Name() {
		case ".uploads", "_trivy", "blobs":
			return fs.SkipDir
		}
		if path != o.root && isLayout(path) {
			rel, _ := filepath.Rel(o.root, path)
			repos = append(repos, filepath.ToSlash(rel))
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

func (o *OCILayout) repoDir(repo string) string {
	if o.single != "" {
		return o.root
	}
	return filepath.Join(o.root, filepath.FromSlash(repo))
}

// ociIndex is the part of index.json an import reads.
type ociIndex struct {
	Manifests []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
}

func (o *OCILayout) Roots(ctx context.Context, repo string) (map[string]store.Digest, []store.Digest, error) {
	b, err := os.ReadFile(filepath.Join(o.repoDir(repo), "index.json"))
	if err != nil {
		return nil, nil, err
	}
	var idx ociIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, nil, fmt.Errorf("index.json of %s: %w", repo, err)
	}
	tags := map[string]store.Digest{}
	var untagged []store.Digest
	for _, m := range idx.Manifests {
		d, err := store.ParseDigest(m.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("index.json of %s: %w", repo, err)
		}
		tag := layoutTag(m.Annotations[refNameAnnotation])
		if tag == "" {
			untagged = append(untagged, d)
			continue
		}
		tags[tag] = d
	}
	return tags, untagged, nil
}

// layoutTag returns the tag a ref.name annotation gives, "" for none. The
// image spec allows a full reference there ("example.com/app:v1"); skopeo
// and zot write the bare tag.
func layoutTag(ref string) string {
	if ref == "" {
		return ""
	}
	if store.ValidateTag(ref) == nil {
		return ref
	}
	if i := strings.LastIndexAny(ref, ":/"); i >= 0 && ref[i] == ':' && store.ValidateTag(ref[i+1:]) == nil {
		return ref[i+1:]
	}
	return ""
}

func (o *OCILayout) blobPath(repo string, d store.Digest) string {
	return filepath.Join(o.repoDir(repo), "blobs", d.Algorithm(), d.Hex())
}

func (o *OCILayout) Manifest(ctx context.Context, repo string, d store.Digest) ([]byte, string, error) {
	return readManifestFile(o.blobPath(repo, d), d)
}

func (o *OCILayout) Referrers(context.Context, string, store.Digest) ([]store.Digest, error) {
	return nil, nil
}

func (o *OCILayout) Blob(ctx context.Context, repo string, d store.Digest) (Blob, error) {
	b, err := fileBlob(o.blobPath(repo, d), d)
	if err == nil && b.Size == 0 && d != emptyDigest {
		// zot with dedupe on a filesystem without hard links keeps empty
		// placeholders; the content is elsewhere in the tree.
		return Blob{}, fmt.Errorf("blob %s: %w (an empty placeholder)", d, ErrMissing)
	}
	if errors.Is(err, ErrMissing) {
		return Blob{}, err
	}
	return b, err
}

// emptyDigest is the sha256 of no bytes, a legitimate empty blob.
const emptyDigest store.Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
