package server

import (
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// tokenRequest is a token request of either form, read into one shape.
type tokenRequest struct {
	service      string
	scopes       []string
	offline      bool
	grantType    string // "" for GET; "password" or "refresh_token" for POST
	username     string
	password     string
	refreshToken string
	basic        bool // credentials came as Basic auth (GET)
	clientID     string
}

// getToken is the Docker token endpoint: GET with optional Basic auth.
// https://distribution.github.io/distribution/spec/auth/token/
func (s *Server) getToken(c *fiber.Ctx) error {
	req := tokenRequest{
		service:  c.Query("service"),
		offline:  c.Query("offline_token") == "true",
		clientID: c.Query("client_id"),
	}
	for _, sc := range c.Context().QueryArgs().PeekMulti("scope") {
		req.scopes = append(req.scopes, strings.Fields(string(sc))...)
	}
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		name, password, ok := parseBasic(cred)
		if !strings.EqualFold(scheme, "Basic") || !ok {
			return s.tokenUnauthorized(c)
		}
		req.username, req.password, req.basic = name, password, true
	}
	return s.issueToken(c, req)
}

// postToken is the OAuth2 form of the token endpoint, which docker login
// and containerd use: grant_type password or refresh_token.
// https://distribution.github.io/distribution/spec/auth/oauth/
func (s *Server) postToken(c *fiber.Ctx) error {
	form, err := s.readForm(c)
	if err != nil {
		return err
	}
	req := tokenRequest{
		service:      form.Get("service"),
		scopes:       strings.Fields(form.Get("scope")),
		offline:      form.Get("access_type") == "offline",
		grantType:    form.Get("grant_type"),
		username:     form.Get("username"),
		password:     form.Get("password"),
		refreshToken: form.Get("refresh_token"),
		clientID:     form.Get("client_id"),
	}
	// For the access log, which must not parse the form again.
	c.Locals(formUserKey, req.username)
	switch req.grantType {
	case "password", "refresh_token":
	default:
		return newError(codeGrantUnsupported, nil)
	}
	return s.issueToken(c, req)
}

// issueToken runs the named steps: check the service, parse scopes,
// authenticate, authorize, sign.
func (s *Server) issueToken(c *fiber.Ctx, req tokenRequest) error {
	if req.service != "" && req.service != s.service {
		return newError(codeDenied, map[string]string{"service": req.service})
	}
	scopes, err := auth.ParseScopes(req.scopes)
	if err != nil {
		return &Error{Code: codeTokenRequestInvalid, Message: err.Error()}
	}
	user, err := s.tokenUser(c, req)
	if err != nil {
		return err
	}
	access, err := s.auth.Authorize(user, scopes)
	if err != nil {
		return err
	}
	tok, err := s.auth.IssueToken(user, s.service, access)
	if err != nil {
		return err
	}
	resp := fiber.Map{
		"token":        tok.Raw,
		"access_token": tok.Raw,
		"expires_in":   int(tok.ExpiresIn / time.Second),
		"issued_at":    tok.IssuedAt.UTC().Format(time.RFC3339),
	}
	if req.grantType != "" {
		resp["scope"] = strings.Join(req.scopes, " ")
	}
	switch {
	case req.grantType == "refresh_token":
		resp["refresh_token"] = req.refreshToken
	case req.offline && user.Name != "" && !auth.IsDirectoryUser(user):
		// Directory users get none: each token is a new LDAP check, so a
		// user removed there is refused at the next one.
		rt, err := s.auth.IssueRefresh(user, s.service, clientName(c, req))
		if err != nil {
			return err
		}
		resp["refresh_token"] = rt
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(resp)
}

// clientName is what `berth user sessions` shows for a refresh token: the
// client_id the client sent (docker sends "docker"), else its User-Agent.
func clientName(c *fiber.Ctx, req tokenRequest) string {
	if req.clientID != "" {
		return req.clientID
	}
	return c.Get(fiber.HeaderUserAgent)
}

// maxFormSize bounds the body of a token request: a handful of short
// fields. fasthttp's own form parsing would read a streamed body whole,
// whatever its size.
const maxFormSize = 64 << 10

const formUserKey = "berth.formUser"

// readForm reads a token request's urlencoded form through its own cap.
func (s *Server) readForm(c *fiber.Ctx) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(s.body(c), maxFormSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxFormSize {
		return nil, newError(codeBodyTooLarge, nil)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &Error{Code: codeTokenRequestInvalid, Message: "malformed form body"}
	}
	return form, nil
}

// tokenUser authenticates a token request: the anonymous user when it
// carries no credentials.
func (s *Server) tokenUser(c *fiber.Ctx, req tokenRequest) (store.User, error) {
	switch {
	case req.grantType == "refresh_token":
		u, err := s.auth.RedeemRefresh(req.refreshToken, s.service)
		if err != nil {
			return store.User{}, s.tokenUnauthorized(c)
		}
		return u, nil
	case req.basic || req.grantType == "password":
		u, err := s.auth.AuthenticateForToken(req.username, req.password, c.IP())
		if err != nil {
			return store.User{}, s.authError(c, err, s.tokenUnauthorized)
		}
		return u, nil
	}
	return store.User{}, nil
}

// tokenUnauthorized is the answer to bad credentials at /token: 401 with a
// Basic challenge, the scheme this endpoint takes.
func (s *Server) tokenUnauthorized(c *fiber.Ctx) error {
	c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="berth"`)
	return newError(codeUnauthorized, nil)
}
