package server

import (
	"encoding/json"
	"errors"
	"os"
	"syscall"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// Code is one OCI error code as a client sees it: the code's name, the HTTP
// status it is sent with, and a message. Each Code is a package-level value
// defined below and nowhere else, so a code's status cannot drift between
// call sites.
type Code struct {
	Name    string
	Status  int
	Message string
	// OAuth marks an error of the token endpoint's own request grammar,
	// sent in the OAuth 2.0 form (RFC 6749 §5.2) that the token endpoint's
	// POST follows: {"error": Name, "error_description": message}.
	OAuth bool
}

// The error codes of the distribution spec ("Error Codes", code-1 to
// code-14), each with the status the spec's endpoint sections and
// distribution's registry give it, and the spec's description as message.
var (
	codeBlobUnknown       = Code{"BLOB_UNKNOWN", 404, "blob unknown to registry", false}
	codeBlobUploadInvalid = Code{"BLOB_UPLOAD_INVALID", 400, "blob upload invalid", false}
	codeBlobUploadUnknown = Code{"BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry", false}
	codeDigestInvalid     = Code{"DIGEST_INVALID", 400, "provided digest did not match uploaded content", false}
	// A manifest PUT naming a blob the repository lacks is a bad request,
	// not a missing resource: the resource is the manifest being created.
	// distribution sends 400 too.
	codeManifestBlobUnknown = Code{"MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry", false}
	codeManifestInvalid     = Code{"MANIFEST_INVALID", 400, "manifest invalid", false}
	codeManifestUnknown     = Code{"MANIFEST_UNKNOWN", 404, "manifest unknown to registry", false}
	codeNameInvalid         = Code{"NAME_INVALID", 400, "invalid repository name", false}
	codeNameUnknown         = Code{"NAME_UNKNOWN", 404, "repository name not known to registry", false}
	codeSizeInvalid         = Code{"SIZE_INVALID", 400, "provided length did not match content length", false}
	codeUnauthorized        = Code{"UNAUTHORIZED", 401, "authentication required", false}
	codeDenied              = Code{"DENIED", 403, "requested access to the resource is denied", false}
	// The spec answers a disabled delete with 405; clients read 405 on any
	// /v2 endpoint as "this registry does not offer that operation".
	codeUnsupported     = Code{"UNSUPPORTED", 405, "the operation is unsupported", false}
	codeTooManyRequests = Code{"TOOMANYREQUESTS", 429, "too many requests", false}
)

// Cases where the spec prescribes a status but no code of its own. The spec
// says an error's code MUST be one of its fourteen, so these reuse the
// nearest one with the status the case needs, instead of inventing codes
// such as distribution's RANGE_INVALID that clients cannot rely on.
var (
	// An out-of-order chunk or a malformed Content-Range must get 416
	// (spec, "Pushing a blob in chunks"); an unsatisfiable GET Range gets
	// 416 by RFC 9110, where clients read the status and Content-Range,
	// not the body.
	codeRangeInvalid = Code{"BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable", false}
	// "A registry that enforces this limit SHOULD respond to a request to
	// push a manifest over this limit with a response code 413" (spec,
	// "Pushing Manifests").
	codeManifestTooLarge = Code{"MANIFEST_INVALID", 413, "manifest too large", false}
	// A request body larger than the server reads at all.
	codeBodyTooLarge = Code{"SIZE_INVALID", 413, "request body too large", false}
	// Deleting a manifest or blob that another manifest still needs would
	// leave that manifest unpullable. 409 says the request conflicts with
	// the state of the resource; 405 would claim deletes are disabled.
	codeInUse = Code{"DENIED", 409, "the content is referenced by a manifest", false}
	// A tags or catalog page size "n" that is not a non-negative integer.
	// distribution answers PAGINATION_NUMBER_INVALID, a code outside the
	// spec's list; the request asks for a page the endpoint does not offer,
	// so UNSUPPORTED, with 400 as for any malformed request.
	codePaginationInvalid = Code{"UNSUPPORTED", 400, "invalid number of results requested", false}
	// A path under /v2/ that is no endpoint of the spec. 404 is also what
	// clients probing an optional API (referrers) take as "not offered".
	codeNotFound = Code{"UNSUPPORTED", 404, "no such endpoint", false}
	// The data directory's disk (or quota) is full. 507 Insufficient
	// Storage (RFC 4918) says so to anything that reads only the status;
	// DENIED makes docker print "denied: <message>" and not retry, which
	// helps nobody until space is freed.
	codeStorageFull = Code{"DENIED", 507, "no space left on the registry's storage device", false}
	// A request body that ended before its Content-Length, or stopped
	// arriving (the body progress timeout): the session keeps what came.
	codeBodyShort   = Code{"BLOB_UPLOAD_INVALID", 400, "request body ended early; the upload keeps what arrived, resume from its offset", false}
	codeBodyStalled = Code{"BLOB_UPLOAD_INVALID", 408, "request body stopped arriving; the upload keeps what arrived, resume from its offset", false}
	// LDAP sign-in could not reach or use the directory: 503, so clients
	// and people see a server-side outage, not a wrong password.
	codeDirectoryDown = Code{"UNAUTHORIZED", 503, "the LDAP directory cannot be reached; try again later", false}
	// The blob store (S3) could not be reached, timed out or refused
	// berth: 503, a server-side outage the client may retry; metadata
	// (HEAD, tags, manifests) is still served from meta.db.
	codeStorageUnavailable = Code{"UNKNOWN", 503, "the registry's blob storage cannot be reached; try again later", false}
	// A mirror's upstream that could not be reached or answered 5xx for
	// content the cache lacks: 502 Bad Gateway, as a proxy answers; the
	// message names the upstream (upstreamError).
	codeUpstreamFailed = Code{"UNKNOWN", 502, "the mirror's upstream failed", false}
	// Anything the server did not expect. The cause goes to the log only.
	codeUnknown = Code{"UNKNOWN", 500, "unknown error", false}
	// Client errors fasthttp finds before a handler runs (a malformed
	// Content-Length, headers over the buffer): bad input is never a 5xx.
	codeBadRequest     = Code{"UNSUPPORTED", 400, "bad request", false}
	codeHeaderTooLarge = Code{"UNSUPPORTED", 431, "request header fields too large", false}
	codeURITooLong     = Code{"UNSUPPORTED", 414, "request URI too long", false}
	codeLengthRequired = Code{"UNSUPPORTED", 411, "length required", false}
	codeRequestTimeout = Code{"UNSUPPORTED", 408, "request timeout", false}
)

// The token endpoint's request errors (RFC 6749 §5.2; the Docker token
// specification's OAuth2 form follows it): a malformed form, an unknown
// grant_type or a scope that is not the scope grammar is the client's
// mistake, 400, never 405, which would say the endpoint is not offered.
var (
	codeTokenRequestInvalid = Code{"invalid_request", 400, "malformed token request", true}
	codeGrantUnsupported    = Code{"unsupported_grant_type", 400, "grant_type must be password or refresh_token", true}
)

// Error is an OCI error response: one entry of the {"errors":[...]} envelope
// plus the status it is sent with (Code.Status). Message is what the client
// reads; Detail, when not nil, is marshalled as JSON into "detail". Neither
// may carry file paths or internal error text.
type Error struct {
	Code    Code
	Message string
	Detail  any
}

// Error returns "NAME: message", the form the log shows.
func (e *Error) Error() string {
	return e.Code.Name + ": " + e.Message
}

// newError returns an Error with code c, c's message and detail (nil for
// none).
func newError(c Code, detail any) *Error {
	return &Error{Code: c, Message: c.Message, Detail: detail}
}

// sentinelCodes maps the store's sentinel errors to codes. Order matters for
// errors that wrap more than one: the more specific entry comes first. The
// message a client reads is the sentinel's own text: each sentinel's text is
// fixed and carries no input, unlike the errors that wrap it.
var sentinelCodes = []struct {
	err  error
	code Code
}{
	{store.ErrManifestTooLarge, codeManifestTooLarge},
	{store.ErrManifestInvalid, codeManifestInvalid},
	{store.ErrManifestUnknown, codeManifestUnknown},
	{store.ErrManifestInUse, codeInUse},
	{store.ErrBlobInUse, codeInUse},
	{store.ErrBlobUnknown, codeBlobUnknown},
	{store.ErrNameInvalid, codeNameInvalid},
	{store.ErrNameUnknown, codeNameUnknown},
	// The spec has no code for a bad tag; the reference is part of the
	// manifest request, and the message says what is wrong with it.
	{store.ErrTagInvalid, codeManifestInvalid},
	{store.ErrDigestMismatch, codeDigestInvalid},
	{store.ErrDigestInvalid, codeDigestInvalid},
	// A well-formed digest of an algorithm berth does not store is still a
	// digest the registry cannot use: 400 DIGEST_INVALID. UNSUPPORTED (405)
	// would tell clients the whole endpoint is unavailable.
	{store.ErrDigestUnsupported, codeDigestInvalid},
	{store.ErrUploadUnknown, codeBlobUploadUnknown},
	{store.ErrUploadInvalid, codeBlobUploadInvalid},
	{store.ErrRangeInvalid, codeRangeInvalid},
	{store.ErrSizeInvalid, codeSizeInvalid},
	{store.ErrTooManyUploads, codeTooManyRequests},
	// Refused before the first byte (the free-space watermark): the same
	// answer as a full disk, with the reason.
	{store.ErrSpaceLow, codeStorageFull},
	// A blob whose record names an object store this server was not
	// started with (a migration under way elsewhere): a server-side fault.
	{store.ErrNoKeyedStore, codeStorageUnavailable},
	{errNotFound, codeNotFound},
}

// fiberCodes maps the statuses of fiber's own errors (no route, wrong method,
// body over the limit) to codes. fiber's messages name the request path, so
// they are not passed on.
var fiberCodes = map[int]Code{
	fiber.StatusNotFound:                    codeNotFound,
	fiber.StatusMethodNotAllowed:            codeUnsupported,
	fiber.StatusRequestEntityTooLarge:       codeBodyTooLarge,
	fiber.StatusUnauthorized:                codeUnauthorized,
	fiber.StatusForbidden:                   codeDenied,
	fiber.StatusTooManyRequests:             codeTooManyRequests,
	fiber.StatusBadRequest:                  codeBadRequest,
	fiber.StatusRequestHeaderFieldsTooLarge: codeHeaderTooLarge,
	fiber.StatusRequestURITooLong:           codeURITooLong,
	fiber.StatusLengthRequired:              codeLengthRequired,
	fiber.StatusRequestTimeout:              codeRequestTimeout,
}

// errorFor maps any error to the *Error the client sees. An *Error anywhere
// in err's chain is returned as it is; store errors and fiber's errors map to
// their codes. Anything else becomes UNKNOWN/500 with a generic message, and
// unmapped is true so the caller logs err itself; a full disk is mapped and
// logged both.
func errorFor(err error) (e *Error, unmapped bool) {
	if errors.As(err, &e) && e != nil {
		return e, false
	}
	var missing *store.MissingRefError
	if errors.As(err, &missing) {
		return newError(codeManifestBlobUnknown, map[string]string{"digest": missing.Digest.String()}), false
	}
	var size *store.SizeMismatchError
	if errors.As(err, &size) {
		return &Error{Code: codeManifestInvalid, Message: "a descriptor's size differs from the stored content's",
			Detail: map[string]any{"digest": size.Digest.String(), "size": size.Declared, "stored": size.Stored}}, false
	}
	var up *store.UpstreamError
	if errors.As(err, &up) {
		return upstreamError(up), false
	}
	// The handler also sets the Range header from the offset, as the spec
	// asks of a 416 for an out-of-order chunk.
	// The message names the rule, so the pusher knows why and whom to ask.
	var immutable *store.ImmutableError
	if errors.As(err, &immutable) {
		return &Error{Code: codeDenied, Message: immutable.Error(),
			Detail: map[string]string{"rule": immutable.Rule, "tag": immutable.Tag}}, false
	}
	var quota *store.QuotaError
	if errors.As(err, &quota) {
		return &Error{Code: codeDenied, Message: quota.Error(),
			Detail: map[string]any{quota.Kind: quota.Name, "usage": quota.Usage, "limit": quota.Limit, "need": quota.Need}}, false
	}
	var offset *store.OffsetError
	if errors.As(err, &offset) {
		return &Error{Code: codeRangeInvalid, Message: "chunk does not start where the upload ends",
			Detail: map[string]int64{"offset": offset.Offset}}, false
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The operator must hear of it too: logged like an unmapped error.
		return newError(codeStorageFull, nil), true
	case errors.Is(err, store.ErrStorageUnavailable):
		// The operator must hear of it too, with the cause.
		return newError(codeStorageUnavailable, nil), true
	case errors.Is(err, errBodyShort):
		return newError(codeBodyShort, nil), false
	case errors.Is(err, os.ErrDeadlineExceeded):
		return newError(codeBodyStalled, nil), false
	}
	for _, m := range sentinelCodes {
		if errors.Is(err, m.err) {
			return &Error{Code: m.code, Message: m.err.Error()}, false
		}
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		if c, ok := fiberCodes[fe.Code]; ok {
			return newError(c, nil), false
		}
		// Any other client error is bad input, never a 5xx.
		if fe.Code >= 400 && fe.Code < 500 {
			return newError(codeBadRequest, nil), false
		}
	}
	return newError(codeUnknown, nil), true
}

// errorBody is the spec's error envelope.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// oauthError is the error body of RFC 6749 §5.2.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeError answers the request with e: its status and, except for HEAD,
// the JSON envelope {"errors":[{"code","message","detail"}]}. A HEAD answer
// has no body (RFC 9110), so only the status tells the client what failed.
func writeError(c *fiber.Ctx, e *Error) error {
	c.Status(e.Code.Status)
	if c.Method() == fiber.MethodHead {
		return nil
	}
	if e.Code.OAuth {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(oauthError{Error: e.Code.Name, Description: e.Message})
	}
	entry := errorEntry{Code: e.Code.Name, Message: e.Message, Detail: e.Detail}
	body, err := json.Marshal(errorBody{Errors: []errorEntry{entry}})
	if err != nil {
		// A detail that does not marshal must not cost the client its
		// error code: send the entry without it.
		entry.Detail = nil
		body, _ = json.Marshal(errorBody{Errors: []errorEntry{entry}})
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// upstreamError answers a pull of a mirror's repository that the cache
// could not serve, with the upstream's name in the message (it is the
// operator's configuration, not a secret) and its own status mapped: 404
// stays "unknown", 401/403 becomes DENIED (berth's credentials upstream
// are at fault, not the client's), 429 stays 429, the rest 502.
func upstreamError(up *store.UpstreamError) *Error {
	c := codeUpstreamFailed
	switch up.Status {
	case 404:
		c = codeManifestUnknown
		if up.Missing == store.ErrBlobUnknown {
			c = codeBlobUnknown
		}
	case 401, 403:
		c = codeDenied
	case 429:
		c = codeTooManyRequests
	}
	return &Error{Code: c, Message: up.Error(), Detail: map[string]string{"upstream": up.Host, "mirror": up.Mirror}}
}
