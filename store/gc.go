package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Defaults of GCOptions, used where a field is zero.
const (
	DefaultGrace     = time.Hour
	DefaultUploadTTL = 24 * time.Hour
)

// NoAge, as GCOptions.Grace or UploadTTL, turns the age limit off: things
// are collected however young they are. Zero cannot mean that, because
// GCOptions{} must be a safe request.
const NoAge time.Duration = -1

// gcBatch is how many keys one write transaction of the sweep changes: big
// enough that fsyncs stay rare, small enough that pushes waiting for the
// writer lock (or a digest lock) are held up for a millisecond or two, not
// tens of them.
const gcBatch = 128

// gcYieldFactor and gcYieldMax make the sweep yield to requests: after each
// batch that another follows, it sleeps gcYieldFactor times as long as the batch took, up to
// gcYieldMax, so a collection takes at most a third of one core and of
// the writer lock's time while it sweeps, and pulls and pushes keep the
// rest. A collection of a large store takes about three times as long; it
// runs in the background.
const (
	gcYieldFactor = 2
	gcYieldMax    = 50 * time.Millisecond
)

// gcYield sleeps after a sweep batch that began at started (see
// gcYieldFactor), or until ctx is done.
func gcYield(ctx context.Context, started time.Time) {
	d := min(gcYieldFactor*time.Since(started), gcYieldMax)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// GCOptions adjust CollectGarbage.
type GCOptions struct {
	// DryRun plans the collection and reports it without changing anything.
	DryRun bool
	// Grace protects recent work: a manifest pushed, a blob uploaded or a
	// link made (upload or mount) within Grace before the run is kept, and so
	// is an unknown file modified within it. Zero means DefaultGrace; NoAge
	// means none.
	Grace time.Duration
	// UploadTTL is how long an upload session may sit idle before it is
	// removed with its data. Zero means DefaultUploadTTL; NoAge means none,
	// which ends every upload in progress, monolithic ones included.
	UploadTTL time.Duration
	// KeepUntagged keeps every manifest; only blobs and links that no
	// manifest references are collected.
	KeepUntagged bool
	// NoGrace, when not nil, names repositories whose manifests and links
	// get no grace period, and blobs linked only from such repositories:
	// a mirror's cache, evicting (nothing is mid-push there, since pushes
	// are refused, and what goes is fetched again by the next pull).
	NoGrace func(repo string) bool
	// Progress, when not nil, is called as each phase advances: phase is
	// "plan", "manifests", "links", "blobs", "uploads" or "files". It runs on
	// the collecting goroutine and must return quickly.
	Progress func(phase string, done, total int)
}

func (o GCOptions) grace() time.Duration { return ageLimit(o.Grace, DefaultGrace) }

// GracePeriod returns the grace period a collection with o uses: Grace, or
// DefaultGrace when it is zero, or 0 for NoAge.
func (o GCOptions) GracePeriod() time.Duration { return o.grace() }
func (o GCOptions) uploadTTL() time.Duration   { return ageLimit(o.UploadTTL, DefaultUploadTTL) }

func ageLimit(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (o GCOptions) progress(phase string, done, total int) {
	if o.Progress != nil {
		o.Progress(phase, done, total)
	}
}

// GCReport lists what a collection removed, or with DryRun would remove.
// Every list is sorted.
type GCReport struct {
	DryRun       bool
	Manifests    []RemovedManifest
	Links        []RemovedLink
	Blobs        []RemovedBlob
	Uploads      []RemovedUpload
	Files        []RemovedFile
	Repositories []string // repositories left with nothing, removed from the catalog
	// Kept counts things the plan chose that changed while the collection
	// ran (re-pushed, tagged, linked again, pinned) and so were kept.
	Kept int
	// Graced is what nothing references but the grace period kept.
	Graced GracedReport
}

// GracedReport is what a collection would have removed but for the grace
// period: unreferenced, but pushed, linked or left unreferenced too
// recently. A collection from FreeAfter on removes it, unless something
// references it again.
type GracedReport struct {
	Grace     time.Duration // the grace period the collection used
	Manifests int
	Links     int
	Blobs     int
	Bytes     int64     // manifest bodies and blobs
	FreeAfter time.Time // when the youngest of them leaves the grace period; zero when none
}

// RemovedManifest is a manifest removed from a repository; Size is the
// length of its body.
type RemovedManifest struct {
	Repo   string
	Digest Digest
	Size   int64
}

// RemovedLink is a blob that a repository can no longer serve.
type RemovedLink struct {
	Repo   string
	Digest Digest
}

// RemovedBlob is a blob whose record and file were removed.
type RemovedBlob struct {
	Digest Digest
	Size   int64
}

// RemovedUpload is an idle upload session; Size is what it had received.
type RemovedUpload struct {
	ID   string
	Repo string
	Size int64
}

// RemovedFile is a file that no record knew, removed from DATA/blobs or
// DATA/uploads. Path is relative to the data directory.
type RemovedFile struct {
	Path string
	Size int64
}

// Bytes returns the disk space the report accounts for: manifest bodies,
// blobs, upload data and orphan files.
func (r *GCReport) Bytes() int64 {
	var n int64
	for _, m := range r.Manifests {
		n += m.Size
	}
	for _, b := range r.Blobs {
		n += b.Size
	}
	for _, u := range r.Uploads {
		n += u.Size
	}
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

func (r *GCReport) sort() {
	sort.Slice(r.Manifests, func(i, j int) bool {
		a, b := r.Manifests[i], r.Manifests[j]
		return a.Repo < b.Repo || a.Repo == b.Repo && a.Digest < b.Digest
	})
	sort.Slice(r.Links, func(i, j int) bool {
		a, b := r.Links[i], r.Links[j]
		return a.Repo < b.Repo || a.Repo == b.Repo && a.Digest < b.Digest
	})
	sort.Slice(r.Blobs, func(i, j int) bool { return r.Blobs[i].Digest < r.Blobs[j].Digest })
	sort.Slice(r.Uploads, func(i, j int) bool { return r.Uploads[i].ID < r.Uploads[j].ID })
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Path < r.Files[j].Path })
	sort.Strings(r.Repositories)
}

// CollectGarbage removes what nothing references any more: untagged
// manifests that no index or present subject reaches (unless KeepUntagged),
// repository links to blobs that no remaining manifest lists, blobs that no
// repository links, idle upload sessions and files no record knows. It is
// safe while the registry serves pushes and pulls; docs/gc.md gives the
// reasoning. Nothing younger than opts.Grace is removed.
//
// It plans in one read transaction, then removes in short write
// transactions, checking each thing again against the current state, so
// whatever changed since the plan is kept. Collections run one at a time;
// a second call waits for the first. When ctx is cancelled it stops between
// batches and returns what it removed so far with ctx's error; the store
// stays consistent at every step, also when the process dies mid-run.
func (s *Store) CollectGarbage(ctx context.Context, opts GCOptions) (GCReport, error) {
	s.starts.settle() // sessions started before this call are in the records (uploadstart.go)
	s.gc.run.Lock()
	defer s.gc.run.Unlock()
	report := GCReport{DryRun: opts.DryRun}
	now := s.now()
	opts.progress("plan", 0, 1)
	p, err := s.plan(opts, now)
	if err != nil {
		return report, err
	}
	opts.progress("plan", 1, 1)
	if report.Graced, err = s.graced(p, opts, now); err != nil {
		return report, err
	}
	if opts.DryRun {
		p.report(&report)
		files, err := s.findOrphanFiles(now.Add(-opts.grace()), now.Add(-max(opts.grace(), opts.uploadTTL())))
		report.Files = files.report()
		if err == nil {
			var objects []orphanObject
			var sessions []StoredSession
			objects, sessions, err = s.findOrphanObjects(ctx, now.Add(-max(opts.grace(), opts.uploadTTL())))
			report.Files = append(report.Files, objectReport(objects, sessions)...)
		}
		report.sort()
		return report, err
	}
	steps := []func(context.Context, *gcPlan, *GCReport, GCOptions) error{
		s.sweepManifests, s.sweepLinks, s.sweepBlobs, s.sweepUploads,
	}
	for _, step := range steps {
		if err := step(ctx, p, &report, opts); err != nil {
			report.sort()
			return report, err
		}
	}
	err = s.sweepFiles(ctx, &report, opts, now)
	if err == nil {
		err = s.sweepObjects(ctx, &report, now.Add(-max(opts.grace(), opts.uploadTTL())))
	}
	report.sort()
	return report, err
}

// gcState is the store's part in garbage collection: one run at a time,
// and the pins that keep blobs from being collected.
type gcState struct {
	run sync.Mutex

	// pinMu guards the pins, and the blob sweep holds it while it checks
	// them and commits, so a pin taken before a snapshot (a backup's read
	// transaction) covers every blob that snapshot can see.
	pinMu  sync.Mutex
	pins   map[Digest]int
	pinAll int
}

// Pin keeps blobs ds from being collected until unpin is called (once;
// later calls do nothing). Pins nest: a blob pinned twice stays pinned until
// both are undone. A blob GC has already removed is not brought back, so
// take the pin before looking at the blobs: a read transaction begun after
// Pin returns sees every pinned blob that exists then, and it keeps its file.
func (s *Store) Pin(ds []Digest) (unpin func()) {
	g := &s.gc
	g.pinMu.Lock()
	defer g.pinMu.Unlock()
	if g.pins == nil {
		g.pins = make(map[Digest]int)
	}
	for _, d := range ds {
		g.pins[d]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.pinMu.Lock()
			defer g.pinMu.Unlock()
			for _, d := range ds {
				if g.pins[d]--; g.pins[d] <= 0 {
					delete(g.pins, d)
				}
			}
		})
	}
}

// PinAll keeps every blob from being collected until unpin is called: what
// a backup needs, which learns its blob list only inside its snapshot. GC
// still removes manifests and links meanwhile; blobs wait for the next run.
func (s *Store) PinAll() (unpin func()) {
	g := &s.gc
	g.pinMu.Lock()
	g.pinAll++
	g.pinMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.pinMu.Lock()
			g.pinAll--
			g.pinMu.Unlock()
		})
	}
}

// pinned reports whether d is pinned. The caller holds pinMu.
func (g *gcState) pinned(d Digest) bool { return g.pinAll > 0 || g.pins[d] > 0 }

// pinnedNow returns a copy of the current pins as a test.
func (g *gcState) pinnedNow() func(Digest) bool {
	g.pinMu.Lock()
	defer g.pinMu.Unlock()
	all := g.pinAll > 0
	pins := make(map[Digest]bool, len(g.pins))
	for d := range g.pins {
		pins[d] = true
	}
	return func(d Digest) bool { return all || pins[d] }
}

// checkContext returns ctx's error wrapped to say where the run stopped.
func checkContext(ctx context.Context, phase string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gc stopped during %s: %w", phase, err)
	}
	return nil
}

// graced finds what the grace period alone keeps from plan p: the
// difference to a plan made without one. It costs a second plan, one more
// read transaction over the records; without a grace period it costs
// nothing.
func (s *Store) graced(p *gcPlan, opts GCOptions, now time.Time) (GracedReport, error) {
	g := GracedReport{Grace: opts.grace()}
	if g.Grace <= 0 {
		return g, nil
	}
	noGrace := opts
	noGrace.Grace = NoAge
	all, err := s.plan(noGrace, now)
	if err != nil {
		return g, err
	}
	youngest := time.Time{}
	seen := func(t time.Time) {
		if t.After(youngest) {
			youngest = t
		}
	}
	planned := map[string]bool{}
	for _, batch := range p.manifests {
		for _, m := range batch {
			planned[m.repo+"@"+string(m.digest)] = true
		}
	}
	for _, batch := range all.manifests {
		for _, m := range batch {
			if !planned[m.repo+"@"+string(m.digest)] {
				g.Manifests++
				g.Bytes += m.size
				seen(time.Unix(0, m.rec.Created))
			}
		}
	}
	for _, l := range p.links {
		planned[l.repo+">"+string(l.digest)] = true
	}
	for _, l := range all.links {
		if !planned[l.repo+">"+string(l.digest)] {
			g.Links++
			seen(l.created)
		}
	}
	for _, b := range p.blobs {
		planned[string(b.digest)] = true
	}
	for _, b := range all.blobs {
		if !planned[string(b.digest)] {
			g.Blobs++
			g.Bytes += b.size
			seen(b.created)
		}
	}
	if !youngest.IsZero() {
		g.FreeAfter = youngest.Add(g.Grace)
	}
	return g, nil
}
