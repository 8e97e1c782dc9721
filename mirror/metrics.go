package mirror

import (
	"github.com/berth-registry/berth/internal/metrics"
)

// The cache's counters go on metrics.Default, which the
// server's /metrics serves beside its own, by mirror name.
var (
	lookups = metrics.Default.NewCounterVec(metrics.Opts{
		Name: "berth_mirror_requests_total",
		Help: "Pulls of a mirror namespace, by mirror, kind (manifest, blob) and result (hit, miss, stale).",
	}, []string{"mirror", "kind", "result"})
	upstreamRequests = metrics.Default.NewCounterVec(metrics.Opts{
		Name: "berth_mirror_upstream_requests_total",
		Help: "Requests berth sent to a mirror's upstream, by mirror and method.",
	}, []string{"mirror", "method"})
	upstreamBytes = metrics.Default.NewCounterVec(metrics.Opts{
		Name: "berth_mirror_upstream_bytes_total",
		Help: "Bytes of blobs and manifests received from a mirror's upstream.",
	}, []string{"mirror"})
	upstreamErrors = metrics.Default.NewCounterVec(metrics.Opts{
		Name: "berth_mirror_upstream_errors_total",
		Help: "Upstream answers berth could not use, by mirror and reason (unreachable, 401, 404, 429, 5xx, digest).",
	}, []string{"mirror", "reason"})
)
