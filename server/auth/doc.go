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
//	user, err = svc.AuthenticateForToken(name, password, c.IP())
//	//   ErrBadCredentials → 401; *auth.ThrottledError (throttled, or too
//	//   many checks waiting for bcrypt) → 429, Retry-After: RetryAfter;
//	//   ErrLDAPUnavailable (a directory user, the directory down) → 503
//	//   grant_type=refresh_token instead: user, err = svc.RedeemRefresh(rt, service)
//	access, err := svc.Authorize(user, scopes)   // less than asked is not an error
//	tok, err := svc.IssueToken(user, service, access)
//	//   token = access_token = tok.Raw, expires_in = tok.ExpiresIn seconds,
//	//   issued_at = tok.IssuedAt (RFC 3339)
//	//   offline_token=true or access_type=offline (with a signed-in user
//	//   that is not a directory user, IsDirectoryUser):
//	//   refresh_token, err = svc.IssueRefresh(user, service, clientID)
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
// Not ok: 401 with the Bearer challenge for the anonymous caller and for a
// token without the scope (error="insufficient_scope"), 403 DENIED naming
// the account, action and repository for a Basic caller; svc.Explain says
// which grant or rule decided, for the log. The catalog handler lists
// svc.PullFilter(account): which repositories the caller may pull.
//
// # Costs
//
// Authenticate answers a (user, password) verified within the minute from
// the credential cache, before the throttle: a signed-in client costs no
// bcrypt and is never throttled by someone else's flood. Anything else
// counts against the throttle when it starts (per account and address, and
// per address), then waits for one of a few bcrypt slots (half the CPUs),
// and is refused as busy when the queue is full or the wait too long. User
// records and the compiled rules are kept in memory and checked against
// the store's AuthGeneration, an in-memory counter that moves on with every
// change of a user or a rule: deletion, password changes and `berth acl
// add` through the control socket apply to the next request, and a request
// reads no meta.db for them. VerifyToken is one ECDSA verification per
// token (verified tokens are cached until they expire) plus a look-up of
// the subject in that user cache: a token carries its user's epoch and is
// refused the moment the user is deleted or changes password.
//
// Refresh tokens live Options.RefreshTTL, at most Options.RefreshPerUser
// per user (a new one revokes the oldest); an expired one is deleted when
// presented, and RunRefreshCleanup sweeps the rest.
//
// # Known limits
//
// Unknown users are checked against a dummy hash at PasswordCost; a user
// imported from htpasswd with another bcrypt cost (at most MaxPasswordCost)
// answers faster or slower than an unknown one until `berth user passwd`
// rehashes it. The throttle is in memory: it slows guessing from one
// address, not a spray from many, which the bcrypt limit bounds instead.
// Revoking a refresh token leaves the access tokens already minted from it
// valid until they expire.
package auth
