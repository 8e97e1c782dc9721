package server

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/internal/metrics"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// serverMetrics are a server's instruments. They live in a registry of the
// server's own, so that several servers in one process (tests) do not
// collide; /metrics serves it together with metrics.Default, which holds
// the Go runtime and process series and whatever other packages count
// there (admin's maintenance runs). docs/metrics.md lists every series.
type serverMetrics struct {
	registry     *metrics.Registry
	requests     *metrics.CounterVec
	duration     *metrics.HistogramVec
	bytesIn      *metrics.CounterVec
	bytesOut     *metrics.CounterVec
	inFlight     *metrics.Gauge
	authFailures *metrics.CounterVec
	accept       *acceptMetrics
}

// authFailureReasons are the values of berth_auth_failures_total's label.
var authFailureReasons = []string{"credentials", "token", "denied", "throttled"}

func newMetrics(st *store.Store, svc *auth.Service, version string, log *slog.Logger) *serverMetrics {
	route := []string{"route"}
	m := &serverMetrics{
		registry: metrics.NewRegistry(),
		requests: metrics.NewCounterVec(metrics.Opts{
			Name: "berth_http_requests_total",
			Help: "HTTP requests served, by route (the kind of endpoint), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: metrics.NewHistogramVec(metrics.Opts{
			Name: "berth_http_request_duration_seconds",
			Help: "Time from a request's arrival to its response, by route and method.",
		},
			// Manifests and tokens take milliseconds, layer uploads minutes.
			[]float64{.001, .005, .025, .1, .5, 2, 10, 60, 300, 1800}, []string{"route", "method"}),
		bytesIn: metrics.NewCounterVec(metrics.Opts{
			Name: "berth_http_request_bytes_total",
			Help: "Request body bytes received, by route.",
		}, route),
		bytesOut: metrics.NewCounterVec(metrics.Opts{
			Name: "berth_http_response_bytes_total",
			Help: "Response body bytes sent, by route (as declared by Content-Length).",
		}, route),
		inFlight: metrics.NewGauge(metrics.Opts{
			Name: "berth_http_requests_in_flight",
			Help: "Requests being served now.",
		}),
		authFailures: metrics.NewCounterVec(metrics.Opts{
			Name: "berth_auth_failures_total",
			Help: "Refused requests, by reason: credentials (a wrong user name or password), token (an invalid or expired token), denied (signed in, but the access rules say no), throttled (too many wrong passwords).",
		}, []string{"reason"}),
		accept: newAcceptMetrics(),
	}
	for _, r := range authFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	build := metrics.NewGaugeVec(metrics.Opts{
		Name: "berth_build_info",
		Help: "Always 1; the label carries the berth version.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
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

func (pc passwordCheckCollector) Collect(add func(metrics.Family)) {
	st := pc.svc.PasswordCheckStats()
	add(metrics.One("berth_password_checks_limit", "How many bcrypt password checks may run at once.", metrics.KindGauge, float64(st.Limit)))
	add(metrics.One("berth_password_checks_running", "bcrypt password checks running now.", metrics.KindGauge, float64(st.Running)))
	add(metrics.One("berth_password_checks_running_peak", "The most bcrypt password checks that ever ran at once; never above the limit.", metrics.KindGauge, float64(st.Peak)))
	add(metrics.One("berth_password_checks_total", "bcrypt password checks made (a credential cached within the minute costs none).", metrics.KindCounter, float64(st.Checks)))
	add(metrics.One("berth_password_checks_refused_total", "Password checks refused with 429 because too many were already waiting for bcrypt.", metrics.KindCounter, float64(st.Refused)))
}

// handler serves the metrics in Prometheus' text format, which every
// Prometheus scrapes (it asks for OpenMetrics or protobuf first, and takes
// text when answered with it).
func (m *serverMetrics) handler() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var b strings.Builder
		if err := metrics.Write(&b, m.registry, metrics.Default); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
		return c.SendString(b.String())
	}
}

// observe records one served request.
func (m *serverMetrics) observe(c *fiber.Ctx, route string, status int, in, out int64, took time.Duration) {
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

func (sc *storeCollector) Collect(add func(metrics.Family)) {
	st, err := sc.store.Stats()
	if err != nil {
		sc.log.Error("metrics: read store stats", "err", err)
		add(metrics.Family{Name: "berth_storage_blobs", Err: err})
		return
	}
	for _, v := range []struct {
		name, help string
		n          float64
	}{
		{"berth_storage_repositories", "Repositories that hold anything.", float64(st.Repositories)},
		{"berth_storage_manifests", "Manifests, counted once per repository that holds them.", float64(st.Manifests)},
		{"berth_storage_tags", "Tags.", float64(st.Tags)},
		{"berth_storage_blobs", "Blobs stored, each once however many repositories link it.", float64(st.Blobs)},
		{"berth_storage_blob_bytes", "Total size of the stored blobs.", float64(st.BlobBytes)},
		{"berth_uploads_in_progress", "Upload sessions started and not yet finished, cancelled or expired.", float64(st.Uploads)},
		{"berth_upload_bytes_in_progress", "Bytes received so far by the upload sessions in progress.", float64(st.UploadBytes)},
	} {
		add(metrics.One(v.name, v.help, metrics.KindGauge, v.n))
	}
}
