package importer

import (
	"context"
	"fmt"
	"io"
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
	Jobs             int    // blobs imported at once; 0 means DefaultJobs
	// Progress, when set, is called as blobs are done with the count done
	// and the total; it must be quick.
	Progress func(done, total int)
}

// DefaultJobs is how many blobs an import brings in at once. Most of a
// blob's time is waiting (a commit, a sync, the network), so more workers
// than cores pay: concurrent blobs share store commits.
const DefaultJobs = 16

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
	r := &reporter{out: out, report: Report{Source: src.Describe(), DryRun: opts.DryRun}, progress: opts.Progress}
	repos, err := src.Repositories(ctx)
	if err != nil {
		return r.report, err
	}
	match := matcher(opts.Only)
	// One repository at a time, planned then imported: memory holds one
	// repository's manifests, and a killed run has recorded every
	// repository before the one it was in. The progress total grows as
	// repositories are planned.
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
		r.total += len(p.blobs)
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

// placeBatch is how many staged blob files one store call places: their
// directory syncs and their record share one commit.
const placeBatch = 256

// importBlobs brings the blobs of p into s and returns which are there (or,
// in a dry run, would be). Blobs the store holds are linked in one
// transaction; the others are read by opts.Jobs workers, and staged files
// are placed in batches by one placer.
func importBlobs(ctx context.Context, s *store.Store, src Source, p *repoPlan, opts Options, r *reporter) (map[store.Digest]bool, error) {
	ok := make(map[store.Digest]bool, len(p.blobs))
	var mu sync.Mutex // guards ok and r
	todo := p.blobs
	if !opts.DryRun {
		linked, err := s.LinkStoredBlobs(p.name, p.blobs)
		if err != nil {
			return nil, fmt.Errorf("link blobs of %s: %w", p.name, err)
		}
		for _, d := range linked {
			ok[d] = true
			r.blobDone()
			r.blob(store.BlobPresent, 0)
		}
		todo = nil
		for _, d := range p.blobs {
			if !ok[d] {
				todo = append(todo, d)
			}
		}
	}
	done := func(d store.Digest, how string, size int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		r.blobDone()
		if err != nil {
			r.problem(fmt.Sprintf("%s: %v", p.name, err))
			return
		}
		ok[d] = true
		r.blob(how, size)
	}
	staged := make(chan store.StagedBlob, placeBatch)
	placed := make(chan error, 1)
	go func() { placed <- placeStaged(s, p.name, staged, done) }()
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(jobs, max(len(todo), 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) || ctx.Err() != nil {
					return
				}
				d := todo[i]
				st, how, size, err := importBlob(ctx, s, src, p.name, d, opts)
				if err == nil && st != nil {
					staged <- *st
					continue
				}
				done(d, how, size, err)
			}
		})
	}
	wg.Wait()
	close(staged)
	if err := <-placed; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ok, nil
}

// placeStaged places the staged blobs it receives in batches and reports
// each through done. A failure to place is the destination's: it is
// returned, and the rest of the batches are dropped.
func placeStaged(s *store.Store, repo string, in <-chan store.StagedBlob, done func(store.Digest, string, int64, error)) error {
	var batch []store.StagedBlob
	var failed error
	flush := func() {
		if failed == nil {
			failed = s.PlaceStagedBlobs(repo, batch)
		}
		for _, b := range batch {
			if failed != nil {
				s.DropStagedBlob(b)
				done(b.Digest, "", 0, fmt.Errorf("place blob %s: %w", b.Digest, failed))
				continue
			}
			done(b.Digest, b.How, b.Size, nil)
		}
		batch = batch[:0]
	}
	for b := range in {
		if batch = append(batch, b); len(batch) == placeBatch {
			flush()
		}
	}
	flush()
	return failed
}

// importBlob brings one blob in. A blob file comes back staged, for the
// placer; a stream is stored at once and reported as "fetched"; a dry run
// checks the blob and reports "checked".
func importBlob(ctx context.Context, s *store.Store, src Source, repo string, d store.Digest, opts Options) (*store.StagedBlob, string, int64, error) {
	if opts.DryRun && s.HasBlob(d) {
		return nil, store.BlobPresent, 0, nil
	}
	b, err := src.Blob(ctx, repo, d)
	if err != nil {
		return nil, "", 0, err
	}
	if opts.DryRun {
		how, size, err := checkBlob(b, d)
		return nil, how, size, err
	}
	if b.Path != "" {
		st, err := s.StageBlobFile(d, b.Path, opts.Copy)
		if err != nil {
			return nil, "", 0, err
		}
		return &st, st.How, st.Size, nil
	}
	body, err := b.Open()
	if err != nil {
		return nil, "", 0, err
	}
	defer body.Close()
	info, err := s.PutBlob(repo, d, b.Size, body)
	if err != nil {
		return nil, "", 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return nil, "fetched", info.Size, nil
}

// checkBlob hashes a source blob file for a dry run; a stream is not
// downloaded, its size is taken as the source states it.
func checkBlob(b Blob, d store.Digest) (string, int64, error) {
	if b.Path == "" {
		return "checked", b.Size, nil
	}
	n, err := store.CheckBlobFile(b.Path, d)
	if err != nil {
		return "", 0, err
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
			switch {
			case m.SizeMismatch != nil:
				r.problem(fmt.Sprintf("%s@%s recorded as broken: %v", p.name, m.Digest, m.SizeMismatch))
			case len(m.Missing) > 0:
				r.problem(fmt.Sprintf("%s@%s recorded as broken: content missing %v", p.name, m.Digest, m.Missing))
			case m.Broken:
				r.problem(fmt.Sprintf("%s@%s recorded as broken: a manifest it lists is broken", p.name, m.Digest))
			}
			if m.Broken {
				broken++
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
