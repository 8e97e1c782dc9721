package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/berth-registry/berth/store"
)

// Options tune an import.
type Options struct {
	DryRun           bool   // read and check everything, record nothing
	Only             string // import only repositories matching this glob (see matcher)
	KeepFallbackTags bool   // keep referrers fallback tags as tags too
	Copy             bool   // copy blob files instead of hard-linking them
	Jobs             int    // blobs imported at once; 0 means 4
	// Progress, when set, is called as blobs are done with the count done
	// and the total; it must be quick.
	Progress func(done, total int)
}

// manifestBatch is how many manifests one store transaction records: big
// enough that 10,000 manifests are a few commits, small enough that a
// transaction stays short for concurrent pushes.
const manifestBatch = 500

// Import copies what src holds into s and writes to out one line per
// problem as it is found and one per repository; the caller prints the
// summary from the returned Report. It
// returns an error when src cannot be listed or s fails to record; problems
// with the content (missing, corrupt, unsupported) are counted in the
// report and the import goes on.
func Import(ctx context.Context, s *store.Store, src Source, opts Options, out io.Writer) (Report, error) {
	r := &reporter{out: out, report: Report{Source: src.Describe(), DryRun: opts.DryRun}}
	repos, err := src.Repositories(ctx)
	if err != nil {
		return r.report, err
	}
	match := matcher(opts.Only)
	var plans []*repoPlan
	total := 0
	for _, repo := range repos {
		if !match(repo) {
			continue
		}
		if err := store.ValidateRepository(repo); err != nil {
			r.problem(fmt.Sprintf("repository %q skipped: %v", repo, err))
			continue
		}
		p, err := planRepo(ctx, src, repo, opts.KeepFallbackTags, r.problem)
		if err != nil {
			if ctx.Err() != nil {
				return r.report, ctx.Err()
			}
			r.problem(fmt.Sprintf("repository %s skipped: %v", repo, err))
			continue
		}
		plans = append(plans, p)
		total += len(p.blobs)
	}
	r.progress, r.total = opts.Progress, total
	for _, p := range plans {
		blobsOK, err := importBlobs(ctx, s, src, p, opts, r)
		if err != nil {
			return r.report, err
		}
		broken, err := recordManifests(s, p, opts, blobsOK, r)
		if err != nil {
			return r.report, err
		}
		r.repository(p, broken)
	}
	return r.report, nil
}

// importBlobs brings the blobs of p into s with opts.Jobs workers and
// returns which are there (or, in a dry run, would be).
func importBlobs(ctx context.Context, s *store.Store, src Source, p *repoPlan, opts Options, r *reporter) (map[store.Digest]bool, error) {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	ok := make(map[store.Digest]bool, len(p.blobs))
	var mu sync.Mutex
	var firstErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(jobs, max(len(p.blobs), 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(p.blobs) || ctx.Err() != nil {
					return
				}
				d := p.blobs[i]
				how, size, err := importBlob(ctx, s, src, p.name, d, opts)
				mu.Lock()
				r.blobDone()
				switch {
				case err == nil:
					ok[d] = true
					r.blob(how, size)
				case errors.Is(err, ErrMissing) || errors.Is(err, store.ErrDigestMismatch):
					r.problem(fmt.Sprintf("%s: %v", p.name, err))
				case ctx.Err() == nil && firstErr == nil && isStoreFailure(err):
					firstErr = err
				default:
					r.problem(fmt.Sprintf("%s: %v", p.name, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ok, firstErr
}

// storeFailure marks an error of the destination, which stops the import:
// going on would only repeat it.
type storeFailure struct{ err error }

func (e *storeFailure) Error() string { return e.err.Error() }
func (e *storeFailure) Unwrap() error { return e.err }

func isStoreFailure(err error) bool {
	var sf *storeFailure
	return errors.As(err, &sf)
}

// importBlob brings one blob in and says how: a store.Blob* constant, or
// "checked" in a dry run.
func importBlob(ctx context.Context, s *store.Store, src Source, repo string, d store.Digest, opts Options) (string, int64, error) {
	if s.HasBlob(d) {
		if opts.DryRun {
			return store.BlobPresent, 0, nil
		}
		info, err := s.LinkStoredBlob(repo, d)
		if err == nil {
			return store.BlobPresent, info.Size, nil
		}
	}
	b, err := src.Blob(ctx, repo, d)
	if err != nil {
		return "", 0, err
	}
	if b.Body != nil {
		defer b.Body.Close()
	}
	if opts.DryRun {
		return checkBlob(b, d)
	}
	if b.Path != "" {
		info, how, err := s.ImportBlobFile(repo, d, b.Path, opts.Copy)
		if err != nil && !errors.Is(err, store.ErrDigestMismatch) && !errors.Is(err, os.ErrNotExist) {
			err = &storeFailure{err}
		}
		return how, info.Size, err
	}
	info, err := s.PutBlob(repo, d, b.Size, b.Body)
	if err != nil && !errors.Is(err, store.ErrDigestMismatch) && !errors.Is(err, store.ErrSizeInvalid) {
		err = fmt.Errorf("blob %s: %w", d, err) // the transfer, most likely: a problem, not a stop
	}
	return "fetched", info.Size, err
}

// checkBlob hashes a source blob file for a dry run; a stream is not
// downloaded, its size is taken as the source states it.
func checkBlob(b Blob, d store.Digest) (string, int64, error) {
	if b.Path == "" {
		return "checked", b.Size, nil
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := store.NewHash(d.Algorithm())
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := store.Digest(d.Algorithm() + ":" + fmt.Sprintf("%x", h.Sum(nil))); got != d {
		return "", 0, fmt.Errorf("%w: %s hashes to %s", store.ErrDigestMismatch, d, got)
	}
	return "checked", n, nil
}

// recordManifests records p's manifests in batches and returns how many
// were recorded as broken; in a dry run it counts, from blobsOK, how many
// would be.
func recordManifests(s *store.Store, p *repoPlan, opts Options, blobsOK map[store.Digest]bool, r *reporter) (int, error) {
	if opts.DryRun {
		return dryRunBroken(p, blobsOK), nil
	}
	broken := 0
	for start := 0; start < len(p.manifests); start += manifestBatch {
		batch := p.manifests[start:min(start+manifestBatch, len(p.manifests))]
		res, err := s.ImportManifests(p.name, batch)
		if err != nil {
			return broken, fmt.Errorf("record manifests of %s: %w", p.name, err)
		}
		for _, m := range res {
			if m.Broken {
				broken++
				r.problem(fmt.Sprintf("%s@%s recorded as broken: content missing %v", p.name, m.Digest, m.Missing))
			}
		}
	}
	return broken, nil
}

// dryRunBroken counts the manifests of p an import would mark broken: a
// blob missing, or a broken or missing child.
func dryRunBroken(p *repoPlan, blobsOK map[store.Digest]bool) int {
	state := map[store.Digest]bool{} // digest → whole
	n := 0
	for _, mi := range p.manifests {
		m, err := store.ParseManifest(mi.MediaType, mi.Body)
		if err != nil {
			continue
		}
		whole := true
		for _, b := range m.Blobs {
			whole = whole && blobsOK[b]
		}
		for _, c := range m.Children {
			whole = whole && state[c]
		}
		state[mi.Digest] = whole
		if !whole {
			n++
		}
	}
	return n
}
