package integration

// What garbage collection costs the clients of a serving registry: manifest
// pulls and small blob pushes at concurrency 32, measured on a store with
// thousands of manifests and as much garbage, once with no collection and
// once while `berth gc --grace 0s` runs back to back through the control
// socket. Client, server and collector share the machine's cores, so the
// rates with GC running include the CPU the collection takes from both.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	gcBenchRepos        = 20   // repositories the images are spread over
	gcBenchSharedLayers = 8    // 4 KiB layers every repository holds; each image uses two
	gcBenchTagged       = 2000 // tagged images, what GC must keep
	gcBenchUntagged     = 2000 // untagged images, garbage with a config and a layer of their own
	gcBenchOrphans      = 2000 // 4 KiB blobs uploaded and never referenced
	gcBenchPulls        = 50000
	gcBenchPushes       = 2000
	gcBenchMaxRuns      = 500 // bound on the collections of one measurement
)

// BenchmarkGCUnderLoad measures a fixed number of manifest GETs (by tag,
// over all tagged images) and of 4 KiB blob pushes (POST then PUT, as
// BenchmarkSmallBlob/push-post-put), at concurrency 32, without GC and
// while GC runs in a loop. Every measurement starts from the same store:
// the tagged images, and garbage freshly pushed after a collection cleared
// the previous measurement's leftovers. So the first collection of a run
// with GC has the whole garbage to remove, and the later ones plan over the
// tagged images and sweep the blobs the push measurement leaves behind.
// Each load runs without GC and then with it, so that the two numbers of a
// pair are taken close together on a machine whose load may drift.
//
// Pushing the store takes most of the time: on the 2-core development VM,
// where an fsync takes about 3 ms, a run takes minutes, hence
// BERTH_BENCH_GC=1.
func BenchmarkGCUnderLoad(b *testing.B) {
	if os.Getenv("BERTH_BENCH_GC") == "" {
		b.Skip("set BERTH_BENCH_GC=1 to push a store of 4,000 images and measure pulls and pushes with and without GC (minutes)")
	}
	g := &gcBench{s: startServer(b, ""), client: benchClient(b)}
	g.populate(b)
	loads := []struct {
		name, unit string
		count      int
		op         func(i int) error
	}{
		{"pull-manifest", "req/s", gcBenchPulls, func(i int) error {
			return pullManifest(g.client, g.s, g.tags[i%len(g.tags)])
		}},
		{"push-blob", "ops/s", gcBenchPushes, func(i int) error {
			blob := smallBlob(g.pushPrefix, i)
			return benchPush(g.client, g.s, gcBenchRepo(i), sha256Digest(blob), bytes.NewReader(blob), false)
		}},
	}
	for _, load := range loads {
		for _, gc := range []bool{false, true} {
			name := load.name + "/gc=none"
			if gc {
				name = load.name + "/gc=loop"
			}
			b.Run(name, func(b *testing.B) {
				var sum gcMeasurement
				for range b.N {
					sum.add(g.measure(b, load.count, load.op, gc))
				}
				sum.report(b, load.unit, gc)
			})
		}
	}
}

// gcMeasurement is what one or more measurements of a load saw.
type gcMeasurement struct {
	latencies []time.Duration
	elapsed   time.Duration // the time all requests took
	gcRuns    int           // with GC: the runs that overlapped the requests
	// gcRun is how long collecting the garbage took: with GC, the loop's
	// first run, under load; without, a run just after, on an idle server.
	gcRun time.Duration
}

func (m *gcMeasurement) add(o gcMeasurement) {
	m.latencies = append(m.latencies, o.latencies...)
	m.elapsed += o.elapsed
	m.gcRuns += o.gcRuns
	m.gcRun += o.gcRun
}

func (m *gcMeasurement) report(b *testing.B, unit string, gc bool) {
	slices.Sort(m.latencies)
	b.ReportMetric(float64(len(m.latencies))/m.elapsed.Seconds(), unit)
	b.ReportMetric(ms(m.latencies[len(m.latencies)/2]), "p50-ms")
	b.ReportMetric(ms(m.latencies[len(m.latencies)*99/100]), "p99-ms")
	if gc {
		b.ReportMetric(float64(m.gcRuns)/float64(b.N), "gc-runs")
		b.ReportMetric(m.gcRun.Seconds()/float64(b.N), "gc-first-run-s")
	} else {
		b.ReportMetric(m.gcRun.Seconds()/float64(b.N), "gc-idle-run-s")
	}
}

// measure pushes fresh garbage, then runs op count times, with a gcLoop
// alongside when gc is set, or followed by one timed collection on the idle
// server when not. Only the requests are timed.
func (g *gcBench) measure(b *testing.B, count int, op func(int) error, gc bool) gcMeasurement {
	b.StopTimer()
	g.resetGarbage(b)
	var loop *gcLoop
	if gc {
		loop = startGCLoop(b, g.s.Data)
	}
	b.StartTimer()
	latencies, took, err := runFixed(count, op)
	b.StopTimer()
	m := gcMeasurement{latencies: latencies, elapsed: took}
	removed := 0
	if loop != nil {
		r := loop.finish()
		if r.err != nil {
			b.Fatal(r.err)
		}
		removed, m.gcRuns, m.gcRun = r.removedManifests, r.runs, r.firstRun
	}
	if err != nil {
		b.Fatal(err)
	}
	if loop == nil {
		began := time.Now()
		removed = g.collect(b)
		m.gcRun = time.Since(began)
	}
	if removed < gcBenchUntagged {
		b.Fatalf("gc removed %d manifests; the %d untagged ones pushed before should all be gone", removed, gcBenchUntagged)
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// gcBenchRepo is the repository of image (or pushed blob) i.
func gcBenchRepo(i int) string { return fmt.Sprintf("gcbench/app%02d", i%gcBenchRepos) }

// benchPrefix returns a blob prefix no other call in this process returns,
// so that every blob made from it is new content.
func benchPrefix(kind string) []byte {
	return fmt.Appendf(nil, "gcbench %s %d ", kind, benchSeed.Add(1))
}

// gcBench is the registry of BenchmarkGCUnderLoad and what it holds.
type gcBench struct {
	s      *server
	client *http.Client
	shared [][]byte // the layers every repository holds
	tags   []string // the manifest path of every tagged image
	// pushPrefix starts the blobs of the next push measurement; resetGarbage
	// renews it, so that every measurement pushes new content.
	pushPrefix []byte
}

// populate pushes the shared layers into every repository and the tagged
// images.
func (g *gcBench) populate(b *testing.B) {
	b.Helper()
	g.shared = make([][]byte, gcBenchSharedLayers)
	prefix := benchPrefix("shared")
	for i := range g.shared {
		g.shared[i] = smallBlob(prefix, i)
	}
	_, _, err := runFixed(gcBenchRepos*len(g.shared), func(i int) error {
		return pushMonolithic(g.client, g.s, gcBenchRepo(i), g.shared[i/gcBenchRepos])
	})
	if err != nil {
		b.Fatal(err)
	}
	g.tags = make([]string, gcBenchTagged)
	for i := range g.tags {
		g.tags[i] = fmt.Sprintf("/v2/%s/manifests/v%d", gcBenchRepo(i), i)
	}
	g.pushImages(b, gcBenchTagged, func(i int, digest string) string { return g.tags[i] })
}

// resetGarbage collects everything unreferenced (the last measurement's
// garbage and pushed blobs), then pushes fresh garbage: untagged images
// in the same repositories as the tagged ones, and orphan blobs.
func (g *gcBench) resetGarbage(b *testing.B) {
	b.Helper()
	g.collect(b)
	g.pushImages(b, gcBenchUntagged, func(i int, digest string) string {
		return "/v2/" + gcBenchRepo(i) + "/manifests/" + digest
	})
	prefix := benchPrefix("orphan")
	_, _, err := runFixed(gcBenchOrphans, func(i int) error {
		return pushMonolithic(g.client, g.s, gcBenchRepo(i), smallBlob(prefix, i))
	})
	if err != nil {
		b.Fatal(err)
	}
	g.pushPrefix = benchPrefix("push")
}

// collect runs `berth gc --grace 0s` once and returns how many manifests
// it removed.
func (g *gcBench) collect(b *testing.B) int {
	b.Helper()
	out, errOut, err := runBerth(b, b.Context(), nil, "gc", "--data", g.s.Data, "--grace", "0s")
	removed, perr := removedManifests(out)
	if err == nil {
		err = perr
	}
	if err != nil {
		b.Fatalf("gc: %v\n%s%s", err, lastLine(out), errOut)
	}
	return removed
}

// pushImages pushes n new images, image i to the manifest path
// path(i, digest) in repository gcBenchRepo(i). Each has a config and a
// 4 KiB layer of its own and two of the shared layers.
func (g *gcBench) pushImages(b *testing.B, n int, path func(i int, digest string) string) {
	b.Helper()
	prefix := benchPrefix("image")
	shared := make([]descriptor, len(g.shared))
	for i, blob := range g.shared {
		shared[i] = descriptor{MediaType: mediaTypeOCILayer, Digest: sha256Digest(blob), Size: int64(len(blob))}
	}
	type image struct{ config, layer, manifest []byte }
	images := make([]image, n)
	for i := range images {
		img := &images[i]
		img.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":"%s%d"}`, prefix, i)
		img.layer = smallBlob(prefix, i)
		config := descriptor{MediaType: mediaTypeOCIConfig, Digest: sha256Digest(img.config), Size: int64(len(img.config))}
		layers := []descriptor{
			shared[i%len(shared)], shared[(i+3)%len(shared)],
			{MediaType: mediaTypeOCILayer, Digest: sha256Digest(img.layer), Size: int64(len(img.layer))},
		}
		img.manifest = ociManifest(b, config, layers)
	}
	_, _, err := runFixed(n, func(i int) error {
		img, repo := images[i], gcBenchRepo(i)
		if err := pushMonolithic(g.client, g.s, repo, img.config); err != nil {
			return err
		}
		if err := pushMonolithic(g.client, g.s, repo, img.layer); err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodPut, g.s.URL(path(i, sha256Digest(img.manifest))), bytes.NewReader(img.manifest))
		req.Header.Set("Content-Type", mediaTypeOCIManifest)
		_, _, err := benchCall(g.client, req, http.StatusCreated, nil)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// pushMonolithic uploads blob to repo in one POST with ?digest=.
func pushMonolithic(client *http.Client, s *server, repo string, blob []byte) error {
	req, _ := http.NewRequest(http.MethodPost, s.URL("/v2/"+repo+"/blobs/uploads/?digest="+sha256Digest(blob)), bytes.NewReader(blob))
	_, _, err := benchCall(client, req, http.StatusCreated, nil)
	return err
}

// pullManifest GETs the manifest at path, which must be there.
func pullManifest(client *http.Client, s *server, path string) error {
	req, _ := http.NewRequest(http.MethodGet, s.URL(path), nil)
	req.Header.Set("Accept", mediaTypeOCIManifest)
	_, n, err := benchCall(client, req, http.StatusOK, nil)
	if err == nil && n == 0 {
		err = fmt.Errorf("GET %s: empty body", path)
	}
	return err
}

// runFixed calls op(0) … op(n-1) from benchConcurrency goroutines and
// returns the latency of every call and the time all took. The first error
// stops the run.
func runFixed(n int, op func(i int) error) ([]time.Duration, time.Duration, error) {
	return runFixedC(benchConcurrency, n, op)
}

// runFixedC is runFixed from c goroutines; the latencies come back sorted.
func runFixedC(c, n int, op func(i int) error) ([]time.Duration, time.Duration, error) {
	return runWorkers(c, n, func(_, i int) error { return op(i) })
}

// runWorkers is runFixedC with op told which worker (0 … c-1) calls it, for
// workers that keep state of their own, such as a connection.
func runWorkers(c, n int, op func(w, i int) error) ([]time.Duration, time.Duration, error) {
	var (
		next      atomic.Int64
		latencies = make([][]time.Duration, c)
		firstErr  error
		errOnce   sync.Once
		wg        sync.WaitGroup
	)
	for w := range latencies {
		latencies[w] = make([]time.Duration, 0, n/c+1)
	}
	start := time.Now()
	for w := range c {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				began := time.Now()
				if err := op(w, int(i)); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n))
					return
				}
				latencies[w] = append(latencies[w], time.Since(began))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	all := slices.Concat(latencies...)
	slices.Sort(all)
	return all, took, firstErr
}

// gcLoop runs `berth gc --grace 0s` through the control socket, one run
// after another, until finish is called or gcBenchMaxRuns have run.
type gcLoop struct {
	stop   chan struct{}
	done   chan struct{}
	result gcLoopResult
}

// gcLoopResult sums up the runs of a gcLoop.
type gcLoopResult struct {
	runs             int           // runs started before finish
	removedManifests int           // over all runs
	firstRun         time.Duration // how long the first run took
	err              error         // the first failed run
}

func startGCLoop(b *testing.B, data string) *gcLoop {
	l := &gcLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		r := &l.result
		for r.runs < gcBenchMaxRuns {
			select {
			case <-l.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
			began := time.Now()
			out, errOut, err := runBerth(b, ctx, nil, "gc", "--data", data, "--grace", "0s")
			cancel()
			if r.runs == 0 {
				r.firstRun = time.Since(began)
			}
			r.runs++
			removed, perr := removedManifests(out)
			if err == nil {
				err = perr
			}
			if err != nil {
				r.err = fmt.Errorf("gc run %d: %v\n%s%s", r.runs, err, lastLine(out), errOut)
				return
			}
			r.removedManifests += removed
		}
	}()
	return l
}

// finish stops the loop after the run in progress and returns its result.
func (l *gcLoop) finish() gcLoopResult {
	close(l.stop)
	<-l.done
	return l.result
}

var gcSummary = regexp.MustCompile(`(?m)^gc: removed (\d+) manifests?, `)

// removedManifests reads the count of removed manifests from the summary
// line of a gc run's output.
func removedManifests(out string) (int, error) {
	m := gcSummary.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no summary line in the gc output")
	}
	return strconv.Atoi(m[1])
}

// lastLine is the last non-empty line of out: the summary of a gc run,
// whose output lists every removed item before it.
func lastLine(out string) string {
	out = strings.TrimRight(out, "\n")
	return out[strings.LastIndexByte(out, '\n')+1:]
}
