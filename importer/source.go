package importer

import (
	"context"
	"errors"
	"io"

	"github.com/berth-registry/berth/store"
)

// Source is a registry to import from. Its methods are safe for concurrent
// use; they return errors wrapping ErrMissing for content the source does
// not have.
type Source interface {
	// Describe names the source for the report: "registry2 /srv/registry".
	Describe() string
	// Repositories lists the repository names, in lexical order.
	Repositories(ctx context.Context) ([]string, error)
	// Roots returns repo's tags with the manifests they point at, and the
	// other manifests the source keeps for it (untagged revisions), as far
	// as the source can list them.
	Roots(ctx context.Context, repo string) (tags map[string]store.Digest, untagged []store.Digest, err error)
	// Manifest returns a manifest's body and the media type the source
	// gives it ("" when it keeps none).
	Manifest(ctx context.Context, repo string, d store.Digest) (body []byte, mediaType string, err error)
	// Referrers returns the manifests whose subject is d, for sources
	// where Roots cannot list them; nil for the others.
	Referrers(ctx context.Context, repo string, d store.Digest) ([]store.Digest, error)
	// Blob returns blob d of repo: a file for file sources, else a stream.
	Blob(ctx context.Context, repo string, d store.Digest) (Blob, error)
}

// Blob is a blob of a source: Path names a file to hard-link or copy, or
// else Open starts streaming it (the caller closes the stream). Size is its
// length (-1 when unknown). A dry run reads Size and never calls Open.
type Blob struct {
	Path string
	Open func() (io.ReadCloser, error)
	Size int64
}

// ErrMissing marks content the source lists but does not have.
var ErrMissing = errors.New("missing from the source")
