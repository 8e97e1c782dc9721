package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestMirror_Numbers measures, in one run against one upstream
// (distribution's registry), a direct pull, a cold pull through berth and
// a warm pull from its cache, each reading every layer whole, over three
// images (the machine is shared, so one round says little). It logs the
// rates for docs/mirror.md; it asserts only that each pull is whole.
// BERTH_MIRROR_NUMBERS_MIB sets each image's size (default 64 MiB, in
// layers of 16 MiB): CPU time is counted in ticks of 10 ms, so a larger
// image gives CPU per GiB more digits.
//
// BERTH_MIRROR_NUMBERS_LINK_MIBS puts the upstream behind a link of that
// many MiB/s (a relay on loopback paced like one shared link), used alike
// by the direct pull and by berth's mirror: a mirror's upstream is a WAN
// or LAN link in practice, whereas unthrottled on one small machine the
// three processes share its cores and the ratio measures CPU contention.
func TestMirror_Numbers(t *testing.T) {
	size := int64(64)
	if v := os.Getenv("BERTH_MIRROR_NUMBERS_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 16 {
			t.Fatalf("BERTH_MIRROR_NUMBERS_MIB=%q: want a number of MiB, at least 16", v)
		}
		size = n
	}
	up := startDistribution(t, "")
	upstream := up.Addr
	if v := os.Getenv("BERTH_MIRROR_NUMBERS_LINK_MIBS"); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 {
			t.Fatalf("BERTH_MIRROR_NUMBERS_LINK_MIBS=%q: want a positive number of MiB/s", v)
		}
		upstream = startLinkRelay(t, up.Addr, n*(1<<20))
		t.Logf("upstream behind a link of %g MiB/s", n)
	}
	b := startServer(t, "")
	addMirror(t, b, "up", nil, "--url", "http://"+upstream, "--tag-ttl", "1h")
	// rate pulls ref and returns its MiB/s and the CPU time per GiB of
	// all three processes (berth, the upstream, this one: the client).
	rate := func(what string, ref name.Reference, want fmt.Stringer) (float64, time.Duration) {
		pids := []int{b.cmd.Process.Pid, up.cmd.Process.Pid, os.Getpid()}
		cpu := make([]time.Duration, len(pids))
		for i, pid := range pids {
			cpu[i] = cpuTime(pid)
		}
		start := time.Now()
		got, n, err := pullAll(t.Context(), ref, remoteOptions(t)...)
		took := time.Since(start)
		var total time.Duration
		for i, pid := range pids {
			cpu[i] = cpuTime(pid) - cpu[i]
			total += cpu[i]
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if d, _ := got.Digest(); d.String() != want.String() {
			t.Fatalf("%s: pulled %s, want %s", what, d, want)
		}
		mbs := float64(n) / (1 << 20) / took.Seconds()
		gib := float64(n) / (1 << 30)
		perGiB := func(d time.Duration) time.Duration {
			return time.Duration(float64(d) / gib).Round(10 * time.Millisecond)
		}
		t.Logf("%-12s %6.1f MiB in %v: %7.1f MiB/s; CPU per GiB: berth %v, upstream %v, client %v", what, float64(n)/(1<<20), took.Round(time.Millisecond), mbs,
			perGiB(cpu[0]), perGiB(cpu[1]), perGiB(cpu[2]))
		return mbs, perGiB(total)
	}
	var ratios []float64
	for i := range 3 {
		repo := fmt.Sprintf("bench/img%d:1", i)
		img := pushUpstream(t, up.Addr, repo, 16<<20, size/16)
		want, _ := img.Digest()
		direct, err := name.ParseReference(upstream+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		d, dCPU := rate("direct", direct, want)
		cold, cCPU := rate("cold mirror", b.ref(t, "up/"+repo), want)
		warm, _ := rate("warm mirror", b.ref(t, "up/"+repo), want)
		ratios = append(ratios, cold/d)
		// On a machine whose cores are all busy, a pull's rate follows
		// the CPU time it costs all three processes.
		t.Logf("round %d: cold through berth is %.0f%% of direct; warm is %.1fx direct; CPU of all processes per GiB: direct %v, cold %v (%.0f%%: the cold rate when CPU-bound)",
			i+1, 100*cold/d, warm/d, dCPU, cCPU, 100*float64(dCPU)/float64(cCPU))
	}
	sort.Float64s(ratios)
	t.Logf("median cold/direct: %.0f%%", 100*ratios[1])
}

// startLinkRelay relays loopback connections to addr, pacing the bytes
// sent back from addr as one link of bytesPerSecond shared by every
// connection, and returns the relay's address.
func startLinkRelay(t *testing.T, addr string, bytesPerSecond float64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := &pacedLink{rate: bytesPerSecond}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					io.Copy(u, c)
					u.(*net.TCPConn).CloseWrite()
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						l.wait(n)
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// pacedLink is a link's capacity, a token bucket: wait(n) returns when n
// more bytes fit into the rate. A link idle for longer than linkBurst
// starts afresh; within it, time slept too long is made up, so the
// average rate holds although sleeps overshoot.
type pacedLink struct {
	mu   sync.Mutex
	rate float64   // bytes per second
	next time.Time // when the bytes sent so far fit into the rate
}

const linkBurst = 50 * time.Millisecond

func (l *pacedLink) wait(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now.Add(-linkBurst)) {
		l.next = now.Add(-linkBurst)
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	d := l.next.Sub(now)
	l.mu.Unlock()
	if d > time.Millisecond {
		time.Sleep(d)
	}
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
