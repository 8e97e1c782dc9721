package metrics

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// vec is a family of series of one kind, one per combination of label
// values, created on first use.
type vec[T any] struct {
	opts   Opts
	labels []string
	order  []int // label positions sorted by name, the order they are written in
	newT   func() *T

	mu     sync.RWMutex
	series map[string]*entry[T]
}

type entry[T any] struct {
	values []string
	t      *T
}

func newVec[T any](o Opts, labels []string, newT func() *T) *vec[T] {
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return labels[order[i]] < labels[order[j]] })
	return &vec[T]{opts: o, labels: labels, order: order, newT: newT, series: map[string]*entry[T]{}}
}

// with returns the series for values, creating it. The lookup allocates
// nothing for a series that exists: the key is built on the stack and
// map lookups by string(bytes) do not copy.
func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labels) {
		// values is not passed on: it would escape, and every call would
		// allocate it.
		panic(fmt.Sprintf("metrics: %s has %d labels %v, got %d values", v.opts.Name, len(v.labels), v.labels, len(values)))
	}
	var buf [128]byte
	key := buf[:0]
	for _, s := range values {
		key = append(key, s...)
		key = append(key, 0xff)
	}
	v.mu.RLock()
	e, ok := v.series[string(key)]
	v.mu.RUnlock()
	if ok {
		return e.t
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.series[string(key)]; ok {
		return e.t
	}
	// Label values may be views of a request's buffers: keep copies.
	kept := make([]string, len(values))
	for i, s := range values {
		kept[i] = strings.Clone(s)
	}
	e = &entry[T]{values: kept, t: v.newT()}
	v.series[string(key)] = e
	return e.t
}

// each calls f for every series with its labels sorted by name (as the
// Prometheus client writes them), the series sorted by those values.
func (v *vec[T]) each(f func(labels []Label, t *T)) {
	v.mu.RLock()
	es := make([]*entry[T], 0, len(v.series))
	for _, e := range v.series {
		es = append(es, e)
	}
	v.mu.RUnlock()
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i].values, es[j].values
		for _, k := range v.order {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
	for _, e := range es {
		ls := make([]Label, len(v.labels))
		for i, k := range v.order {
			ls[i] = Label{v.labels[k], e.values[k]}
		}
		f(ls, e.t)
	}
}

// CounterVec is a counter per combination of label values.
type CounterVec struct{ v *vec[Counter] }

// NewCounterVec returns a counter family with the given label names.
func NewCounterVec(o Opts, labels []string) *CounterVec {
	return &CounterVec{newVec(o, labels, func() *Counter { return &Counter{opts: o} })}
}

// WithLabelValues returns the counter for values (one per label name, in
// order), creating it at 0; it panics on a wrong number of values.
func (c *CounterVec) WithLabelValues(values ...string) *Counter { return c.v.with(values) }

// Collect implements Collector.
func (c *CounterVec) Collect(add func(Family)) {
	f := Family{Name: c.v.opts.Name, Help: c.v.opts.Help, Kind: KindCounter}
	c.v.each(func(ls []Label, t *Counter) { f.Samples = append(f.Samples, Sample{Labels: ls, Value: t.Value()}) })
	add(f)
}

// GaugeVec is a gauge per combination of label values.
type GaugeVec struct{ v *vec[Gauge] }

// NewGaugeVec returns a gauge family with the given label names.
func NewGaugeVec(o Opts, labels []string) *GaugeVec {
	return &GaugeVec{newVec(o, labels, func() *Gauge { return &Gauge{opts: o} })}
}

// WithLabelValues returns the gauge for values, creating it at 0.
func (g *GaugeVec) WithLabelValues(values ...string) *Gauge { return g.v.with(values) }

// Collect implements Collector.
func (g *GaugeVec) Collect(add func(Family)) {
	f := Family{Name: g.v.opts.Name, Help: g.v.opts.Help, Kind: KindGauge}
	g.v.each(func(ls []Label, t *Gauge) { f.Samples = append(f.Samples, Sample{Labels: ls, Value: t.Value()}) })
	add(f)
}

// Histogram counts observations into buckets by upper bound.
type Histogram struct {
	bounds []float64 // ascending; +Inf is implied
	counts []value   // per bucket, not cumulative; the last is +Inf
	sum    value
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // the first bound >= v: buckets are le
	h.counts[i].add(1)
	h.sum.add(v)
}

// samples appends the bucket, sum and count lines for labels.
func (h *Histogram) samples(out []Sample, labels []Label) []Sample {
	var cum float64
	for i := range h.counts {
		cum += h.counts[i].load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = formatValue(h.bounds[i])
		}
		ls := append(append([]Label(nil), labels...), Label{"le", le})
		out = append(out, Sample{Suffix: "_bucket", Labels: ls, Value: cum})
	}
	return append(out, Sample{Suffix: "_sum", Labels: labels, Value: h.sum.load()}, Sample{Suffix: "_count", Labels: labels, Value: cum})
}

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct{ v *vec[Histogram] }

// NewHistogramVec returns a histogram family with the given buckets (upper
// bounds, ascending) and label names.
func NewHistogramVec(o Opts, buckets []float64, labels []string) *HistogramVec {
	if !sort.Float64sAreSorted(buckets) {
		panic("metrics: " + o.Name + ": buckets not ascending")
	}
	b := append([]float64(nil), buckets...)
	return &HistogramVec{newVec(o, labels, func() *Histogram {
		return &Histogram{bounds: b, counts: make([]value, len(b)+1)}
	})}
}

// WithLabelValues returns the histogram for values, creating it empty.
func (h *HistogramVec) WithLabelValues(values ...string) *Histogram { return h.v.with(values) }

// Collect implements Collector.
func (h *HistogramVec) Collect(add func(Family)) {
	f := Family{Name: h.v.opts.Name, Help: h.v.opts.Help, Kind: KindHistogram}
	h.v.each(func(ls []Label, t *Histogram) { f.Samples = t.samples(f.Samples, ls) })
	add(f)
}

// Func is a collector that computes its families at each scrape.
type Func func(add func(Family))

// Collect implements Collector.
func (f Func) Collect(add func(Family)) { f(add) }

// One returns a family of one unlabelled sample.
func One(name, help, kind string, v float64) Family {
	return Family{Name: name, Help: help, Kind: kind, Samples: []Sample{{Value: v}}}
}
