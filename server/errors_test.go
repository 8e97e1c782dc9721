package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/store"
)

// specCodes is the distribution spec's table of error codes (spec.md,
// "Error Codes", code-1 to code-14) with the status each is sent with.
var specCodes = map[string]int{
	"BLOB_UNKNOWN":          404,
	"BLOB_UPLOAD_INVALID":   400,
	"BLOB_UPLOAD_UNKNOWN":   404,
	"DIGEST_INVALID":        400,
	"MANIFEST_BLOB_UNKNOWN": 400,
	"MANIFEST_INVALID":      400,
	"MANIFEST_UNKNOWN":      404,
	"NAME_INVALID":          400,
	"NAME_UNKNOWN":          404,
	"SIZE_INVALID":          400,
	"UNAUTHORIZED":          401,
	"DENIED":                403,
	"UNSUPPORTED":           405,
	"TOOMANYREQUESTS":       429,
}

// codeTable lists every Code declared in errors.go by its identifier, with
// the name and status a client must see.
var codeTable = map[string]struct {
	code       Code
	name       string
	status     int
	specStatus bool // sent with the spec table's status, not a case's own
}{
	"codeBlobUnknown":         {codeBlobUnknown, "BLOB_UNKNOWN", 404, true},
	"codeBlobUploadInvalid":   {codeBlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400, true},
	"codeBlobUploadUnknown":   {codeBlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404, true},
	"codeDigestInvalid":       {codeDigestInvalid, "DIGEST_INVALID", 400, true},
	"codeManifestBlobUnknown": {codeManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400, true},
	"codeManifestInvalid":     {codeManifestInvalid, "MANIFEST_INVALID", 400, true},
	"codeManifestUnknown":     {codeManifestUnknown, "MANIFEST_UNKNOWN", 404, true},
	"codeNameInvalid":         {codeNameInvalid, "NAME_INVALID", 400, true},
	"codeNameUnknown":         {codeNameUnknown, "NAME_UNKNOWN", 404, true},
	"codeSizeInvalid":         {codeSizeInvalid, "SIZE_INVALID", 400, true},
	"codeUnauthorized":        {codeUnauthorized, "UNAUTHORIZED", 401, true},
	"codeDenied":              {codeDenied, "DENIED", 403, true},
	"codeUnsupported":         {codeUnsupported, "UNSUPPORTED", 405, true},
	"codeTooManyRequests":     {codeTooManyRequests, "TOOMANYREQUESTS", 429, true},
	"codeRangeInvalid":        {codeRangeInvalid, "BLOB_UPLOAD_INVALID", 416, false},
	"codeManifestTooLarge":    {codeManifestTooLarge, "MANIFEST_INVALID", 413, false},
	"codeBodyTooLarge":        {codeBodyTooLarge, "SIZE_INVALID", 413, false},
	"codeInUse":               {codeInUse, "DENIED", 409, false},
	"codeNotFound":            {codeNotFound, "UNSUPPORTED", 404, false},
	"codePaginationInvalid":   {codePaginationInvalid, "UNSUPPORTED", 400, false},
	"codeStorageFull":         {codeStorageFull, "DENIED", 507, false},
	"codeBodyShort":           {codeBodyShort, "BLOB_UPLOAD_INVALID", 400, false},
	"codeBodyStalled":         {codeBodyStalled, "BLOB_UPLOAD_INVALID", 408, false},
	"codeUnknown":             {codeUnknown, "UNKNOWN", 500, false},
	"codeDirectoryDown":       {codeDirectoryDown, "UNAUTHORIZED", 503, false},
	"codeStorageUnavailable":  {codeStorageUnavailable, "UNKNOWN", 503, false},
	"codeUpstreamFailed":      {codeUpstreamFailed, "UNKNOWN", 502, false},
	"codeBadRequest":          {codeBadRequest, "UNSUPPORTED", 400, false},
	"codeHeaderTooLarge":      {codeHeaderTooLarge, "UNSUPPORTED", 431, false},
	"codeURITooLong":          {codeURITooLong, "UNSUPPORTED", 414, false},
	"codeLengthRequired":      {codeLengthRequired, "UNSUPPORTED", 411, false},
	"codeRequestTimeout":      {codeRequestTimeout, "UNSUPPORTED", 408, false},
	// The token endpoint's own, in RFC 6749's form.
	"codeTokenRequestInvalid": {codeTokenRequestInvalid, "invalid_request", 400, false},
	"codeGrantUnsupported":    {codeGrantUnsupported, "unsupported_grant_type", 400, false},
}

// oauthCodes are RFC 6749 §5.2's error names.
var oauthCodes = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true}

func TestCode_MatchesSpecTable(t *testing.T) {
	for ident, tc := range codeTable {
		t.Run(ident, func(t *testing.T) {
			if tc.code.Name != tc.name || tc.code.Status != tc.status {
				t.Errorf("%s = %s/%d, want %s/%d", ident, tc.code.Name, tc.code.Status, tc.name, tc.status)
			}
			if tc.code.Message == "" {
				t.Errorf("%s has no message", ident)
			}
			if tc.code.OAuth {
				if !oauthCodes[tc.code.Name] || tc.code.Status != 400 {
					t.Errorf("%s: %s/%d is not an RFC 6749 error", ident, tc.code.Name, tc.code.Status)
				}
				return
			}
			specStatus, inSpec := specCodes[tc.code.Name]
			if !inSpec && tc.code.Name != codeUnknown.Name {
				t.Errorf("%s: %s is not a code of the spec's table", ident, tc.code.Name)
			}
			if tc.specStatus && tc.code.Status != specStatus {
				t.Errorf("%s: status %d, the spec's table says %d", ident, tc.code.Status, specStatus)
			}
		})
	}
	for name := range specCodes {
		found := false
		for _, tc := range codeTable {
			found = found || (tc.specStatus && tc.code.Name == name)
		}
		if !found {
			t.Errorf("spec code %s has no Code with its status", name)
		}
	}
}

// TestCode_AllDeclaredAreTested keeps codeTable complete: a Code added to
// errors.go without a row above fails here.
func TestCode_AllDeclaredAreTested(t *testing.T) {
	for _, ident := range packageVars(t, "errors.go", func(v ast.Expr) bool {
		lit, ok := v.(*ast.CompositeLit)
		if !ok {
			return false
		}
		typ, ok := lit.Type.(*ast.Ident)
		return ok && typ.Name == "Code"
	}) {
		if _, ok := codeTable[ident]; !ok {
			t.Errorf("errors.go declares %s, which codeTable does not check", ident)
		}
	}
}

// sentinelTable lists every sentinel of the store package with the code a
// client must see for it.
var sentinelTable = map[string]struct {
	err  error
	want Code
}{
	"ErrStorageUnavailable": {store.ErrStorageUnavailable, codeStorageUnavailable},
	"ErrNoKeyedStore":       {store.ErrNoKeyedStore, codeStorageUnavailable},
	"ErrDigestInvalid":      {store.ErrDigestInvalid, codeDigestInvalid},
	"ErrDigestUnsupported":  {store.ErrDigestUnsupported, codeDigestInvalid},
	"ErrDigestMismatch":     {store.ErrDigestMismatch, codeDigestInvalid},
	"ErrNameInvalid":        {store.ErrNameInvalid, codeNameInvalid},
	"ErrTagInvalid":         {store.ErrTagInvalid, codeManifestInvalid},
	"ErrNameUnknown":        {store.ErrNameUnknown, codeNameUnknown},
	"ErrBlobUnknown":        {store.ErrBlobUnknown, codeBlobUnknown},
	"ErrManifestUnknown":    {store.ErrManifestUnknown, codeManifestUnknown},
	"ErrManifestInvalid":    {store.ErrManifestInvalid, codeManifestInvalid},
	"ErrManifestTooLarge":   {store.ErrManifestTooLarge, codeManifestTooLarge},
	"ErrUploadUnknown":      {store.ErrUploadUnknown, codeBlobUploadUnknown},
	"ErrUploadInvalid":      {store.ErrUploadInvalid, codeBlobUploadInvalid},
	"ErrRangeInvalid":       {store.ErrRangeInvalid, codeRangeInvalid},
	"ErrSizeInvalid":        {store.ErrSizeInvalid, codeSizeInvalid},
	"ErrManifestInUse":      {store.ErrManifestInUse, codeInUse},
	"ErrBlobInUse":          {store.ErrBlobInUse, codeInUse},
	"ErrTooManyUploads":     {store.ErrTooManyUploads, codeTooManyRequests},
	"ErrSpaceLow":           {store.ErrSpaceLow, codeStorageFull},
}

// notForClients are the store's sentinels that no /v2 or /token request
// can meet as such: the server handles them before answering, or they come
// from the command line's operations only. Each is UNKNOWN if it ever
// reaches the error handler.
var notForClients = map[string]error{
	"ErrLocked":            store.ErrLocked,            // Open, before the server starts
	"ErrBlobStoreMismatch": store.ErrBlobStoreMismatch, // Open, before the server starts
	"ErrMigration":         store.ErrMigration,         // blobs migrate
	"ErrNotSupported":      store.ErrNotSupported,      // blob GET falls back to streaming
	"ErrNotDataDir":        store.ErrNotDataDir,        // Open of a maintenance command
	"ErrRecordInvalid":     store.ErrRecordInvalid,     // Open and restore refuse such a store
	"ErrSigningKeyInvalid": store.ErrSigningKeyInvalid, // auth.NewService, at start
	"ErrRuleUnknown":       store.ErrRuleUnknown,       // acl del, acl move
	"ErrLastAdmin":         store.ErrLastAdmin,         // user admin --revoke
	"ErrTokenUnknown":      store.ErrTokenUnknown,      // /token turns it into 401
	"ErrSessionUnknown":    store.ErrSessionUnknown,    // user revoke
	"ErrUISessionUnknown":  store.ErrUISessionUnknown,  // the web UI reads it as signed out
	"ErrUserExists":        store.ErrUserExists,        // user add
	"ErrUserUnknown":       store.ErrUserUnknown,       // authentication turns it into 401
	"ErrUserInvalid":       store.ErrUserInvalid,       // user add
	"ErrPasswordHashEmpty": store.ErrPasswordHashEmpty, // user add
	"ErrWebhookUnknown":    store.ErrWebhookUnknown,    // webhook del, status, replay, test
	"ErrLDAPNotConfigured": store.ErrLDAPNotConfigured, // ldap show, test; sign-in skips LDAP
	"ErrOrgExists":         store.ErrOrgExists,         // org add
	"ErrOrgUnknown":        store.ErrOrgUnknown,        // org and team commands
	"ErrTeamExists":        store.ErrTeamExists,        // team add
	"ErrTeamUnknown":       store.ErrTeamUnknown,       // team commands
	"ErrGrantInvalid":      store.ErrGrantInvalid,      // org grant
	"ErrGrantUnknown":      store.ErrGrantUnknown,      // org revoke
	"ErrNamespaceUsed":     store.ErrNamespaceUsed,     // org add, user add
	"ErrWebhookExists":     store.ErrWebhookExists,     // webhook add
	"ErrWebhookInvalid":    store.ErrWebhookInvalid,    // webhook add
	"ErrPolicyUnknown":     store.ErrPolicyUnknown,     // retention, immutable and quota del
	"ErrPolicyExists":      store.ErrPolicyExists,      // retention and immutable add
	"ErrPolicyInvalid":     store.ErrPolicyInvalid,     // retention, immutable add, quota set
	"ErrMirrorUnknown":     store.ErrMirrorUnknown,     // mirror del, test, prefetch
	"ErrMirrorExists":      store.ErrMirrorExists,      // mirror add
	"ErrMirrorInvalid":     store.ErrMirrorInvalid,     // mirror add
}

// TestErrorFor_PolicyRefusals checks that an immutable tag and a quota
// answer 403 DENIED with a message that names the rule, or gives usage
// and limit.
func TestErrorFor_PolicyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"immutable", &store.ImmutableError{Rule: "releases", Repo: "prod/api", Tag: "v1"}, `rule "releases"`},
		{"quota", &store.QuotaError{Quota: store.Quota{Kind: store.QuotaNamespace, Name: "team", Limit: 100, Usage: 90}, Need: 20}, "90 of 100 bytes used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, unmapped := errorFor(fmt.Errorf("put manifest: %w", tc.err))
			if unmapped || e.Code.Name != "DENIED" || e.Code.Status != 403 || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("errorFor = %+v (unmapped %v), want 403 DENIED with %q", e, unmapped, tc.want)
			}
		})
	}
}

func TestErrorFor_StoreSentinels(t *testing.T) {
	for ident, tc := range sentinelTable {
		t.Run(ident, func(t *testing.T) {
			// Wrapped the way store and handlers wrap them, with text a
			// client must not see.
			err := fmt.Errorf("open /srv/berth/blobs/sha256/ab: %w", tc.err)
			e, unmapped := errorFor(err)
			// A storage outage is mapped and logged both, as a full disk is.
			if unmapped && tc.err != store.ErrStorageUnavailable {
				t.Fatalf("errorFor(%v) is unmapped", err)
			}
			if e.Code != tc.want {
				t.Errorf("errorFor(%v) = %+v, want %+v", err, e.Code, tc.want)
			}
			if strings.Contains(e.Message, "/srv") {
				t.Errorf("message %q leaks the wrapping error's text", e.Message)
			}
		})
	}
}

// TestErrorFor_AllSentinelsAreTested keeps sentinelTable complete: a
// sentinel added to any file of store without a mapping (or a place in
// notForClients) fails here.
func TestErrorFor_AllSentinelsAreTested(t *testing.T) {
	files, err := filepath.Glob("../store/*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, ident := range packageVarsMaybe(t, f, func(v ast.Expr) bool {
			call, ok := v.(*ast.CallExpr)
			if !ok {
				return false
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			return ok && sel.Sel.Name == "New"
		}) {
			if !ast.IsExported(ident) {
				continue // store's own, never returned to a caller as such
			}
			found++
			_, mapped := sentinelTable[ident]
			sentinel, internal := notForClients[ident]
			switch {
			case !mapped && !internal:
				t.Errorf("%s declares %s, which neither sentinelTable nor notForClients lists", filepath.Base(f), ident)
			case internal:
				if e, unmapped := errorFor(sentinel); !unmapped || e.Code != codeUnknown {
					t.Errorf("%s maps to %+v; list it in sentinelTable", ident, e.Code)
				}
			}
		}
	}
	if want := len(sentinelTable) + len(notForClients); found != want {
		t.Errorf("found %d sentinels in store, the tables list %d", found, want)
	}
}

func TestErrorFor(t *testing.T) {
	own := &Error{Code: codeDenied, Message: "push to library/ is for admins"}
	tests := []struct {
		name         string
		err          error
		want         Code
		wantMessage  string // empty: not checked
		wantDetail   string // JSON of Detail; empty: no detail
		wantUnmapped bool
	}{
		{"own error", own, codeDenied, own.Message, "", false},
		{"own error wrapped", fmt.Errorf("authorize: %w", own), codeDenied, own.Message, "", false},
		{"missing reference", fmt.Errorf("put manifest: %w", &store.MissingRefError{Digest: store.Digest("sha256:" + strings.Repeat("a", 64))}),
			codeManifestBlobUnknown, "", `{"digest":"sha256:` + strings.Repeat("a", 64) + `"}`, false},
		{"chunk out of order", &store.OffsetError{Offset: 1024}, codeRangeInvalid, "", `{"offset":1024}`, false},
		{"sentinel message", store.ErrDigestUnsupported, codeDigestInvalid, "unsupported digest algorithm", "", false},
		{"no such endpoint", fmt.Errorf("%w: %q", errNotFound, "a/b/c"), codeNotFound, "no such endpoint", "", false},
		{"fiber not found", fiber.ErrNotFound, codeNotFound, "", "", false},
		{"fiber method not allowed", fiber.ErrMethodNotAllowed, codeUnsupported, "", "", false},
		{"fiber body too large", fiber.ErrRequestEntityTooLarge, codeBodyTooLarge, "", "", false},
		{"fiber unauthorized", fiber.ErrUnauthorized, codeUnauthorized, "", "", false},
		{"fiber forbidden", fiber.ErrForbidden, codeDenied, "", "", false},
		{"fiber too many requests", fiber.ErrTooManyRequests, codeTooManyRequests, "", "", false},
		{"disk full", fmt.Errorf("write upload file: %w", &os.PathError{Op: "write", Path: "/srv/x", Err: syscall.ENOSPC}), codeStorageFull, codeStorageFull.Message, "", true},
		{"quota full", fmt.Errorf("commit: %w", syscall.EDQUOT), codeStorageFull, codeStorageFull.Message, "", true},
		{"body cut short", fmt.Errorf("append: %w", errBodyShort), codeBodyShort, codeBodyShort.Message, "", false},
		{"body stalled", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), codeBodyStalled, codeBodyStalled.Message, "", false},
		{"fiber other client error keeps its status", fiber.NewError(fiber.StatusRequestHeaderFieldsTooLarge, "headers of /v2/x too large"),
			Code{Name: "UNSUPPORTED", Status: 431, Message: "request header fields too large"}, "request header fields too large", "", false},
		{"fiber server error", fiber.NewError(fiber.StatusServiceUnavailable, "overloaded at /v2/x"), codeUnknown, "unknown error", "", true},
		{"plain error", errors.New("open /srv/berth/meta.db: permission denied"), codeUnknown, "unknown error", "", true},
		{"canceled", context.Canceled, codeUnknown, "unknown error", "", true},
		{"typed nil own error", error((*Error)(nil)), codeUnknown, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, unmapped := errorFor(tc.err)
			if e == nil {
				t.Fatalf("errorFor(%v) = nil", tc.err)
			}
			if e.Code != tc.want || unmapped != tc.wantUnmapped {
				t.Errorf("errorFor(%v) = %+v, unmapped %v; want %+v, unmapped %v", tc.err, e.Code, unmapped, tc.want, tc.wantUnmapped)
			}
			if tc.wantMessage != "" && e.Message != tc.wantMessage {
				t.Errorf("errorFor(%v).Message = %q, want %q", tc.err, e.Message, tc.wantMessage)
			}
			detail := ""
			if e.Detail != nil {
				b, err := json.Marshal(e.Detail)
				if err != nil {
					t.Fatal(err)
				}
				detail = string(b)
			}
			if detail != tc.wantDetail {
				t.Errorf("errorFor(%v).Detail = %s, want %s", tc.err, detail, tc.wantDetail)
			}
		})
	}
}

func TestNewError(t *testing.T) {
	e := newError(codeBlobUnknown, map[string]string{"digest": "sha256:x"})
	if e.Message != codeBlobUnknown.Message || e.Code != codeBlobUnknown {
		t.Errorf("newError = %+v, want the code's message", e)
	}
	if got, want := e.Error(), "BLOB_UNKNOWN: blob unknown to registry"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		err      *Error
		wantBody string // empty: no body at all
	}{
		{"with detail", fiber.MethodGet, newError(codeManifestBlobUnknown, map[string]string{"digest": "sha256:ab"}),
			`{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"manifest references a manifest or blob unknown to registry","detail":{"digest":"sha256:ab"}}]}`},
		{"without detail", fiber.MethodPut, newError(codeNameInvalid, nil),
			`{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}`},
		{"detail that does not marshal", fiber.MethodGet, newError(codeUnknown, func() {}),
			`{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`},
		{"head has no body", fiber.MethodHead, newError(codeBlobUnknown, nil), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := fiber.New()
			app.All("/x", func(c *fiber.Ctx) error { return writeError(c, tc.err) })
			resp, err := app.Test(httptest.NewRequest(tc.method, "/x", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.err.Code.Status {
				t.Errorf("%s: status %d, want %d", tc.method, resp.StatusCode, tc.err.Code.Status)
			}
			if string(body) != tc.wantBody {
				t.Errorf("%s: body %s, want %s", tc.method, body, tc.wantBody)
			}
			if tc.wantBody != "" {
				if ct := resp.Header.Get(fiber.HeaderContentType); ct != fiber.MIMEApplicationJSON {
					t.Errorf("Content-Type %q, want %q", ct, fiber.MIMEApplicationJSON)
				}
			}
		})
	}
}

// packageVars returns the names of the package-level variables of the Go
// file at path whose value satisfies match; there must be some.
func packageVars(t *testing.T, path string, match func(ast.Expr) bool) []string {
	t.Helper()
	names := packageVarsMaybe(t, path, match)
	if len(names) == 0 {
		t.Fatalf("found no matching variables in %s", path)
	}
	return names
}

// packageVarsMaybe is packageVars for a file that may have none.
func packageVarsMaybe(t *testing.T, path string, match func(ast.Expr) bool) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) && match(vs.Values[i]) {
					names = append(names, name.Name)
				}
			}
		}
	}
	return names
}
