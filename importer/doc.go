// Package importer moves another registry's content into berth without a
// re-push: a registry:2 (distribution) data directory, an OCI image layout
// or a zot store, or any registry over the Distribution API.
//
// Each kind of source is a Source: it lists repositories, each
// repository's tags and other manifests, manifest bodies, and blobs, either
// as files (which the store hard-links after hashing them) or as streams.
// Import walks the repositories a Source offers, imports the blobs a
// repository's manifests need with a few workers, then records the
// manifests children first, in one store transaction per batch. Problems
// (a missing or corrupt blob, a schema 1 manifest, an unreadable file) are
// reported and the import goes on: manifests that lack content are recorded
// as broken, the way `berth verify --repair` marks them, so a later push of
// the image heals them. The source is only ever read.
//
// An import is idempotent: blobs the store holds are only linked, and
// manifests are recorded again unchanged, so a run that was killed is
// finished by running it again.
package importer
