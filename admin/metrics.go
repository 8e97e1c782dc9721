package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Maintenance runs are counted on prometheus.DefaultRegisterer, the
// process's registry: the server's /metrics serves it next to its own, so
// admin and server share no package for metrics and neither imports the
// other. In the server process that counts every run, whether the
// schedule, the control socket or the CLI asked for it; a command that
// runs in the CLI's own process counts there and is forgotten with it.

// countedOperations are the commands whose runs are counted.
var countedOperations = map[string]bool{"gc": true, "backup": true, "verify": true, "retention": true}

var (
	maintenanceRuns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_maintenance_runs_total",
		Help: "Runs of gc, retention, backup and verify in this process, by operation and result (ok or error).",
	}, []string{"operation", "result"})
	maintenanceLastSuccess = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "berth_maintenance_last_success_timestamp_seconds",
		Help: "When gc, backup or verify last succeeded in this process, as a Unix time; absent until then.",
	}, []string{"operation"})
)

func init() {
	// Zero series from the start, so that rate() and alerts see the first
	// run as an increase.
	for op := range countedOperations {
		maintenanceRuns.WithLabelValues(op, "ok")
		maintenanceRuns.WithLabelValues(op, "error")
	}
}

// recordRun counts one run of the command name that ended with err; it
// ignores commands that are not counted operations.
func recordRun(name string, err error) {
	if !countedOperations[name] {
		return
	}
	if err != nil {
		maintenanceRuns.WithLabelValues(name, "error").Inc()
		return
	}
	maintenanceRuns.WithLabelValues(name, "ok").Inc()
	maintenanceLastSuccess.WithLabelValues(name).Set(float64(time.Now().Unix()))
}
