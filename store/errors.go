package store

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by the store. Callers compare with errors.Is; the
// HTTP layer maps each to its OCI error code.
var (
	ErrDigestInvalid     = errors.New("invalid digest")
	ErrDigestUnsupported = errors.New("unsupported digest algorithm")
	ErrDigestMismatch    = errors.New("content does not match digest")
	ErrNameInvalid       = errors.New("invalid repository name")
	ErrTagInvalid        = errors.New("invalid tag")
	ErrNameUnknown       = errors.New("repository name not known to registry")
	ErrBlobUnknown       = errors.New("blob unknown to registry")
	ErrManifestUnknown   = errors.New("manifest unknown")
	ErrManifestInvalid   = errors.New("manifest invalid")
	ErrManifestTooLarge  = errors.New("manifest too large")
	ErrUploadUnknown     = errors.New("blob upload unknown to registry")
	ErrUploadInvalid     = errors.New("blob upload invalid")
	ErrRangeInvalid      = errors.New("requested range not satisfiable")
	ErrSizeInvalid       = errors.New("provided length did not match content length")
	ErrManifestInUse     = errors.New("manifest is referenced by another manifest")
	// ErrTooManyUploads is returned by StartUpload when the owner already
	// has as many sessions open as the limit allows.
	ErrTooManyUploads = errors.New("too many upload sessions open for this account: finish or cancel some, or wait until they expire")
)

// MissingRefError reports a manifest reference that is not present in the
// repository: a blob (config, layer) or a child manifest of an index.
type MissingRefError struct {
	Digest Digest
}

func (e *MissingRefError) Error() string {
	return fmt.Sprintf("manifest references %s, which is not in the repository", e.Digest)
}

// SizeMismatchError reports a manifest descriptor whose size is not the
// size of the blob or manifest it names, as stored in the repository.
// Clients such as containerd check sizes on pull and would refuse the image.
type SizeMismatchError struct {
	Digest   Digest
	Declared int64
	Stored   int64
}

func (e *SizeMismatchError) Error() string {
	return fmt.Sprintf("manifest says %s is %d bytes, the registry holds %d", e.Digest, e.Declared, e.Stored)
}

// OffsetError reports a chunk that does not start where the upload ends.
// Offset is the size the upload has so far.
type OffsetError struct {
	Offset int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("chunk does not start at upload offset %d", e.Offset)
}

// ErrBlobInUse is returned when deleting a blob that a manifest of the same
// repository still references.
var ErrBlobInUse = errors.New("blob is referenced by a manifest")
