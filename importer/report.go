package importer

import (
	"fmt"
	"io"

	"github.com/berth-registry/berth/store"
)

// Report counts what an import did (or, in a dry run, would do).
type Report struct {
	Source       string
	DryRun       bool
	Repositories int
	Tags         int
	Fallback     int // fallback tags turned into referrers
	Manifests    int
	Broken       int
	Blobs        map[string]int // by how they came in: store.Blob* constants, "fetched", "checked"
	Bytes        int64          // of blobs brought in or checked
	Problems     []string
}

// reporter writes the report as the import goes; its methods are called
// under one lock (importBlobs) or from one goroutine.
type reporter struct {
	out      io.Writer
	report   Report
	progress func(done, total int)
	done     int
	total    int
}

// blobDone counts one blob handled, well or not, for the progress bar.
func (r *reporter) blobDone() {
	r.done++
	if r.progress != nil {
		r.progress(r.done, r.total)
	}
}

func (r *reporter) problem(msg string) {
	r.report.Problems = append(r.report.Problems, msg)
	fmt.Fprintf(r.out, "problem: %s\n", msg)
}

func (r *reporter) blob(how string, size int64) {
	if r.report.Blobs == nil {
		r.report.Blobs = map[string]int{}
	}
	r.report.Blobs[how]++
	if how != store.BlobPresent {
		r.report.Bytes += size
	}
}

func (r *reporter) repository(p *repoPlan, broken int) {
	r.report.Repositories++
	r.report.Tags += p.tags
	r.report.Fallback += p.fallback
	r.report.Manifests += len(p.manifests)
	r.report.Broken += broken
	fmt.Fprintf(r.out, "%s: %s, %s (%d broken), %s, %d fallback tags as referrers\n", p.name,
		plural(p.tags, "tag"), plural(len(p.manifests), "manifest"), broken, plural(len(p.blobs), "blob"), p.fallback)
}

func plural(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case noun == "repository":
		return fmt.Sprintf("%d repositories", n)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
