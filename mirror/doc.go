// Package mirror is berth's pull-through cache: pulls of a mirror's
// namespace (<name>/<repo>) are answered from the store and, on a miss,
// filled from the upstream registry the mirror names (docs/mirror.md).
//
// What it keeps to:
//   - a blob, or a manifest by digest, once cached is never asked upstream
//     again;
//   - a tag is revalidated with one HEAD once its TTL has passed, and
//     within it served with no upstream request;
//   - a cold blob streams to the client while the store writes and hashes
//     it (store.Fill); it becomes visible only once verified, and clients
//     asking for it meanwhile read the same fill: one upstream fetch;
//   - an upstream that is down, slow, 5xx or 429 leaves cached content
//     servable (stale tags are logged and counted); content not cached
//     gets an error naming the upstream.
//
// The server calls it through the small interface server.Mirror; mirror
// imports store only, of ours.
package mirror
