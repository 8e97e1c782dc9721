package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/store"
)

// TestRetention_Numbers measures `berth retention run --dry-run` and the
// run itself over BERTH_RETENTION_BENCH_TAGS tags (say 100000), in 100
// repositories, with a keep-last 10 rule: time and the process's peak RSS.
// It asserts only that the run removed what the dry run listed.
func TestRetention_Numbers(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("BERTH_RETENTION_BENCH_TAGS"))
	if err != nil || n < 100 {
		t.Skip("set BERTH_RETENTION_BENCH_TAGS (say 100000) to measure retention over that many tags")
	}
	data := t.TempDir()
	start := time.Now()
	fillRetention(t, data, 100, n/100)
	t.Logf("filled %d tags in 100 repositories in %s", n, time.Since(start).Round(time.Millisecond))
	if out, err := exec.Command(berthBin, "retention", "add", "bench", "--repos", "bench/**", "--keep-last", "10", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("retention add: %v\n%s", err, out)
	}
	measure := func(args ...string) string {
		cmd := exec.Command(berthBin, append(args, "--data", data)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("berth %s: %s, peak RSS %d MiB: %s", strings.Join(args, " "), took.Round(time.Millisecond), rss/1024, lines[len(lines)-1])
		return lines[len(lines)-1]
	}
	dry := measure("retention", "run", "--dry-run")
	run := measure("retention", "run")
	if want := strings.NewReplacer("would remove", "removed", "would free", "frees").Replace(dry); run != want {
		t.Fatalf("the run did other than its dry run:\n%s\n%s", dry, run)
	}
	measure("gc")
}

// fillRetention writes repos repositories of tags image manifests each,
// through the store with the server stopped, a repository per transaction.
func fillRetention(t *testing.T, dir string, repos, tags int) {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for r := range repos {
		repo := fmt.Sprintf("bench/app%03d", r)
		cfg := []byte(fmt.Sprintf(`{"repo":%q}`, repo))
		cfgD := store.DigestOf(store.SHA256, cfg)
		if _, err := st.PutBlob(repo, cfgD, int64(len(cfg)), strings.NewReader(string(cfg))); err != nil {
			t.Fatal(err)
		}
		ms := make([]store.ManifestImport, tags)
		for i := range ms {
			body, _ := json.Marshal(map[string]any{
				"schemaVersion": 2, "mediaType": mediaTypeOCIManifest,
				"config":      map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgD, "size": len(cfg)},
				"layers":      []any{},
				"annotations": map[string]string{"build": strconv.Itoa(i)},
			})
			ms[i] = store.ManifestImport{Digest: store.DigestOf(store.SHA256, body), MediaType: mediaTypeOCIManifest, Body: body, Tags: []string{fmt.Sprintf("build-%05d", i)}}
		}
		if _, err := st.ImportManifests(repo, ms); err != nil {
			t.Fatal(err)
		}
	}
}
