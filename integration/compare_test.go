package integration

// `make bench-compare`: the same workloads against berth and against
// distribution's registry (v3.1.2, built by .ci/deps), started side by side
// on loopback in one run, with each figure and berth's ratio printed, and
// the idle and peak resident set of both. It measures and asserts nothing;
// docs/performance.md keeps the last table.
//
// Durability is not the same and cannot be made so: berth answers a push
// only after the blob file, its shard directory and the meta.db commit are
// fsynced; distribution's filesystem driver never fsyncs (it has no setting
// for it), so its 201 means the data is in the page cache. Both run with
// authentication off, distribution with the in-memory blob descriptor cache
// of the registry:2 image's default config, its access log and upload
// purging off.
//
// Each figure starts with the disk settled (sync): distribution's writes
// are still in the page cache when its run ends, and without a sync the
// kernel writes them back during the next run, berth's, whose own fsyncs
// then wait behind a gigabyte of distribution's data. Settling charges each
// registry only its own writes; neither is timed while it happens.

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// compareTarget is one registry under test.
type compareTarget struct {
	name   string
	s      *server // for distribution, Addr and cmd only
	client *http.Client
}

// compareRow is one workload's figures: higher is better for a rate,
// lower for a latency (lowerBetter).
type compareRow struct {
	name, unit  string
	lowerBetter bool
	values      map[string]float64       // target name → figure
	cpu         map[string]time.Duration // target name → server CPU per operation, for the lean rows
	client      map[string]time.Duration // target name → load generator's CPU per operation
}

func TestBenchCompare(t *testing.T) {
	if os.Getenv("BERTH_BENCH_COMPARE") == "" {
		t.Skip("set BERTH_BENCH_COMPARE=1 (or run make bench-compare) to measure berth against distribution's registry")
	}
	large := int64(1 << 30)
	if v := os.Getenv("BERTH_COMPARE_LARGE_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("BERTH_COMPARE_LARGE_MIB=%q: want a positive number of MiB", v)
		}
		large = n << 20
	}
	berth := startBenchServer(t, "")
	// The blob descriptor cache of the registry:2 image's default config.
	dist := startDistributionWith(t, "", "  cache:\n    blobdescriptor: inmemory\n")
	targets := []*compareTarget{
		{name: "berth", s: berth, client: benchClient(t)},
		{name: "distribution", s: &server{Addr: dist.Addr, cmd: dist.cmd}, client: benchClient(t)},
	}
	idle := map[string]float64{}
	for _, tg := range targets {
		idle[tg.name] = float64(procStatusKiB(t, tg.s, "VmRSS")) / 1024
	}
	var rows []*compareRow
	add := func(r *compareRow) {
		rows = append(rows, r)
		var parts []string
		for _, tg := range targets {
			p := fmt.Sprintf("%s %.1f", tg.name, r.values[tg.name])
			if cpu, ok := r.cpu[tg.name]; ok {
				p += fmt.Sprintf(" [server %.1f µs/op, client %.1f µs/op]", micros(cpu), micros(r.client[tg.name]))
			}
			parts = append(parts, p)
		}
		t.Logf("%-44s %s (%s)", r.name, strings.Join(parts, ", "), r.unit)
	}
	each := func(name, unit string, lowerBetter bool, f func(tg *compareTarget) float64) {
		r := &compareRow{name: name, unit: unit, lowerBetter: lowerBetter, values: map[string]float64{}}
		for _, tg := range targets {
			syscall.Sync()
			r.values[tg.name] = f(tg)
		}
		add(r)
	}
	// eachLean is each for a workload the lean load generator drives
	// (loadgen_test.go): the rate, and the server's CPU per operation.
	eachLean := func(name, unit string, f func(tg *compareTarget) leanResult) {
		r := &compareRow{name: name, unit: unit, values: map[string]float64{},
			cpu: map[string]time.Duration{}, client: map[string]time.Duration{}}
		for _, tg := range targets {
			syscall.Sync()
			res := f(tg)
			r.values[tg.name], r.cpu[tg.name], r.client[tg.name] = res.rate, res.serverCPU, res.clientCPU
		}
		add(r)
	}

	// Large blobs, one at a time.
	largeDigests := map[string]string{}
	for _, flow := range []string{"monolithic", "streamed", "chunked"} {
		each(fmt.Sprintf("push %d MiB, %s", large>>20, flow), "MB/s", false, func(tg *compareTarget) float64 {
			seed := benchSeed.Add(1)
			d := patternDigest(t, seed, large)
			start := time.Now()
			if err := comparePushLarge(tg, "cmp/large", d, seed, large, flow); err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
			largeDigests[tg.name] = d
			return float64(large) / 1e6 / time.Since(start).Seconds()
		})
	}
	each(fmt.Sprintf("pull %d MiB, digest checked", large>>20), "MB/s", false, func(tg *compareTarget) float64 {
		start := time.Now()
		if err := benchPull(tg.client, tg.s, "cmp/large", largeDigests[tg.name], large, true); err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
		return float64(large) / 1e6 / time.Since(start).Seconds()
	})

	// Small blobs, through the lean load generator, each blob made before
	// the clock starts.
	var run atomic.Uint64
	small := newLeanRepo("cmp/small")
	for _, c := range []int{8, 32} {
		for _, flow := range []string{"POST+PUT", "monolithic POST"} {
			if c == 8 && flow == "monolithic POST" {
				continue
			}
			eachLean(fmt.Sprintf("push 4 KiB, %s, c=%d", flow, c), "ops/s", func(tg *compareTarget) leanResult {
				blobs, digests := newSmallBlobs(fmt.Sprintf("%s-%d-", tg.name, run.Add(1)), 2000)
				return leanRun(t, tg.s, c, len(blobs), nil, func(lc *leanConn, i int) error {
					if flow == "POST+PUT" {
						return leanPushPostPut(lc, small, blobs[i], digests[i])
					}
					return leanPushOneRequest(lc, small, blobs[i], digests[i])
				})
			})
		}
	}
	pullBlobs, pullDigests := newSmallBlobs("cmp-pull", 512)
	for i, blob := range pullBlobs {
		for _, tg := range targets {
			if err := benchPush(tg.client, tg.s, "cmp/pull", string(pullDigests[i]), bytes.NewReader(blob), false); err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
		}
	}
	pull := newLeanRepo("cmp/pull")
	for _, c := range []int{8, 32} {
		eachLean(fmt.Sprintf("pull 4 KiB, c=%d", c), "ops/s", func(tg *compareTarget) leanResult {
			return leanRun(t, tg.s, c, 10000, nil, func(lc *leanConn, i int) error {
				k := i % len(pullBlobs)
				return leanPull(lc, pull, pullDigests[k], pullBlobs[k])
			})
		})
	}

	// Manifests and tags.
	images := map[string]ackedImage{}
	for _, tg := range targets {
		img, ok := pushSmallImage(t.Context(), tg.s, "cmp/manifests", 1, false)
		if !ok {
			t.Fatalf("%s: push of the manifest image failed", tg.name)
		}
		images[tg.name] = img
	}
	manifests := newLeanRepo("cmp/manifests")
	eachLean("manifest PUT (new manifests), c=32", "ops/s", func(tg *compareTarget) leanResult {
		img := images[tg.name]
		prefix := tg.name + strconv.FormatUint(run.Add(1), 10)
		bodies, digests := make([][]byte, 5000), make([][]byte, 5000)
		for i := range bodies {
			bodies[i] = bytes.Replace(img.manifest, []byte(`"schemaVersion":2`),
				[]byte(`"annotations":{"n":"`+prefix+strconv.Itoa(i)+`"},"schemaVersion":2`), 1)
			digests[i] = []byte(sha256Digest(bodies[i]))
		}
		return leanRun(t, tg.s, 32, len(bodies), nil, func(lc *leanConn, i int) error {
			return leanPutManifest(lc, manifests, digests[i], bodies[i])
		})
	})
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		eachLean("manifest "+method+" by tag, c=32", "req/s", func(tg *compareTarget) leanResult {
			img := images[tg.name]
			return leanRun(t, tg.s, 32, 20000, nil, leanManifest(method, "cmp/manifests", img.tag, img.manifest))
		})
	}
	eachLean("tag creation (existing manifest), c=16", "ops/s", func(tg *compareTarget) leanResult {
		img := images[tg.name]
		prefix := "t" + strconv.FormatUint(run.Add(1), 10) + "-"
		refs := make([][]byte, 5000)
		for i := range refs {
			refs[i] = []byte(prefix + strconv.Itoa(i))
		}
		return leanRun(t, tg.s, 16, len(refs), nil, func(lc *leanConn, i int) error {
			return leanPutManifest(lc, manifests, refs[i], img.manifest)
		})
	})
	tokenRows := compareTokenAuth(t)

	// Listings at 1,000 and 10,000 entries, in pages of 1,000 (distribution
	// refuses a larger n).
	for _, n := range []int{1000, 10000} {
		for _, tg := range targets {
			fillListings(t, tg, images[tg.name], n)
		}
		each(fmt.Sprintf("catalog, %d repositories, all pages", n), "lists/s", false, func(tg *compareTarget) float64 {
			rate, _ := compareRate(t, tg, 4, 40, func(int) error {
				return walkList(tg, "/v2/_catalog?n=1000", "repositories", n)
			})
			return rate
		})
		each(fmt.Sprintf("tags list, %d tags, all pages", n), "lists/s", false, func(tg *compareTarget) float64 {
			rate, _ := compareRate(t, tg, 4, 40, func(int) error {
				return walkList(tg, fmt.Sprintf("/v2/cmp/tags%d/tags/list?n=1000", n), "tags", n)
			})
			return rate
		})
	}

	// Whole images: config, two 4 KiB layers and a manifest, c=8.
	var imgSeed atomic.Uint64
	imgSeed.Store(1 << 40)
	pushedImages := map[string][]ackedImage{}
	var pushedMu sync.Mutex
	each("whole small image push, c=8, p50", "ms", true, func(tg *compareTarget) float64 {
		_, p50 := compareRate(t, tg, 8, 400, func(int) error {
			img, err := pushWholeImage(tg, "cmp/images", imgSeed.Add(1))
			if err == nil {
				pushedMu.Lock()
				pushedImages[tg.name] = append(pushedImages[tg.name], img)
				pushedMu.Unlock()
			}
			return err
		})
		return float64(p50.Microseconds()) / 1000
	})
	each("whole small image pull, c=8, p50", "ms", true, func(tg *compareTarget) float64 {
		imgs := pushedImages[tg.name]
		_, p50 := compareRate(t, tg, 8, 2000, func(i int) error {
			return pullWholeImage(tg, "cmp/images", imgs[i%len(imgs)])
		})
		return float64(p50.Microseconds()) / 1000
	})

	peak := map[string]float64{}
	for _, tg := range targets {
		peak[tg.name] = float64(procStatusKiB(t, tg.s, "VmHWM")) / 1024
	}
	add(&compareRow{name: "RSS idle, after start", unit: "MiB", lowerBetter: true, values: idle})
	add(&compareRow{name: "RSS peak over the run (VmHWM)", unit: "MiB", lowerBetter: true, values: peak})

	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 0, 4, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(&out, "\nberth against distribution %s, one run (ratio: berth/distribution; "+
		"server CPU per operation from /proc/PID/stat, cpu ratio: distribution/berth)\n", registry2Version)
	fmt.Fprintln(w, "workload\tunit\tberth\tdistribution\tratio\tberth cpu µs/op\tdistribution cpu µs/op\tcpu ratio\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%s\t%s\t\n", r.name, r.unit, r.values["berth"], r.values["distribution"],
			ratioOf(r.values["berth"], r.values["distribution"]), cpuColumns(r, "berth", "distribution"))
	}
	w.Flush()
	fmt.Fprintf(&out, "\nberth with token auth (a Bearer token fetched once per connection) against --auth none, "+
		"same data, three runs each way, alternated, medians (ratio: bearer/none; cpu ratio: bearer/none, above 1 when a Bearer request costs more)\n")
	fmt.Fprintln(w, "workload\tunit\tnone\tbearer\tratio\tnone cpu µs/op\tbearer cpu µs/op\tcpu ratio\t")
	for _, r := range tokenRows {
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.1f\t%s\t%s\t\n", r.name, r.unit, r.values["none"], r.values["bearer"],
			ratioOf(r.values["bearer"], r.values["none"]), cpuColumns(r, "none", "bearer"))
	}
	w.Flush()
	fmt.Print(out.String())
}

// compareTokenAuth measures manifest HEAD and GET by tag at c=32 on two
// berths holding the same image, one with --auth none and one with token
// auth, where each connection fetches a pull token once (as docker does
// once per pull) and sends it as Bearer on every request. Three runs of
// each, alternated; the rows hold the medians.
func compareTokenAuth(t *testing.T) []*compareRow {
	modes, manifest := leanAuthModes(t)
	var rows []*compareRow
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		r := &compareRow{name: "manifest " + method + " by tag, c=32", unit: "req/s", values: map[string]float64{},
			cpu: map[string]time.Duration{}, client: map[string]time.Duration{}}
		runs := map[string][]leanResult{}
		for range 3 {
			for _, m := range modes {
				runs[m.name] = append(runs[m.name], leanRun(t, m.s, 32, 20000, m.prepare,
					leanManifest(method, benchRepo, "v0", manifest)))
			}
		}
		for name, res := range runs {
			slices.SortFunc(res, func(a, b leanResult) int { return cmp.Compare(a.rate, b.rate) })
			r.values[name] = res[1].rate
			cpus := []time.Duration{res[0].serverCPU, res[1].serverCPU, res[2].serverCPU}
			slices.Sort(cpus)
			r.cpu[name], r.client[name] = cpus[1], res[1].clientCPU
		}
		t.Logf("token auth: %-30s none %.0f req/s [server %.1f µs/op], bearer %.0f req/s [server %.1f µs/op]",
			r.name, r.values["none"], micros(r.cpu["none"]), r.values["bearer"], micros(r.cpu["bearer"]))
		rows = append(rows, r)
	}
	return rows
}

// newSmallBlobs makes n distinct 4 KiB blobs starting with prefix, and
// their digests.
func newSmallBlobs(prefix string, n int) (blobs, digests [][]byte) {
	blobs, digests = make([][]byte, n), make([][]byte, n)
	for i := range blobs {
		blobs[i] = smallBlob([]byte(prefix), i)
		digests[i] = []byte(sha256Digest(blobs[i]))
	}
	return blobs, digests
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func ratioOf(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// cpuColumns is the server CPU per operation of targets a and b and the
// ratio b/a (how many times as much CPU b's server spends as a's), or
// dashes for a row measured without it.
func cpuColumns(r *compareRow, a, b string) string {
	ca, okA := r.cpu[a]
	cb, okB := r.cpu[b]
	if !okA || !okB {
		return "-\t-\t-"
	}
	return fmt.Sprintf("%.1f\t%.1f\t%s", micros(ca), micros(cb), ratioOf(micros(cb), micros(ca)))
}

// registry2Version is the distribution release .ci/deps builds.
const registry2Version = "v3.1.2"

// compareRate runs op(0) … op(n-1) from c goroutines and returns the rate
// and the median latency. An error ends the test: a figure from a run that
// failed would mean nothing.
func compareRate(t *testing.T, tg *compareTarget, c, n int, op func(i int) error) (float64, time.Duration) {
	t.Helper()
	lat, took, err := runFixedC(c, n, op)
	if err != nil {
		t.Fatalf("%s: %v", tg.name, err)
	}
	return float64(n) / took.Seconds(), lat[len(lat)/2]
}

// comparePushLarge pushes size pattern bytes as blob d: monolithic is POST
// and one PUT with the whole body; streamed is POST, one PATCH with a
// chunked body (what docker sends) and an empty PUT; chunked is POST, PATCHes
// of 64 MiB with Content-Range, and an empty PUT.
func comparePushLarge(tg *compareTarget, repo, d string, seed uint64, size int64, flow string) error {
	switch flow {
	case "monolithic":
		return benchPush(tg.client, tg.s, repo, d, newPatternReader(seed, size), false)
	case "streamed":
		return benchPush(tg.client, tg.s, repo, d, newPatternReader(seed, size), true)
	}
	req, _ := http.NewRequest(http.MethodPost, tg.s.URL("/v2/"+repo+"/blobs/uploads/"), nil)
	h, _, err := benchCall(tg.client, req, http.StatusAccepted, nil)
	if err != nil {
		return err
	}
	loc := h.Get("Location")
	body := newPatternReader(seed, size)
	const chunk = 64 << 20
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, _ := http.NewRequest(http.MethodPatch, tg.s.URL(loc), io.LimitReader(body, n))
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		if h, _, err = benchCall(tg.client, req, http.StatusAccepted, nil); err != nil {
			return err
		}
		loc = h.Get("Location")
	}
	req, _ = http.NewRequest(http.MethodPut, tg.s.URL(withQuery(loc, "digest", d)), http.NoBody)
	_, _, err = benchCall(tg.client, req, http.StatusCreated, nil)
	return err
}

// pushOneRequest pushes blob in one POST with ?digest=, as
// go-containerregistry and containerd do for small blobs. A registry that
// answers 202 instead (distribution does: it ignores the body) gets the
// body again in a PUT to the session, the fallback those clients take.
func pushOneRequest(tg *compareTarget, repo, d string, blob []byte) error {
	req, _ := http.NewRequest(http.MethodPost, tg.s.URL("/v2/"+repo+"/blobs/uploads/?digest="+d), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := tg.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return nil
	case http.StatusAccepted:
		req, _ := http.NewRequest(http.MethodPut, tg.s.URL(withQuery(resp.Header.Get("Location"), "digest", d)), bytes.NewReader(blob))
		req.Header.Set("Content-Type", "application/octet-stream")
		_, _, err := benchCall(tg.client, req, http.StatusCreated, nil)
		return err
	}
	return fmt.Errorf("POST %s: status %d", req.URL.Path, resp.StatusCode)
}

// comparePutManifest PUTs body under ref (a tag or its digest).
func comparePutManifest(tg *compareTarget, repo, ref string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPut, tg.s.URL("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaTypeOCIManifest)
	_, _, err := benchCall(tg.client, req, http.StatusCreated, nil)
	return err
}

// fillListings brings the target to n repositories named cmp/repoNNNNN
// (each the image mounted from cmp/manifests and tagged) and n tags in
// cmp/tags<n>, through the API, 32 requests at a time.
func fillListings(t *testing.T, tg *compareTarget, img ackedImage, n int) {
	t.Helper()
	compareRate(t, tg, 32, n, func(i int) error {
		repo := fmt.Sprintf("cmp/repo%05d", i)
		for d := range img.blobs {
			req, _ := http.NewRequest(http.MethodPost, tg.s.URL("/v2/"+repo+"/blobs/uploads/?mount="+d+"&from=cmp/manifests"), nil)
			if _, _, err := benchCall(tg.client, req, http.StatusCreated, nil); err != nil {
				return err
			}
		}
		return comparePutManifest(tg, repo, "v1", img.manifest)
	})
	repo := fmt.Sprintf("cmp/tags%d", n)
	for d := range img.blobs {
		req, _ := http.NewRequest(http.MethodPost, tg.s.URL("/v2/"+repo+"/blobs/uploads/?mount="+d+"&from=cmp/manifests"), nil)
		if _, _, err := benchCall(tg.client, req, http.StatusCreated, nil); err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
	}
	compareRate(t, tg, 32, n, func(i int) error {
		return comparePutManifest(tg, repo, fmt.Sprintf("v%05d", i), img.manifest)
	})
}

// walkList reads a listing page by page, following Link, and checks that
// it holds at least want entries under field.
func walkList(tg *compareTarget, path, field string, want int) error {
	got := 0
	for path != "" {
		req, _ := http.NewRequest(http.MethodGet, tg.s.URL(path), nil)
		var body bytes.Buffer
		h, _, err := benchCall(tg.client, req, http.StatusOK, &body)
		if err != nil {
			return err
		}
		got += strings.Count(body.String(), `",`) + 1 // entries, without decoding: cheap for the client
		path = ""
		if link := h.Get("Link"); link != "" {
			if s, _, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">"); ok {
				path = s
			}
		}
	}
	if got < want {
		return fmt.Errorf("listing has about %d %s, want at least %d", got, field, want)
	}
	return nil
}

// pushWholeImage pushes a config, two 4 KiB layers (POST then PUT each) and
// a manifest tagged i<seed>.
func pushWholeImage(tg *compareTarget, repo string, seed uint64) (ackedImage, error) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":` + strconv.FormatUint(seed, 10) + `}`)
	layers := [][]byte{seededBytes(seed, 4<<10), seededBytes(seed+1<<20, 4<<10)}
	img := ackedImage{repo: repo, tag: "i" + strconv.FormatUint(seed, 10), blobs: map[string][]byte{}}
	var descs []descriptor
	for i, blob := range append([][]byte{config}, layers...) {
		d := sha256Digest(blob)
		img.blobs[d] = blob
		if err := benchPush(tg.client, tg.s, repo, d, bytes.NewReader(blob), false); err != nil {
			return img, err
		}
		mt := mediaTypeOCILayer
		if i == 0 {
			mt = mediaTypeOCIConfig
		}
		descs = append(descs, descriptor{MediaType: mt, Digest: d, Size: int64(len(blob))})
	}
	img.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":%s,"layers":[%s,%s]}`,
		mediaTypeOCIManifest, descJSON(descs[0]), descJSON(descs[1]), descJSON(descs[2])))
	return img, comparePutManifest(tg, repo, img.tag, img.manifest)
}

func descJSON(d descriptor) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, d.MediaType, d.Digest, d.Size)
}

// pullWholeImage GETs the manifest by tag and every blob, checking digests.
func pullWholeImage(tg *compareTarget, repo string, img ackedImage) error {
	req, _ := http.NewRequest(http.MethodGet, tg.s.URL("/v2/"+repo+"/manifests/"+img.tag), nil)
	req.Header.Set("Accept", mediaTypeOCIManifest)
	var body bytes.Buffer
	if _, _, err := benchCall(tg.client, req, http.StatusOK, &body); err != nil {
		return err
	}
	if !bytes.Equal(body.Bytes(), img.manifest) {
		return fmt.Errorf("manifest %s:%s differs from the one pushed", repo, img.tag)
	}
	for d, blob := range img.blobs {
		if err := benchPull(tg.client, tg.s, repo, d, int64(len(blob)), true); err != nil {
			return err
		}
	}
	return nil
}
