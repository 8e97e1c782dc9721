package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func write(t *testing.T, rs ...*Registry) string {
	t.Helper()
	var b strings.Builder
	if err := Write(&b, rs...); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWrite_TextFormat: families sorted by name, labels by name, series by
// their values, escaping, and histogram buckets cumulative with +Inf, as the
// Prometheus client writes them.
func TestWrite_TextFormat(t *testing.T) {
	r := NewRegistry()
	reqs := r.NewCounterVec(Opts{Name: "t_requests_total", Help: "Requests by route\nand code."}, []string{"route", "code"})
	reqs.WithLabelValues("blob", "200").Add(2)
	reqs.WithLabelValues("blob", "404").Inc()
	reqs.WithLabelValues("base", "200").Inc()
	r.NewGauge(Opts{Name: "t_open", Help: "Open."}).Set(-1.5)
	r.NewGaugeVec(Opts{Name: "t_info", Help: "Info."}, []string{"version"}).WithLabelValues(`a"b\c`).Set(1)
	h := NewHistogramVec(Opts{Name: "t_seconds", Help: "Time."}, []float64{0.1, 1}, []string{"method"})
	r.MustRegister(h)
	for _, v := range []float64{0.05, 0.1, 0.5, 7} {
		h.WithLabelValues("GET").Observe(v)
	}
	want := `# HELP t_info Info.
# TYPE t_info gauge
t_info{version="a\"b\\c"} 1
# HELP t_open Open.
# TYPE t_open gauge
t_open -1.5
# HELP t_requests_total Requests by route\nand code.
# TYPE t_requests_total counter
t_requests_total{code="200",route="base"} 1
t_requests_total{code="200",route="blob"} 2
t_requests_total{code="404",route="blob"} 1
# HELP t_seconds Time.
# TYPE t_seconds histogram
t_seconds_bucket{method="GET",le="0.1"} 2
t_seconds_bucket{method="GET",le="1"} 3
t_seconds_bucket{method="GET",le="+Inf"} 4
t_seconds_sum{method="GET"} 7.65
t_seconds_count{method="GET"} 4
`
	if got := write(t, r); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestVec_KeepsLabelCopies: a label value that is a view of a reused
// buffer (fasthttp's) is copied, so the series keeps its name.
func TestVec_KeepsLabelCopies(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec(Opts{Name: "t_total", Help: "T."}, []string{"m"})
	buf := []byte("GET")
	c.WithLabelValues(string(buf)).Inc()
	view := unsafeString(buf)
	c.WithLabelValues(view).Inc()
	copy(buf, "PUT")
	if got := write(t, r); !strings.Contains(got, `t_total{m="GET"} 2`) || strings.Contains(got, "PUT") {
		t.Errorf("got\n%s", got)
	}
}

func TestCounter_RefusesDecrease(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Add(-1) on a counter did not panic")
		}
	}()
	NewCounter(Opts{Name: "t"}).Add(-1)
}

func TestGather_Errors(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	a.NewCounter(Opts{Name: "t_same", Help: "A."})
	b.NewGauge(Opts{Name: "t_same", Help: "B."})
	if _, err := Gather(a, b); err == nil || !strings.Contains(err.Error(), "t_same") {
		t.Errorf("two families named t_same: err %v", err)
	}
	failing := NewRegistry()
	boom := errors.New("store closed")
	failing.MustRegister(Func(func(add func(Family)) { add(Family{Name: "t_store", Err: boom}) }))
	if _, err := Gather(failing); !errors.Is(err, boom) {
		t.Errorf("a collector's error: got %v", err)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0"}, {1, "1"}, {0.25, "0.25"}, {1e6, "1e+06"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"}} {
		if got := formatValue(tc.in); got != tc.want {
			t.Errorf("formatValue(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDefault_RuntimeSeries: the process registry carries the go_* and
// process_* series dashboards built on the Prometheus client expect.
func TestDefault_RuntimeSeries(t *testing.T) {
	page := write(t, Default)
	for _, s := range []string{"go_goroutines ", "go_info{version=\"go", "go_memstats_heap_inuse_bytes ", "go_gc_duration_seconds_count ",
		"process_resident_memory_bytes ", "process_open_fds ", "process_cpu_seconds_total ", "process_start_time_seconds "} {
		if !strings.Contains(page, "\n"+s) {
			t.Errorf("no %q in\n%s", s, page)
		}
	}
}

// BenchmarkCounterVec_Inc is the per-request cost of counting in a
// labelled family that has the series already.
func BenchmarkCounterVec_Inc(b *testing.B) {
	c := NewCounterVec(Opts{Name: "t_total"}, []string{"route", "method", "code"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.WithLabelValues("manifest", "GET", "200").Inc()
		}
	})
}
