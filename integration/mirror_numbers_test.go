package integration

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
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
		berthCPU, upCPU := cpuTime(b.cmd.Process.Pid), cpuTime(up.cmd.Process.Pid)
		got, n, err := pullAll(t.Context(), ref, remoteOptions(t)...)
		took := time.Since(start)
		berthCPU, upCPU = cpuTime(b.cmd.Process.Pid)-berthCPU, cpuTime(up.cmd.Process.Pid)-upCPU
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d, _ := got.Digest(); d.String() != want.String() {
			t.Fatalf("%s: pulled %s, want %s", what, d, want)
		}
		mbs := float64(n) / (1 << 20) / took.Seconds()
		gib := float64(n) / (1 << 30)
		t.Logf("%-12s %6.1f MiB in %v: %7.1f MiB/s; CPU per GiB: berth %v, upstream %v", what, float64(n)/(1<<20), took.Round(time.Millisecond), mbs,
			time.Duration(float64(berthCPU)/gib).Round(time.Millisecond), time.Duration(float64(upCPU)/gib).Round(time.Millisecond))
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

// cpuTime is the user and system CPU time process pid has used so far
// (/proc/<pid>/stat, in clock ticks of 10ms), or 0 where /proc is absent.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
