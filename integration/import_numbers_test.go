package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berth-registry/berth/store"
)

// TestImport_Numbers measures `berth import registry2` in link mode on a
// registry:2 tree written straight to disk: BERTH_IMPORT_BENCH_MANIFESTS
// Docker schema 2 manifests (10,000 for the figure in docs/import.md), each
// with a config and nine 1 KiB layers of its own, so ten blobs per
// manifest, in repositories of 100 manifests, each manifest tagged. It logs
// the time and peak RSS of the import and of a second, idempotent run; it
// asserts only that every manifest was imported. Skipped unless the
// variable is set:
//
//	BERTH_IMPORT_BENCH_MANIFESTS=10000 go test ./integration/ -run TestImport_Numbers -v -timeout 30m
func TestImport_Numbers(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("BERTH_IMPORT_BENCH_MANIFESTS"))
	if err != nil || n <= 0 {
		t.Skip("set BERTH_IMPORT_BENCH_MANIFESTS (say 10000) to measure an import of a large registry:2 tree")
	}
	work := t.TempDir()
	root := filepath.Join(work, "registry")
	start := time.Now()
	blobs := writeRegistry2Tree(t, root, n)
	t.Logf("generated %d manifests and %d blobs in %s", n, blobs, time.Since(start).Round(time.Millisecond))
	data := filepath.Join(work, "data")
	for _, run := range []string{"first import", "second import (everything stored)"} {
		// No dirty pages at the start: a real source has long been on
		// disk, and the writeback of the generated tree is not the import's.
		if err := exec.Command("sync").Run(); err != nil {
			t.Fatal(err)
		}
		r := runMeasured(t, "berth import registry2, link mode: "+run, 0, "",
			berthBin, "import", "registry2", root, "--data", data)
		t.Logf("%s: %s, peak RSS %d MiB", r.name, r.took.Round(time.Millisecond), r.rss>>20)
	}
	st, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	manifests := 0
	if err := st.Records(func(bucket string, _, _ []byte) error {
		if bucket == "manifests" {
			manifests++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if manifests != n {
		t.Errorf("%d manifests imported, want %d", manifests, n)
	}
}

// writeRegistry2Tree writes n manifests in distribution's layout under
// root, ten blobs each, and returns the number of blobs.
func writeRegistry2Tree(t *testing.T, root string, n int) int {
	t.Helper()
	v2 := filepath.Join(root, "docker", "registry", "v2")
	writeBlob := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		dir := filepath.Join(v2, "blobs", "sha256", h[:2], h)
		mustWrite(t, filepath.Join(dir, "data"), b)
		return "sha256:" + h, len(b)
	}
	link := func(path, d string) { mustWrite(t, path, []byte(d)) }
	blobs := 0
	layer := make([]byte, 1024)
	for i := range n {
		repo := filepath.Join(v2, "repositories", fmt.Sprintf("bench/r%03d", i/100))
		type desc struct {
			MediaType string `json:"mediaType"`
			Size      int    `json:"size"`
			Digest    string `json:"digest"`
		}
		cfgDigest, cfgSize := writeBlob([]byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":%d}`, i)))
		m := struct {
			SchemaVersion int    `json:"schemaVersion"`
			MediaType     string `json:"mediaType"`
			Config        desc   `json:"config"`
			Layers        []desc `json:"layers"`
		}{2, "application/vnd.docker.distribution.manifest.v2+json",
			desc{"application/vnd.docker.container.image.v1+json", cfgSize, cfgDigest}, nil}
		ds := []string{cfgDigest}
		for j := range 9 {
			copy(layer, fmt.Sprintf("layer %d of manifest %d", j, i))
			d, size := writeBlob(layer)
			m.Layers = append(m.Layers, desc{"application/vnd.docker.image.rootfs.diff.tar.gzip", size, d})
			ds = append(ds, d)
		}
		for _, d := range ds {
			link(filepath.Join(repo, "_layers", "sha256", d[7:], "link"), d)
		}
		blobs += len(ds)
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		md, _ := writeBlob(body)
		link(filepath.Join(repo, "_manifests", "revisions", "sha256", md[7:], "link"), md)
		link(filepath.Join(repo, "_manifests", "tags", fmt.Sprintf("v%d", i), "current", "link"), md)
	}
	return blobs
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
