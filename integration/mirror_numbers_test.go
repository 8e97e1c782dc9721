package integration

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestMirror_Numbers measures, in one run against one upstream
// (distribution's registry), a direct pull, a cold pull through berth and
// a warm pull from its cache, each reading every layer whole, over three
// images (the machine is shared, so one round says little). It logs the
// rates for docs/mirror.md; it asserts only that each pull is whole.
func TestMirror_Numbers(t *testing.T) {
	up := startDistribution(t, "")
	b := startServer(t, "")
	addMirror(t, b, "up", nil, "--url", "http://"+up.Addr, "--tag-ttl", "1h")
	rate := func(what string, ref name.Reference, want fmt.Stringer) float64 {
		start := time.Now()
		got, n, err := pullAll(t.Context(), ref, remoteOptions(t)...)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d, _ := got.Digest(); d.String() != want.String() {
			t.Fatalf("%s: pulled %s, want %s", what, d, want)
		}
		mbs := float64(n) / (1 << 20) / took.Seconds()
		t.Logf("%-12s %6.1f MiB in %v: %7.1f MiB/s", what, float64(n)/(1<<20), took.Round(time.Millisecond), mbs)
		return mbs
	}
	var ratios []float64
	for i := range 3 {
		repo := fmt.Sprintf("bench/img%d:1", i)
		img := pushUpstream(t, up.Addr, repo, 16<<20, 4)
		want, _ := img.Digest()
		direct, err := name.ParseReference(up.Addr+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		d := rate("direct", direct, want)
		cold := rate("cold mirror", b.ref(t, "up/"+repo), want)
		warm := rate("warm mirror", b.ref(t, "up/"+repo), want)
		ratios = append(ratios, cold/d)
		t.Logf("round %d: cold through berth is %.0f%% of direct; warm is %.1fx direct", i+1, 100*cold/d, warm/d)
	}
	sort.Float64s(ratios)
	t.Logf("median cold/direct: %.0f%%", 100*ratios[1])
}
