package mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-registry/berth/store"
)

// manifestAccept is every manifest type berth stores, for the upstream's
// content negotiation; schema 1 is left out, so an upstream converts or
// refuses.
const manifestAccept = store.MediaTypeOCIIndex + ", " + store.MediaTypeOCIManifest + ", " +
	store.MediaTypeDockerList + ", " + store.MediaTypeDockerManifest

// upstream is one mirror's registry as a client sees it. Its transports
// sign in per repository (the bearer flow scopes a token to one), and are
// kept for reuse.
type upstream struct {
	cfg  store.Mirror
	log  *slog.Logger
	reg  name.Registry
	base http.RoundTripper
	auth authn.Authenticator

	mu    sync.Mutex
	repos map[string]http.RoundTripper
}

// maxTransports bounds the signed-in transports kept per upstream.
const maxTransports = 1024

func newUpstream(cfg store.Mirror, log *slog.Logger) (*upstream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mirror %s: %w", cfg.Name, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.MaxIdleConnsPerHost = 32
	if cfg.CA != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(cfg.CA))
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	auth := authn.Anonymous
	if cfg.User != "" {
		auth = &authn.Basic{Username: cfg.User, Password: string(cfg.Password)}
	}
	return &upstream{cfg: cfg, log: log, reg: reg, base: tr, auth: auth, repos: map[string]http.RoundTripper{}}, nil
}

// transport returns a round tripper signed in for pulls of repo (the
// upstream's name, without the namespace).
func (u *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	u.mu.Lock()
	rt := u.repos[repo]
	u.mu.Unlock()
	if rt != nil {
		return rt, nil
	}
	upstreamRequests.WithLabelValues(u.cfg.Name, "ping").Inc()
	rt, err := transport.NewWithContext(ctx, u.reg, u.auth, u.base, []string{"repository:" + repo + ":pull"})
	if err != nil {
		return nil, u.fail(err, 0, store.ErrManifestUnknown)
	}
	u.mu.Lock()
	if len(u.repos) >= maxTransports {
		clear(u.repos)
	}
	u.repos[repo] = rt
	u.mu.Unlock()
	return rt, nil
}

// do sends one request for /v2/<repo>/<kind>/<ref> upstream. A response
// other than 200 becomes an *store.UpstreamError (its body closed); the
// caller closes a 200's body.
func (u *upstream) do(ctx context.Context, method, repo, kind, ref string, missing error) (*http.Response, error) {
	rt, err := u.transport(ctx, repo)
	if err != nil {
		var ue *store.UpstreamError
		if errors.As(err, &ue) {
			ue.Missing = missing
		}
		return nil, err
	}
	target := u.reg.Scheme() + "://" + u.reg.RegistryStr() + "/v2/" + repo + "/" + kind + "/" + ref
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	if kind == "manifests" {
		req.Header.Set("Accept", manifestAccept)
	}
	upstreamRequests.WithLabelValues(u.cfg.Name, method).Inc()
	res, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, u.fail(err, 0, missing)
	}
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		return nil, u.fail(fmt.Errorf("%s %s: %s", method, target, res.Status), res.StatusCode, missing)
	}
	return res, nil
}

// fail counts an upstream failure and describes it for the client.
func (u *upstream) fail(err error, status int, missing error) error {
	var terr *transport.Error
	if status == 0 && errors.As(err, &terr) {
		status = terr.StatusCode
	}
	reason := "unreachable"
	switch {
	case status >= 500:
		reason = "5xx"
	case status != 0:
		reason = strconv.Itoa(status)
	}
	upstreamErrors.WithLabelValues(u.cfg.Name, reason).Inc()
	// The operator's record of why pulls fail; the URL holds no
	// credentials (store.Mirror.Validate refuses them there).
	u.log.Warn("mirror upstream failed", "mirror", u.cfg.Name, "status", status, "err", err)
	return &store.UpstreamError{Mirror: u.cfg.Name, Host: u.reg.RegistryStr(), Status: status, Missing: missing, Err: err}
}

func isDigestError(err error) bool {
	return errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeInvalid)
}

// detach returns a context for upstream requests made on behalf of a
// client's request: not derived from it (fasthttp reuses a request's
// context once its handler returns, and the upstream client may keep what
// it is given), bounded by timeout, and cancelled when parent ends.
func detach(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	stop := context.AfterFunc(parent, cancel)
	return ctx, func() { stop(); cancel() }
}
