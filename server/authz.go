package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// caller is who made a request, once authenticated.
type caller struct {
	account string
	user    store.User    // set for Basic auth and anonymous
	access  []auth.Access // set for Bearer tokens: exactly what the token grants
	bearer  bool
	signed  bool // credentials were sent and accepted
}

const callerKey = "berth.caller"

// noAuthCaller is every request's caller with --auth none. One value
// serves them all: a caller is never changed once made.
var noAuthCaller = &caller{user: store.User{Admin: true}, signed: true}

// need is the access one /v2 request requires.
type need struct {
	typ, name string
	action    string
	challenge string // the actions named in the 401 challenge's scope
}

// needFor maps a parsed target and method to the access it needs. The base
// endpoint needs only a valid sign-in (zero need).
func needFor(t target, method string) need {
	switch t.Kind {
	case kindBase:
		return need{}
	case kindCatalog:
		return need{typ: auth.TypeRegistry, name: auth.CatalogName, action: auth.ActionAll, challenge: auth.ActionAll}
	}
	n := need{typ: auth.TypeRepository, name: t.Repo}
	switch {
	case method == fiber.MethodDelete && (t.Kind == kindBlob || t.Kind == kindManifest):
		n.action, n.challenge = auth.ActionDelete, auth.ActionDelete
	case method == fiber.MethodGet || method == fiber.MethodHead:
		if t.Kind == kindUpload {
			n.action, n.challenge = auth.ActionPush, "pull,push"
		} else {
			n.action, n.challenge = auth.ActionPull, auth.ActionPull
		}
	default:
		n.action, n.challenge = auth.ActionPush, "pull,push"
	}
	return n
}

// authorize authenticates the request and checks it may do what n needs.
// With --auth none every request passes as an all-powerful caller.
func (s *Server) authorize(c *fiber.Ctx, n need) error {
	if s.auth == nil {
		c.Locals(callerKey, noAuthCaller)
		return nil
	}
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	c.Locals(callerKey, who)
	if n.action == "" {
		// Any valid token, even an anonymous one, passes the base check,
		// as with registry:2; anonymous without one gets the challenge.
		if !who.signed && !who.bearer {
			return s.challenge(c, n, false)
		}
		return nil
	}
	ok, err := s.allowed(who, n.typ, n.name, n.action)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	s.noteDenial(c, who, n)
	switch {
	case who.signed && !who.bearer:
		// A valid sign-in that the access model refuses: say so, rather
		// than "authentication required", which sends users hunting for
		// a wrong password.
		return &Error{Code: codeDenied, Message: fmt.Sprintf("%s may not %s %s", who.account, verbOf(n), n.name)}
	default:
		// Anonymous, or a token that lacks the scope: the client fetches a
		// token for the scope in the challenge and retries.
		return s.challenge(c, n, who.bearer)
	}
}

// deniedKey holds why a request was refused, for the access log.
const deniedKey = "berth.denied"

// noteDenial records which grant or rule refused the request (or that the
// token lacked the scope), for the access log line.
func (s *Server) noteDenial(c *fiber.Ctx, who *caller, n need) {
	d, err := s.auth.Explain(who.account, n.typ, n.name, n.action)
	reason := d.Reason
	switch {
	case err != nil:
		reason = "cannot explain: " + err.Error()
	case who.bearer && d.Allowed:
		reason = "the token does not carry this scope (issued before a change, or not asked for)"
	case who.bearer:
		reason = "the token does not carry this scope: " + reason
	}
	c.Locals(deniedKey, n.action+" "+n.name+": "+reason)
}

// verbOf words a refused need for the client: "push to", "pull", "delete
// from", "list the catalog of".
func verbOf(n need) string {
	switch n.action {
	case auth.ActionPush:
		return "push to"
	case auth.ActionDelete:
		return "delete from"
	case auth.ActionAll:
		return "list"
	}
	return n.action
}

// allowed reports whether who may take action on (typ, name).
func (s *Server) allowed(who *caller, typ, name, action string) (bool, error) {
	if who.bearer {
		return auth.Covers(who.access, typ, name, action), nil
	}
	access, err := s.auth.Authorize(who.user, []auth.Scope{{Type: typ, Name: name, Actions: []string{action}}})
	if err != nil {
		return false, err
	}
	return auth.Covers(access, typ, name, action), nil
}

// pullFilter returns a check of which repositories the request's caller
// may pull under the access rules (auth.Service.PullFilter): what _catalog
// lists and where a blob may be mounted from.
func (s *Server) pullFilter(c *fiber.Ctx) (func(repo string) bool, error) {
	if s.auth == nil {
		return func(string) bool { return true }, nil
	}
	who, _ := c.Locals(callerKey).(*caller)
	if who == nil {
		return func(string) bool { return false }, nil
	}
	return s.auth.PullFilter(who.account)
}

// authenticate reads the Authorization header: a Bearer token of ours,
// Basic credentials, or nothing (the anonymous caller).
func (s *Server) authenticate(c *fiber.Ctx) (*caller, error) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return &caller{}, nil
	case strings.EqualFold(scheme, "Bearer"):
		// No copy: c.Get's string aliases the request buffer the next
		// request reuses, but VerifyToken keeps nothing of it (its cache
		// stores a copy of a token it adds), so a cache hit copies nothing.
		account, access, err := s.auth.VerifyToken(strings.TrimSpace(cred), s.service)
		if err != nil {
			return nil, s.challenge(c, need{}, false)
		}
		return &caller{account: account, access: access, bearer: true, signed: account != ""}, nil
	case strings.EqualFold(scheme, "Basic"):
		name, password, ok := parseBasic(cred)
		if !ok {
			return nil, s.challenge(c, need{}, false)
		}
		u, err := s.auth.Authenticate(name, password, c.IP())
		if err != nil {
			return nil, s.authError(c, err, func(c *fiber.Ctx) error { return s.challenge(c, need{}, false) })
		}
		return &caller{account: u.Name, user: u, signed: true}, nil
	default:
		return nil, s.challenge(c, need{}, false)
	}
}

// authError turns a failed password check into its response: 429 with
// Retry-After when throttled, badCredentials's answer for a wrong password.
func (s *Server) authError(c *fiber.Ctx, err error, badCredentials func(*fiber.Ctx) error) error {
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(te.RetryAfter.Seconds()+0.999)))
		return newError(codeTooManyRequests, nil)
	case errors.Is(err, auth.ErrBadCredentials):
		return badCredentials(c)
	case errors.Is(err, auth.ErrLDAPUnavailable):
		// Said plainly, never a silent fallback; the detail (which host,
		// which step) goes to the log.
		s.log.Error("LDAP sign-in", "err", err)
		return newError(codeDirectoryDown, nil)
	}
	return err
}

func parseBasic(cred string) (name, password string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// challenge answers 401 with the Bearer challenge of the Docker token
// specification: where to get a token, for which service and scope.
func (s *Server) challenge(c *fiber.Ctx, n need, insufficient bool) error {
	v := `Bearer realm="` + s.realm(c) + `",service="` + s.service + `"`
	if n.typ != "" {
		v += `,scope="` + n.typ + ":" + n.name + ":" + n.challenge + `"`
	}
	if insufficient {
		v += `,error="insufficient_scope"`
	}
	c.Set(fiber.HeaderWWWAuthenticate, v)
	return newError(codeUnauthorized, nil)
}

// realm is the token endpoint on the host and scheme the client used, so
// clients never follow a token URL to another host or port.
func (s *Server) realm(c *fiber.Ctx) string {
	return s.externalURL(c) + "/token"
}

// externalURL is scheme://host as the client sees this server, honouring
// X-Forwarded-Proto and X-Forwarded-Host only from a trusted reverse proxy
// (proxy.go). fiber's c.Protocol() is not used: it believes
// X-Forwarded-Proto from anyone.
func (s *Server) externalURL(c *fiber.Ctx) string {
	scheme := "http"
	if c.Context().IsTLS() {
		scheme = "https"
	}
	host := string(c.Request().Host())
	if fromTrustedProxy(c) {
		if p := c.Get(fiber.HeaderXForwardedProto); p == "http" || p == "https" {
			scheme = p
		}
		if h := c.Get(fiber.HeaderXForwardedHost); validHost(h) {
			host = h
		}
	}
	if !validHost(host) {
		host = c.Context().LocalAddr().String()
	}
	return scheme + "://" + host
}

// validHost keeps header values that could break out of the challenge's
// quoted string, or name more than one host, out of the realm.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return h != ""
}
