// Package metrics keeps the server's counters, gauges and histograms and
// writes them in Prometheus' text exposition format (version 0.0.4), the
// format every Prometheus scrapes. It stands in for the Prometheus client
// library, which linked protobuf, procfs and the client's model into the
// server binary and ran their package initialisation in every berth
// process (about 2 MiB of resident memory at start; issue 18); berth needs
// only the text format and a few instrument kinds.
//
// Instruments are safe for concurrent use. A Registry writes every family
// sorted by name and every series sorted by its label values, so a scrape
// reads the same from one call to the next.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Kinds of family, as the # TYPE line names them.
const (
	KindCounter   = "counter"
	KindGauge     = "gauge"
	KindHistogram = "histogram"
	KindSummary   = "summary"
)

// Family is one metric family at a scrape: its samples in the order they
// are to be written. A collector that cannot read its source yields a
// Family with Err set, which fails the scrape (Prometheus then marks the
// target down rather than graphing a silent gap).
type Family struct {
	Name, Help, Kind string
	Samples          []Sample
	Err              error
}

// Sample is one line of a family: Suffix ("_bucket", "_sum", "_count" or
// empty) follows the family's name.
type Sample struct {
	Suffix string
	Labels []Label
	Value  float64
}

// Label is a label's name and value.
type Label struct{ Name, Value string }

// Collector yields families at each scrape. Add may be called any number
// of times; a collector whose source fails logs and yields what it can.
type Collector interface {
	Collect(add func(Family))
}

// Opts name an instrument: Name is the family's name, Help its help text.
type Opts struct {
	Name, Help string
}

// Registry holds collectors and writes them. Create it with NewRegistry.
type Registry struct {
	mu         sync.Mutex
	collectors []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Default is the process's registry: packages that count on their own
// (admin's maintenance runs, webhook deliveries, the mirror) register here,
// beside the Go runtime and process series; a server's /metrics writes it
// after its own.
var Default = NewRegistry()

func init() { Default.MustRegister(runtimeCollector{}) }

// MustRegister adds collectors. Family names are not checked against each
// other here; Write refuses a name written twice.
func (r *Registry) MustRegister(cs ...Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, cs...)
}

// Gather returns the families of every registry in rs, sorted by name, with
// each family's samples in order. A family name that two collectors yield
// is an error (a programming error: two instruments of one name).
func Gather(rs ...*Registry) ([]Family, error) {
	var all []Family
	for _, r := range rs {
		r.mu.Lock()
		cs := append([]Collector(nil), r.collectors...)
		r.mu.Unlock()
		for _, c := range cs {
			var err error
			c.Collect(func(f Family) {
				if f.Err != nil && err == nil {
					err = fmt.Errorf("collect %s: %w", f.Name, f.Err)
				}
				all = append(all, f)
			})
			if err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for i := 1; i < len(all); i++ {
		if all[i].Name == all[i-1].Name {
			return nil, fmt.Errorf("metric family %s collected twice", all[i].Name)
		}
	}
	return all, nil
}

// Write writes the families of rs in the text format to b.
func Write(b *strings.Builder, rs ...*Registry) error {
	fams, err := Gather(rs...)
	if err != nil {
		return err
	}
	for _, f := range fams {
		if len(f.Samples) == 0 {
			continue
		}
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escape(f.Help, false), f.Name, f.Kind)
		for _, s := range f.Samples {
			b.WriteString(f.Name)
			b.WriteString(s.Suffix)
			if len(s.Labels) > 0 {
				b.WriteByte('{')
				for i, l := range s.Labels {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(l.Name)
					b.WriteString(`="`)
					b.WriteString(escape(l.Value, true))
					b.WriteByte('"')
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.Value))
			b.WriteByte('\n')
		}
	}
	return nil
}

// escape escapes backslashes and newlines, and in label values double
// quotes, as the text format wants.
func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	if quote {
		r = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	}
	return r.Replace(s)
}

// formatValue writes a value the way the Prometheus client does: the
// shortest representation, +Inf, -Inf, NaN.
func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return fmt.Sprint(v)
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

func (v *value) load() float64 { return math.Float64frombits(v.bits.Load()) }

// Counter is a value that only goes up.
type Counter struct {
	opts Opts
	v    value
}

// NewCounter returns a counter at 0, registered nowhere.
func NewCounter(o Opts) *Counter { return &Counter{opts: o} }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d, which must not be negative (it panics otherwise, as the
// Prometheus client does: a counter that goes down breaks rate()).
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic(errors.New("metrics: counter decreased"))
	}
	c.v.add(d)
}

// Value returns the count.
func (c *Counter) Value() float64 { return c.v.load() }

// Collect implements Collector.
func (c *Counter) Collect(add func(Family)) {
	add(Family{Name: c.opts.Name, Help: c.opts.Help, Kind: KindCounter, Samples: []Sample{{Value: c.v.load()}}})
}

// Gauge is a value that goes up and down.
type Gauge struct {
	opts Opts
	v    value
}

// NewGauge returns a gauge at 0, registered nowhere.
func NewGauge(o Opts) *Gauge { return &Gauge{opts: o} }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.v.bits.Store(math.Float64bits(v)) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.add(-1) }

// Add adds d.
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return g.v.load() }

// Collect implements Collector.
func (g *Gauge) Collect(add func(Family)) {
	add(Family{Name: g.opts.Name, Help: g.opts.Help, Kind: KindGauge, Samples: []Sample{{Value: g.v.load()}}})
}

// NewCounter returns a counter registered on r.
func (r *Registry) NewCounter(o Opts) *Counter {
	c := NewCounter(o)
	r.MustRegister(c)
	return c
}

// NewGauge returns a gauge registered on r.
func (r *Registry) NewGauge(o Opts) *Gauge {
	g := NewGauge(o)
	r.MustRegister(g)
	return g
}

// NewCounterVec returns a counter family registered on r.
func (r *Registry) NewCounterVec(o Opts, labels []string) *CounterVec {
	c := NewCounterVec(o, labels)
	r.MustRegister(c)
	return c
}

// NewGaugeVec returns a gauge family registered on r.
func (r *Registry) NewGaugeVec(o Opts, labels []string) *GaugeVec {
	g := NewGaugeVec(o, labels)
	r.MustRegister(g)
	return g
}
