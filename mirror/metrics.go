package mirror

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The cache's counters go on prometheus.DefaultRegisterer, which the
// server's /metrics serves beside its own, by mirror name.
var (
	lookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_requests_total",
		Help: "Pulls of a mirror namespace, by mirror, kind (manifest, blob) and result (hit, miss, stale).",
	}, []string{"mirror", "kind", "result"})
	upstreamRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_upstream_requests_total",
		Help: "Requests berth sent to a mirror's upstream, by mirror and method.",
	}, []string{"mirror", "method"})
	upstreamBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_upstream_bytes_total",
		Help: "Bytes of blobs and manifests received from a mirror's upstream.",
	}, []string{"mirror"})
	upstreamErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_mirror_upstream_errors_total",
		Help: "Upstream answers berth could not use, by mirror and reason (unreachable, 401, 404, 429, 5xx, digest).",
	}, []string{"mirror", "reason"})
)
