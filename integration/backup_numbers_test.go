package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/store"
)

// TestBackup_Numbers measures berth backup and restore on a store of
// BERTH_BACKUP_BENCH_GIB GiB of incompressible layers (like gzipped ones)
// against plain `tar | zstd -1` of the same directory, in the same run, and
// an incremental backup after one new 100 MiB layer. It logs time, MB/s and
// peak RSS; it asserts nothing. Skipped unless the variable is set:
//
//	BERTH_BACKUP_BENCH_GIB=5 go test ./integration/ -run TestBackup_Numbers -v -timeout 30m
func TestBackup_Numbers(t *testing.T) {
	gib, err := strconv.Atoi(os.Getenv("BERTH_BACKUP_BENCH_GIB"))
	if err != nil || gib <= 0 {
		t.Skip("set BERTH_BACKUP_BENCH_GIB (say 5) to measure backup and restore against tar | zstd -1")
	}
	fixtures.RequireTool(t, "zstd")
	fixtures.RequireTool(t, "tar")
	work := t.TempDir()
	data := filepath.Join(work, "data")
	size := fillBenchStore(t, data, int64(gib)<<30, 1)
	path := func(name string) string { return filepath.Join(work, name) }

	var rows []benchRow
	measure := func(name string, bytes int64, out string, args ...string) {
		t.Helper()
		// Each starts with no dirty pages: the writeback of what came
		// before is not charged to it.
		if err := exec.Command("sync").Run(); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, runMeasured(t, name, bytes, out, args...))
	}
	// berth syncs the backup file and every restored file; the plain
	// pipelines are measured as they are and with a sync at the end.
	tarZstd := "tar -C " + data + " -cf - . | zstd -1 -q -o "
	measure("tar | zstd -1", size, path("plain.tar.zst"), "bash", "-c", tarZstd+path("plain.tar.zst"))
	measure("tar | zstd -1, then sync the file", size, path("plain2.tar.zst"),
		"bash", "-c", tarZstd+path("plain2.tar.zst")+" && sync "+path("plain2.tar.zst"))
	measure("berth backup, server stopped", size, path("full.tar.zst"),
		berthBin, "backup", "--data", data, "--output", path("full.tar.zst"))
	os.Mkdir(path("untarred"), 0o755)
	measure("zstd -d | tar -x", size, "",
		"bash", "-c", "zstd -d -c "+path("plain.tar.zst")+" | tar -C "+path("untarred")+" -xf -")
	os.Mkdir(path("untarred2"), 0o755)
	measure("zstd -d | tar -x, then sync the filesystem", size, "",
		"bash", "-c", "zstd -d -c "+path("plain.tar.zst")+" | tar -C "+path("untarred2")+" -xf - && sync -f "+path("untarred2"))
	measure("berth restore", size, "",
		berthBin, "restore", "--data", path("restored"), "--input", path("full.tar.zst"))

	s := startServer(t, data)
	measure("berth backup, through the serving registry", size, path("hot.tar.zst"),
		berthBin, "backup", "--data", data, "--output", path("hot.tar.zst"))
	t.Logf("the server's peak RSS after the hot backup: %d MiB", procStatusKiB(t, s, "VmHWM")>>10)
	s.stop(t)

	fillBenchStore(t, data, 100<<20, 2)
	measure("berth backup --incremental-from, one new 100 MiB layer", 100<<20, path("inc.tar.zst"),
		berthBin, "backup", "--data", data, "--output", path("inc.tar.zst"), "--incremental-from", path("full.tar.zst"))

	var b strings.Builder
	fmt.Fprintf(&b, "store: %.2f GiB in %d-MiB layers\n", float64(size)/(1<<30), benchLayer>>20)
	fmt.Fprintf(&b, "%-55s %8s %9s %9s %10s\n", "", "seconds", "MB/s", "peak RSS", "output")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-55s %8.2f %9.0f %6d MiB %10s\n", r.name, r.took.Seconds(),
			float64(r.bytes)/1e6/r.took.Seconds(), r.rss>>20, r.output)
	}
	t.Log("\n" + b.String())
}

// benchLayer is the layer size of the benchmark store.
const benchLayer = 64 << 20

type benchRow struct {
	name   string
	bytes  int64
	took   time.Duration
	rss    int64 // bytes
	output string
}

// runMeasured runs args and returns its time and peak RSS (the largest of
// the process and the children it waited for: wait4's rusage).
func runMeasured(t *testing.T, name string, bytes int64, out string, args ...string) benchRow {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	row := benchRow{name: name, bytes: bytes, took: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		row.rss = ru.Maxrss << 10 // kilobytes on Linux
	}
	if fi, err := os.Stat(out); err == nil {
		row.output = fmt.Sprintf("%.0f MiB", float64(fi.Size())/(1<<20))
	}
	return row
}

// fillBenchStore adds total bytes of layers from seed to the stopped store
// in data, four layers and a config to an image, each image tagged, and
// returns the bytes added.
func fillBenchStore(t *testing.T, data string, total int64, seed uint64) int64 {
	t.Helper()
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	repo := fmt.Sprintf("bench/s%d", seed)
	var added int64
	var layers []map[string]any
	images := 0
	flush := func() {
		images++
		n := images
		config := fmt.Sprintf(`{"bench":%d,"image":%d}`, seed, n)
		cd := store.DigestOf(store.SHA256, []byte(config))
		if _, err := st.PutBlob(repo, cd, int64(len(config)), strings.NewReader(config)); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{
			"schemaVersion": 2, "mediaType": store.MediaTypeOCIManifest,
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
			"layers": layers,
		})
		ref := store.Reference{Tag: fmt.Sprintf("v%d", n)}
		if _, _, err := st.PutManifest(repo, ref, nil, store.MediaTypeOCIManifest, body); err != nil {
			t.Fatal(err)
		}
		layers = nil
	}
	for i := 0; added < total; i++ {
		size := min(int64(benchLayer), total-added)
		layerSeed := seed<<32 | uint64(i)
		h, n, err := hashSeeded(layerSeed, size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutBlob(repo, h, n, seededReader(layerSeed, size)); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": h, "size": n})
		added += n
		if len(layers) == 4 {
			flush()
		}
	}
	if len(layers) > 0 {
		flush()
	}
	return added
}

// hashSeeded returns the digest of seededReader(seed, size).
func hashSeeded(seed uint64, size int64) (store.Digest, int64, error) {
	h := store.NewHash(store.SHA256)
	n, err := io.Copy(h, seededReader(seed, size))
	return store.Digest(fmt.Sprintf("sha256:%x", h.Sum(nil))), n, err
}
