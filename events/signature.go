package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// The headers that sign a delivery. The signature covers the event id, the
// timestamp and the body, so a receiver can reject a replayed or altered
// request: compare HeaderTimestamp to its clock, then the signature, then
// de-duplicate by HeaderID.
const (
	HeaderID        = "Berth-Event-Id"
	HeaderTimestamp = "Berth-Timestamp" // unix seconds of the attempt
	HeaderSignature = "Berth-Signature" // "v1=" + hex(HMAC-SHA256(secret, id "." timestamp "." body))
)

// Sign returns the HeaderSignature value for an event id, a timestamp (as
// sent in HeaderTimestamp) and a body.
func Sign(secret []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}
