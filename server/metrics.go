package server

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// metrics are a server's Prometheus instruments. They live in a registry
// of the server's own, so that several servers in one process (tests) do
// not collide; /metrics serves it together with prometheus.DefaultGatherer,
// which holds the Go runtime and process collectors and whatever other
// packages count there (admin's maintenance runs). docs/metrics.md lists
// every series.
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	inFlight     prometheus.Gauge
	authFailures *prometheus.CounterVec
	accept       *acceptMetrics
}

// authFailureReasons are the values of berth_auth_failures_total's label.
var authFailureReasons = []string{"credentials", "token", "denied", "throttled"}

func newMetrics(st *store.Store, svc *auth.Service, version string, log *slog.Logger) *metrics {
	route := []string{"route"}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_requests_total",
			Help: "HTTP requests served, by route (the kind of endpoint), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_http_request_duration_seconds",
			Help: "Time from a request's arrival to its response, by route and method.",
			// Manifests and tokens take milliseconds, layer uploads minutes.
			Buckets: []float64{.001, .005, .025, .1, .5, 2, 10, 60, 300, 1800},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_request_bytes_total",
			Help: "Request body bytes received, by route.",
		}, route),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_http_response_bytes_total",
			Help: "Response body bytes sent, by route (as declared by Content-Length).",
		}, route),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_http_requests_in_flight",
			Help: "Requests being served now.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_auth_failures_total",
			Help: "Refused requests, by reason: credentials (a wrong user name or password), token (an invalid or expired token), denied (signed in, but the access rules say no), throttled (too many wrong passwords).",
		}, []string{"reason"}),
		accept: newAcceptMetrics(),
	}
	for _, r := range authFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "berth_build_info",
		Help:        "Always 1; the label carries the berth version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.registry.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.authFailures, build,
		&storeCollector{store: st, log: log})
	m.registry.MustRegister(m.accept.collectors()...)
	if svc != nil {
		m.registry.MustRegister(passwordCheckCollector{svc})
	}
	return m
}

// passwordCheckCollector reports the bcrypt limiter of the auth service,
// read at each scrape.
type passwordCheckCollector struct{ svc *auth.Service }

var (
	descChecksLimit   = prometheus.NewDesc("berth_password_checks_limit", "How many bcrypt password checks may run at once.", nil, nil)
	descChecksRunning = prometheus.NewDesc("berth_password_checks_running", "bcrypt password checks running now.", nil, nil)
	descChecksPeak    = prometheus.NewDesc("berth_password_checks_running_peak", "The most bcrypt password checks that ever ran at once; never above the limit.", nil, nil)
	descChecks        = prometheus.NewDesc("berth_password_checks_total", "bcrypt password checks made (a credential cached within the minute costs none).", nil, nil)
	descChecksRefused = prometheus.NewDesc("berth_password_checks_refused_total", "Password checks refused with 429 because too many were already waiting for bcrypt.", nil, nil)
)

func (pc passwordCheckCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChecksLimit, descChecksRunning, descChecksPeak, descChecks, descChecksRefused} {
		ch <- d
	}
}

func (pc passwordCheckCollector) Collect(ch chan<- prometheus.Metric) {
	st := pc.svc.PasswordCheckStats()
	ch <- prometheus.MustNewConstMetric(descChecksLimit, prometheus.GaugeValue, float64(st.Limit))
	ch <- prometheus.MustNewConstMetric(descChecksRunning, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(descChecksPeak, prometheus.GaugeValue, float64(st.Peak))
	ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(st.Checks))
	ch <- prometheus.MustNewConstMetric(descChecksRefused, prometheus.CounterValue, float64(st.Refused))
}

// handler serves the metrics in Prometheus' text format (or OpenMetrics or
// protobuf, when the scraper asks).
func (m *metrics) handler() fiber.Handler {
	gatherers := prometheus.Gatherers{m.registry, prometheus.DefaultGatherer}
	return adaptor.HTTPHandler(promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
}

// observe records one served request.
func (m *metrics) observe(c *fiber.Ctx, route string, status int, in, out int64, took time.Duration) {
	method := methodLabel(c.Method())
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(took.Seconds())
	m.bytesIn.WithLabelValues(route).Add(float64(in))
	m.bytesOut.WithLabelValues(route).Add(float64(out))
	if reason := authFailure(c, status); reason != "" {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// methodLabel keeps the method label to the methods the API uses, since a
// client may send any token as a method. It returns constants: the label
// values outlive the request, and fiber's c.Method() is a view of a buffer
// fasthttp reuses for the next request.
func methodLabel(method string) string {
	for _, m := range []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut,
		fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions} {
		if method == m {
			return m
		}
	}
	return "other"
}

// authFailure classifies a refused request from its response, the way a
// client sees it, so that no handler has to count: 429 is throttled, 403
// denied; 401 is a failure only when credentials were sent (a first,
// anonymous request is challenged as a matter of course), and not when a
// valid token just lacks a scope (the client fetches a wider one). It
// returns "" for anything else.
func authFailure(c *fiber.Ctx, status int) string {
	switch status {
	case fiber.StatusTooManyRequests:
		return "throttled"
	case fiber.StatusForbidden:
		return "denied"
	case fiber.StatusUnauthorized:
	default:
		return ""
	}
	if c.Path() == "/token" {
		// Anonymous token requests succeed, so any 401 here refused a
		// password or a refresh token.
		return "credentials"
	}
	scheme, _, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return "credentials"
	case strings.Contains(string(c.Response().Header.Peek(fiber.HeaderWWWAuthenticate)), "insufficient_scope"):
		return ""
	case scheme != "":
		return "token"
	}
	return ""
}

// routeNames are the route labels of the /v2 endpoint kinds.
var routeNames = map[kind]string{
	kindBase:        "base",
	kindCatalog:     "catalog",
	kindManifest:    "manifest",
	kindBlob:        "blob",
	kindUploadStart: "upload_start",
	kindUpload:      "upload",
	kindTags:        "tags",
	kindReferrers:   "referrers",
}

// routeOf names the kind of endpoint a request was for, a label with few
// values for metrics and the log: a /v2 kind, one of the other routes, or
// "other" (no route, or a /v2 path that names no endpoint). Like
// methodLabel it returns constants, never a view of the request.
func routeOf(c *fiber.Ctx) string {
	if t, ok := c.Locals(targetKey).(target); ok {
		return routeNames[t.Kind]
	}
	switch c.Path() {
	case "/token":
		return "token"
	case "/healthz":
		return "healthz"
	case "/readyz":
		return "readyz"
	case "/metrics":
		return "metrics"
	}
	return "other"
}

// storeCollector reports what the store holds, read at each scrape with
// one store.Stats call: always current, and nothing to keep in step.
type storeCollector struct {
	store *store.Store
	log   *slog.Logger
}

var (
	descRepositories = prometheus.NewDesc("berth_storage_repositories", "Repositories that hold anything.", nil, nil)
	descManifests    = prometheus.NewDesc("berth_storage_manifests", "Manifests, counted once per repository that holds them.", nil, nil)
	descTags         = prometheus.NewDesc("berth_storage_tags", "Tags.", nil, nil)
	descBlobs        = prometheus.NewDesc("berth_storage_blobs", "Blobs stored, each once however many repositories link it.", nil, nil)
	descBlobBytes    = prometheus.NewDesc("berth_storage_blob_bytes", "Total size of the stored blobs.", nil, nil)
	descUploads      = prometheus.NewDesc("berth_uploads_in_progress", "Upload sessions started and not yet finished, cancelled or expired.", nil, nil)
	descUploadBytes  = prometheus.NewDesc("berth_upload_bytes_in_progress", "Bytes received so far by the upload sessions in progress.", nil, nil)
)

func (sc *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRepositories, descManifests, descTags, descBlobs, descBlobBytes, descUploads, descUploadBytes} {
		ch <- d
	}
}

func (sc *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := sc.store.Stats()
	if err != nil {
		sc.log.Error("metrics: read store stats", "err", err)
		ch <- prometheus.NewInvalidMetric(descBlobs, err)
		return
	}
	for _, v := range []struct {
		d *prometheus.Desc
		n float64
	}{
		{descRepositories, float64(st.Repositories)},
		{descManifests, float64(st.Manifests)},
		{descTags, float64(st.Tags)},
		{descBlobs, float64(st.Blobs)},
		{descBlobBytes, float64(st.BlobBytes)},
		{descUploads, float64(st.Uploads)},
		{descUploadBytes, float64(st.UploadBytes)},
	} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.n)
	}
}
