package store

import (
	"bytes"
	"encoding/binary"
)

// The bucket tree of meta.db. Keys sort bytewise, so listings come out in
// lexical order and a repository is one prefix scan; "\x00" cannot occur in a
// valid name, tag or digest, so it separates the parts of composite keys.
// Values start with a version byte (see encode/decode in records.go).
//
//	meta       "schema" → schema version
//	repos      <repo> → created at                    repositories that hold anything
//	blobs      <digest> → size, created at            blob files present in DATA/blobs
//	links      <repo>\x00<digest> → linked at         blobs a repository may serve
//	blobrepos  <digest>\x00<repo> → {}                reverse of links, for GC and du
//	manifests  <repo>\x00<digest> → manifest record: binary head (created, media type), JSON of the references, body (records.go)
//	refs       <repo>\x00<target>\x00<manifest> → {} reverse of a manifest's references
//	tags       <repo>\x00<tag> → digest
//	referrers  <repo>\x00<subject>\x00<digest> → {}
//	broken     <repo>\x00<digest> → {}                manifests a repair left without content; unknown until re-pushed
//	uploads    <id> → repo, owner, offset, hash state, started at, updated at
//	uploadowners <owner>\x00<id> → {}               reverse of uploads' owner, to count a user's sessions
//	users      <name> → user record
//	rules      <position, big-endian uint64> → rule record
//	keys       <kid> → signing key record
//	tokens     <sha256 of refresh token> → refresh token record
//	webhooks   <name> → webhook endpoint record (url, events, secret, ...)
//	hookstate  <name> → delivery cursor (outbox position) and last attempt
//	outbox     <seq, big-endian uint64> → event, written in the transaction of the change it reports
//	deadletters <name>\x00<seq> → event an endpoint never took, with the reason
//	tagtimes   <repo>\x00<tag> → pushed at          when the tag last moved; absent for tags older than retention
//	pulls      <repo>\x00<digest> → last pulled at  written in batches from memory (pulls.go)
//	retention  <name> → retention rule
//	immutable  <name> → immutability rule
//	lifts      <repo>\x00<tag> → until              an admin's one-off lift of an immutable tag
//	quotas     <kind>\x00<name> → limit in bytes     kind: namespace or repository (quota.go)
//	orgs       <org> → organization record                      (orgs.go)
//	teams      <org>\x00<team> → team record: members, LDAP group
//	grants     <org>\x00<repos pattern>\x00<u|t>\x00<user or team> → level
//	visibility <repository or namespace> → "public" or "private"
//	ldap       "config" → LDAP sign-in settings                 (ldap.go)
//	history    <kind>\x00<seq, big-endian uint64> → a past gc or backup run (the newest 50 of each kind)
//	mirrors    <name> → upstream of a pull-through cache (url, credentials, tag TTL, ...); name is its namespace
//	tagchecks  <repo>\x00<tag> → when a mirror's upstream last confirmed the cached tag  written in batches (tagchecks.go)
//	uisessions, uisessionusers: web UI sign-ins (uisessions.go)
var (
	bucketMeta         = []byte("meta")
	bucketRepos        = []byte("repos")
	bucketBlobs        = []byte("blobs")
	bucketLinks        = []byte("links")
	bucketBlobRepos    = []byte("blobrepos")
	bucketManifests    = []byte("manifests")
	bucketRefs         = []byte("refs")
	bucketTags         = []byte("tags")
	bucketReferrers    = []byte("referrers")
	bucketBroken       = []byte("broken")
	bucketUploads      = []byte("uploads")
	bucketUploadOwners = []byte("uploadowners")
	bucketUsers        = []byte("users")
	bucketRules        = []byte("rules")
	bucketKeys         = []byte("keys")
	bucketTokens       = []byte("tokens")
	bucketWebhooks     = []byte("webhooks")
	bucketHookState    = []byte("hookstate")
	bucketOutbox       = []byte("outbox")
	bucketDeadLetters  = []byte("deadletters")
	bucketTagTimes     = []byte("tagtimes")
	bucketPulls        = []byte("pulls")
	bucketRetention    = []byte("retention")
	bucketImmutable    = []byte("immutable")
	bucketLifts        = []byte("lifts")
	bucketQuotas       = []byte("quotas")
	bucketHistory      = []byte("history")
	bucketMirrors      = []byte("mirrors")
	bucketTagChecks    = []byte("tagchecks")

	allBuckets = [][]byte{
		bucketMeta, bucketRepos, bucketBlobs, bucketLinks, bucketBlobRepos,
		bucketManifests, bucketRefs, bucketTags, bucketReferrers, bucketBroken, bucketUploads, bucketUploadOwners,
		bucketUsers, bucketRules, bucketKeys, bucketTokens,
		bucketWebhooks, bucketHookState, bucketOutbox, bucketDeadLetters,
		bucketTagTimes, bucketPulls, bucketRetention, bucketImmutable, bucketLifts, bucketQuotas,
		bucketOrgs, bucketTeams, bucketGrants, bucketVisibility, bucketLDAP,
		bucketHistory,
		bucketMirrors, bucketTagChecks,
		bucketUISessions, bucketUISessionUsers,
	}
)

const sep = 0x00

// key joins parts with the separator byte.
func key(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, p...)
	}
	return b
}

// prefix is key(parts...) followed by a separator: the range of keys that
// start with those parts.
func prefix(parts ...string) []byte {
	return append(key(parts...), sep)
}

// splitKey splits a composite key into its parts. The returned strings are
// copies, valid after the transaction.
func splitKey(k []byte) []string {
	fields := bytes.Split(k, []byte{sep})
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out
}

// positionKey encodes a rule position so that keys sort numerically.
func positionKey(pos uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], pos)
	return b[:]
}
