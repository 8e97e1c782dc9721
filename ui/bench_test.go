package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/server"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
	"github.com/berth-registry/berth/ui"
)

// The store of issue 11's speed target: 10,000 repositories, one of them
// with 100,000 tags. Filling it takes a while, so it is made once per run.
const (
	benchRepos = 10000
	benchTags  = 100000
	bigRepo    = "big/repo"
)

var (
	benchDir   string // removed by TestMain
	benchOnce  sync.Once
	benchStore *store.Store
	benchErr   error
)

// fillBench builds the store in dir: one small image linked into every
// repository, tagged v0 in each and v0 … v99999 in bigRepo.
func fillBench(b *testing.B) *store.Store {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-ui-bench-")
		if err != nil {
			benchErr = err
			return
		}
		benchDir = dir
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			benchErr = err
			return
		}
		start := time.Now()
		img := storetest.PushImage(b, st, bigRepo, "v0", nil, "layer")
		d := storetest.Digest(img)
		body := mustManifest(b, st, bigRepo, d)
		m, _ := store.ParseManifest(store.MediaTypeOCIManifest, body)
		for t := 1; t < benchTags; t += 5000 {
			var tags []string
			for i := t; i < min(t+5000, benchTags); i++ {
				tags = append(tags, fmt.Sprintf("v%d", i))
			}
			if _, _, err := st.PutManifest(bigRepo, store.Reference{Digest: d}, tags, store.MediaTypeOCIManifest, body); err != nil {
				benchErr = err
				return
			}
		}
		for i := 1; i < benchRepos; i++ {
			repo := fmt.Sprintf("team%02d/app%05d", i%100, i)
			for _, blob := range m.Blobs {
				if _, err := st.MountBlob(repo, bigRepo, blob); err != nil {
					benchErr = err
					return
				}
			}
			if _, _, err := st.PutManifest(repo, store.Reference{Tag: "v0"}, nil, store.MediaTypeOCIManifest, body); err != nil {
				benchErr = err
				return
			}
		}
		b.Logf("filled %d repositories and %d tags in %s", benchRepos, benchTags, time.Since(start).Round(time.Second))
		benchStore = st
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkUIPages renders the pages of the speed target in process, as an
// anonymous visitor under --anonymous-pull (the pull filter runs on every
// name), and reports the 95th percentile of the server time and the page
// weight.
func BenchmarkUIPages(b *testing.B) {
	st := fillBench(b)
	svc, err := auth.NewService(st, auth.Options{Issuer: "berth", TTL: time.Minute, AnonymousPull: true})
	if err != nil {
		b.Fatal(err)
	}
	web, err := ui.New(ui.Options{Store: st, Auth: svc, Admin: &admin.Env{Store: st}})
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(st, server.Config{Auth: svc, UI: web, Logger: discardLogger()})
	// The admin page, under --auth none where every visitor is an admin: it
	// runs du over every repository.
	open, err := ui.New(ui.Options{Store: st, Admin: &admin.Env{Store: st}})
	if err != nil {
		b.Fatal(err)
	}
	adminSrv := server.New(st, server.Config{UI: open, Logger: discardLogger()})
	for _, bc := range []struct {
		name, path string
		srv        *server.Server
	}{
		{"repositories-10k", "/ui/", srv},
		{"repositories-10k-page-100", "/ui/?after=team99/app04999", srv},
		{"repositories-10k-search-miss", "/ui/?q=nothing-matches", srv},
		{"tags-100k", "/ui/repo?name=" + bigRepo, srv},
		{"tags-100k-last-page", "/ui/repo?name=" + bigRepo + "&after=v99970", srv},
		{"image", "/ui/image?name=" + bigRepo + "&digest=" + string(mustTag(b, st, bigRepo, "v0")), srv},
		{"repositories-10k-by-size", "/ui/?sort=size", srv},
		{"repositories-10k-by-push-page-100", "/ui/?sort=pushed&page=100", srv},
		{"repositories-10k-by-size-search", "/ui/?sort=size&q=team42/", srv},
		{"admin-10k", "/ui/admin", adminSrv},
		{"admin-storage-10k", "/ui/admin/storage", adminSrv},
		{"admin-gc", "/ui/admin/gc", adminSrv},
		{"admin-backups", "/ui/admin/backups", adminSrv},
		{"admin-rules", "/ui/admin/rules", adminSrv},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var times []time.Duration
			var size int64
			for b.Loop() {
				start := time.Now()
				resp, err := bc.srv.App().Test(httptest.NewRequest(http.MethodGet, bc.path, nil), -1)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				size = int64(len(body))
				times = append(times, time.Since(start))
				if resp.StatusCode != 200 {
					b.Fatalf("%s: status %d", bc.path, resp.StatusCode)
				}
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			p95 := times[len(times)*95/100]
			b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(size)/1024, "page-KiB")
		})
	}
}

// BenchmarkUISummaries times what the kept repository summaries cost to
// compute once (summaries.go): the background work behind the pages sorted
// by size or push and the storage page, redone at most every 10 seconds
// while the store changes.
func BenchmarkUISummaries(b *testing.B) {
	st := fillBench(b)
	for b.Loop() {
		sums, _, err := st.Summaries()
		if err != nil {
			b.Fatal(err)
		}
		if len(sums) != benchRepos {
			b.Fatalf("%d summaries, want %d", len(sums), benchRepos)
		}
	}
}

func mustTag(b *testing.B, st *store.Store, repo, tag string) store.Digest {
	m, err := st.Manifest(repo, store.Reference{Tag: tag})
	if err != nil {
		b.Fatal(err)
	}
	return m.Digest
}
