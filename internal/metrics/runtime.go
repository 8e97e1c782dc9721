package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runtimeCollector writes the Go runtime's and the process's series under
// the names the Prometheus client library uses (go_*, process_*), so
// dashboards built on them keep working: goroutines, threads, memory
// statistics, GC pauses, CPU time, resident memory, open files.
type runtimeCollector struct{}

func (runtimeCollector) Collect(add func(Family)) {
	add(Family{Name: "go_info", Help: "Information about the Go environment.", Kind: KindGauge,
		Samples: []Sample{{Labels: []Label{{"version", runtime.Version()}}, Value: 1}}})
	add(One("go_goroutines", "Number of goroutines that currently exist.", KindGauge, float64(runtime.NumGoroutine())))
	threads, _ := runtime.ThreadCreateProfile(nil)
	add(One("go_threads", "Number of OS threads created.", KindGauge, float64(threads)))
	add(One("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", KindGauge, float64(runtime.GOMAXPROCS(0))))
	add(One("go_gc_gogc_percent", "Heap size target percentage configured by the user (GOGC), otherwise 100; -1 when the collector is off.", KindGauge, gogc()))
	add(One("go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT); math.MaxInt64 when none.", KindGauge, float64(debug.SetMemoryLimit(-1))))

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	pauses := Family{Name: "go_gc_duration_seconds", Help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", Kind: KindSummary}
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		pauses.Samples = append(pauses.Samples, Sample{Labels: []Label{{"quantile", q}}, Value: gc.PauseQuantiles[i].Seconds()})
	}
	pauses.Samples = append(pauses.Samples, Sample{Suffix: "_sum", Value: gc.PauseTotal.Seconds()}, Sample{Suffix: "_count", Value: float64(gc.NumGC)})
	add(pauses)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, m := range []struct {
		name, help string
		counter    bool
		v          uint64
	}{
		{"alloc_bytes", "Number of bytes allocated in heap and currently in use.", false, ms.Alloc},
		{"alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", true, ms.TotalAlloc},
		{"sys_bytes", "Number of bytes obtained from system.", false, ms.Sys},
		{"mallocs_total", "Total number of heap objects allocated.", true, ms.Mallocs},
		{"frees_total", "Total number of heap objects frees.", true, ms.Frees},
		{"heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", false, ms.HeapAlloc},
		{"heap_sys_bytes", "Number of heap bytes obtained from system.", false, ms.HeapSys},
		{"heap_idle_bytes", "Number of heap bytes waiting to be used.", false, ms.HeapIdle},
		{"heap_inuse_bytes", "Number of heap bytes that are in use.", false, ms.HeapInuse},
		{"heap_released_bytes", "Number of heap bytes released to OS.", false, ms.HeapReleased},
		{"heap_objects", "Number of currently allocated objects.", false, ms.HeapObjects},
		{"stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", false, ms.StackInuse},
		{"stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", false, ms.StackSys},
		{"mspan_inuse_bytes", "Number of bytes in use by mspan structures.", false, ms.MSpanInuse},
		{"mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system.", false, ms.MSpanSys},
		{"mcache_inuse_bytes", "Number of bytes in use by mcache structures.", false, ms.MCacheInuse},
		{"mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system.", false, ms.MCacheSys},
		{"buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table.", false, ms.BuckHashSys},
		{"gc_sys_bytes", "Number of bytes used for garbage collection system metadata.", false, ms.GCSys},
		{"other_sys_bytes", "Number of bytes used for other system allocations.", false, ms.OtherSys},
		{"next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", false, ms.NextGC},
	} {
		kind := KindGauge
		if m.counter {
			kind = KindCounter
		}
		add(One("go_memstats_"+m.name, m.help, kind, float64(m.v)))
	}
	add(One("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", KindGauge, float64(ms.LastGC)/1e9))
	processFamilies(add)
}

// processFamilies adds the process_* series from /proc/self (Linux; on
// another system the ones it cannot read are left out).
func processFamilies(add func(Family)) {
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The command name, in parentheses, may hold spaces: fields start
		// after the last ')'. Field 14 (utime) is rest[11].
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			f := strings.Fields(string(stat[i+1:]))
			if len(f) > 21 {
				utime, _ := strconv.ParseFloat(f[11], 64)
				stime, _ := strconv.ParseFloat(f[12], 64)
				start, _ := strconv.ParseFloat(f[19], 64)
				vsize, _ := strconv.ParseFloat(f[20], 64)
				rss, _ := strconv.ParseFloat(f[21], 64)
				// USER_HZ is 100 on every Linux architecture Go supports,
				// which is what the Prometheus client assumes too.
				const hz = 100
				add(One("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", KindCounter, (utime+stime)/hz))
				add(One("process_virtual_memory_bytes", "Virtual memory size in bytes.", KindGauge, vsize))
				add(One("process_resident_memory_bytes", "Resident memory size in bytes.", KindGauge, rss*float64(os.Getpagesize())))
				if boot := bootTime(); boot > 0 {
					add(One("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", KindGauge, boot+start/hz))
				}
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		add(One("process_open_fds", "Number of open file descriptors.", KindGauge, float64(len(fds))))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		add(One("process_max_fds", "Maximum number of open file descriptors.", KindGauge, float64(rl.Cur)))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil {
		add(One("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", KindGauge, float64(rl.Cur)))
	}
	if in, out, ok := networkBytes(); ok {
		add(One("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", KindCounter, in))
		add(One("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", KindCounter, out))
	}
}

// gogc is the GOGC setting the runtime read at start (berth never changes
// it in process): 100 by default, -1 for off. Reading it from the
// runtime/metrics package instead would link that package and run its
// initialisation in every process for one number.
func gogc() float64 {
	switch v := os.Getenv("GOGC"); {
	case v == "":
		return 100
	case v == "off":
		return -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return 100 // the runtime ignores a GOGC it cannot read
		}
		return float64(n)
	}
}

// networkBytes reads IpExt's InOctets and OutOctets from
// /proc/self/net/netstat, as the Prometheus client does: the counts of the
// process's network namespace.
func networkBytes() (in, out float64, ok bool) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "IpExt:" || len(values) != len(names) || values[0] != "IpExt:" {
			continue
		}
		var gotIn, gotOut bool
		for j, n := range names {
			switch n {
			case "InOctets":
				in, err = strconv.ParseFloat(values[j], 64)
				gotIn = err == nil
			case "OutOctets":
				out, err = strconv.ParseFloat(values[j], 64)
				gotOut = err == nil
			}
		}
		return in, out, gotIn && gotOut
	}
	return 0, 0, false
}

// bootTime is the system's boot time (btime in /proc/stat), 0 when unknown.
func bootTime() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
