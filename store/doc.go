// Package store holds the registry's state and its rules: the OCI grammar
// (digests, repository names, tags, manifests), metadata in one bbolt file,
// blob files in a sharded content-addressed directory, upload sessions, and
// the users, rules and keys records.
//
// Every other package of berth speaks in the types defined here. store imports
// nothing of ours.
//
// # Durability
//
// A blob file at its final path is always complete and verified: uploads are
// written under DATA/uploads, hashed while written, fsynced, compared with the
// expected digest and only then renamed into DATA/blobs and recorded in bbolt.
// Removal runs the other way: the record goes first, the file after, so a crash
// leaves at worst an orphan file for GC, never a record without its file.
//
// Starting an upload session is the one write not made durable before it is
// answered: a POST acknowledges no content, so StartUpload returns once the
// session's record is queued for the next group commit (uploadstart.go). A
// crash before that commit loses the session, which the client starts
// again, and leaves its empty file for GC.
//
// # Concurrency
//
// bbolt serialises write transactions. Every rule that must hold between
// records (a manifest's references are linked in its repository, a tag points
// at a manifest that exists) is checked inside the same write transaction that
// changes them, so concurrent pushes, deletes and garbage collection each see
// a whole old state or a whole new one. Write transactions hold only bucket
// operations; hashing, JSON decoding and file I/O happen before or after.
package store
