// Package auth decides who a caller is and what the caller may do: password
// checks with a cache and a throttle, docker_auth-style access rules, Docker
// token scopes, and the ES256 access tokens and refresh tokens of the Docker
// token authentication specification. It speaks in store types and holds no
// HTTP: package server maps requests onto it.
//
// # The pieces
//
//   - Scope, ParseScope, ParseScopes: "repository:alice/app:pull,push" and
//     friends, with the grammar of the distribution project's "Token Scope
//     Documentation".
//   - Authorizer: the access rules of meta.db compiled once, first match
//     wins, default deny, with README.md's default policy when there are
//     no rules; see its doc for the exact decision, including admins (always
//     allowed) and --anonymous-pull (adds pull for anonymous on top of the
//     rules). ValidateRule checks a rule before it is stored.
//   - Signer: ES256 tokens with kid, iss, sub, aud, exp, nbf, iat, jti and
//     access; Verify pins the algorithm, our key id, issuer and audience and
//     never reads jwk, x5c or jku.
//   - Service: the above over one store, which is what server uses.
//
// # Wiring into server
//
// Create one Service at start-up, after store.Open:
//
//	svc, err := auth.NewService(st, auth.Options{TTL: ttl, AnonymousPull: anonPull})
//
// /token (GET with optional Basic auth, or POST form):
//
//	scopes, err := auth.ParseScopes(scopeParams) // ErrScopeInvalid → 400 invalid_request
//	user := store.User{}                         // anonymous without credentials
//	user, err = svc.Authenticate(name, password, c.IP())
//	//   ErrBadCredentials → 401; *auth.ThrottledError → 429, Retry-After: RetryAfter
//	//   grant_type=refresh_token instead: user, err = svc.RedeemRefresh(rt, service)
//	access, err := svc.Authorize(user, scopes)   // less than asked is not an error
//	tok, err := svc.IssueToken(user.Name, service, access)
//	//   token = access_token = tok.Raw, expires_in = tok.ExpiresIn seconds,
//	//   issued_at = tok.IssuedAt (RFC 3339)
//	//   offline_token=true or access_type=offline (with a signed-in user):
//	//   refresh_token, err = svc.IssueRefresh(user, service)
//
// Pass the configured --service as service, and refuse (or ignore) a request
// naming another: VerifyToken only accepts tokens for the service it is
// given.
//
// /v2/ middleware, for the (type, name, action) a route needs — from the
// repository and method, or registry:catalog:* for /v2/_catalog:
//
//	Bearer: account, access, err := svc.VerifyToken(raw, service)
//	        // err (wraps ErrTokenInvalid) → 401
//	        ok := auth.Covers(access, auth.TypeRepository, repo, auth.ActionPull)
//	Basic:  user, err := svc.Authenticate(name, password, c.IP())
//	        access, err := svc.Authorize(user, []auth.Scope{{Type: auth.TypeRepository, Name: repo, Actions: []string{action}}})
//	        ok := auth.Covers(access, auth.TypeRepository, repo, action)
//	none:   the anonymous caller, store.User{}, through Authorize as for Basic.
//
// Not ok: 401 with the Bearer challenge for the anonymous caller, 403 with
// error="insufficient_scope" for a signed-in one. The catalog handler lists
// svc.PullFilter(account): which repositories the caller may pull.
//
// # Costs
//
// Authenticate pays bcrypt once a minute per (user, password) thanks to the
// credential cache. User records and the compiled rules are kept in memory
// and checked against the store's AuthGeneration, an in-memory counter that
// moves on with every change of a user or a rule: deletion, password changes
// and `berth acl add` through the control socket apply to the next request,
// and a request reads no meta.db for them. VerifyToken is one ECDSA
// verification per token (verified tokens are cached until they expire) and
// touches no store: a token stays valid until it expires, even if its user
// is deleted, which is why tokens live minutes.
//
// # Known limits
//
// Unknown users are checked against a dummy hash at PasswordCost; a user
// imported from htpasswd with another bcrypt cost answers faster or slower
// than an unknown one until `berth user passwd` rehashes it. The throttle
// counts per (account, address), in memory: it slows guessing from one
// address, not a password spray from many.
package auth
