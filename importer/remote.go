package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-registry/berth/store"
)

// Remote reads a running registry over the Distribution API: the catalog,
// each repository's tags, the manifests they reach, the referrers of each
// (the referrers API, or go-containerregistry's fallback to the tag
// schema), and blobs. Untagged manifests that nothing reaches cannot be
// listed over the API and are not imported.
type Remote struct {
	url  string
	reg  name.Registry
	opts []remote.Option
}

// OpenRemote returns the source at rawURL ("https://registry.example.com",
// or http:// for a registry without TLS), signed in with user and password
// when user is not "".
func OpenRemote(ctx context.Context, rawURL, user, password string) (*Remote, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%q is not a registry URL such as https://registry.example.com", rawURL)
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", u.Host, err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: password}
	}
	return &Remote{url: rawURL, reg: reg, opts: []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}}, nil
}

func (r *Remote) Describe() string { return "remote " + r.url }

func (r *Remote) Repositories(ctx context.Context) ([]string, error) {
	repos, err := remote.Catalog(ctx, r.reg, r.opts...)
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", r.url, err)
	}
	sort.Strings(repos)
	return repos, nil
}

func (r *Remote) repo(repo string) (name.Repository, error) {
	return name.NewRepository(r.reg.Name()+"/"+repo, r.nameOpts()...)
}

func (r *Remote) nameOpts() []name.Option {
	if r.reg.Scheme() == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (r *Remote) digestRef(repo string, d store.Digest) (name.Digest, error) {
	rp, err := r.repo(repo)
	if err != nil {
		return name.Digest{}, err
	}
	return rp.Digest(string(d)), nil
}

func (r *Remote) Roots(ctx context.Context, repo string) (map[string]store.Digest, []store.Digest, error) {
	rp, err := r.repo(repo)
	if err != nil {
		return nil, nil, err
	}
	list, err := remote.List(rp, r.opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("tags of %s: %w", repo, err)
	}
	tags := map[string]store.Digest{}
	for _, t := range list {
		desc, err := remote.Head(rp.Tag(t), r.opts...)
		if isNotFound(err) {
			continue // deleted since the list
		}
		if err != nil {
			return nil, nil, fmt.Errorf("tag %s:%s: %w", repo, t, err)
		}
		tags[t] = store.Digest(desc.Digest.String())
	}
	return tags, nil, nil
}

func (r *Remote) Manifest(ctx context.Context, repo string, d store.Digest) ([]byte, string, error) {
	ref, err := r.digestRef(repo, d)
	if err != nil {
		return nil, "", err
	}
	desc, err := remote.Get(ref, r.opts...)
	if isNotFound(err) {
		return nil, "", fmt.Errorf("manifest %s: %w", d, ErrMissing)
	}
	if err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", d, err)
	}
	return desc.Manifest, string(desc.MediaType), nil
}

func (r *Remote) Referrers(ctx context.Context, repo string, d store.Digest) ([]store.Digest, error) {
	ref, err := r.digestRef(repo, d)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(ref, r.opts...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := make([]store.Digest, 0, len(im.Manifests))
	for _, m := range im.Manifests {
		out = append(out, store.Digest(m.Digest.String()))
	}
	return out, nil
}

func (r *Remote) Blob(ctx context.Context, repo string, d store.Digest) (Blob, error) {
	ref, err := r.digestRef(repo, d)
	if err != nil {
		return Blob{}, err
	}
	layer, err := remote.Layer(ref, r.opts...)
	if err != nil {
		return Blob{}, fmt.Errorf("blob %s: %w", d, err)
	}
	size, err := layer.Size()
	if isNotFound(err) {
		return Blob{}, fmt.Errorf("blob %s: %w", d, ErrMissing)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("blob %s: %w", d, err)
	}
	open := func() (io.ReadCloser, error) {
		rc, err := layer.Compressed()
		if isNotFound(err) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrMissing)
		}
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", d, err)
		}
		return rc, nil
	}
	return Blob{Open: open, Size: size}, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
