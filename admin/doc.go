// Package admin runs the maintenance operations on a data directory —
// users, access rules, gc, du, repo del, backup, verify, tls init — and
// carries them over the control socket, both ends, so an operation gives the
// same output whether the server is stopped or serving.
//
// # One typed API
//
// Each operation is an Op: a request type, a result type, one Do that runs
// it on the open store, and one Render that prints a result. The request
// type is also the command line: the CLI (cmd_admin.go) turns the struct
// tags of its fields into flags and positional arguments —
//
//	type GC struct {
//		DryRun bool          `flag:"dry-run" usage:"..." json:"dry_run,omitempty"`
//		Grace  time.Duration `flag:"grace" usage:"..." json:"grace"`
//	}
//
// so adding a flag is adding a field, and the compiler checks every use of
// it. A field with json:"-" stays in the CLI process: Prepare reads the files
// and passwords it names there (a relative path, a terminal prompt), so only
// data crosses the socket, and passwords only as bcrypt hashes.
//
// Call, the CLI's entry point, picks the way:
//
//   - serve is running: it holds meta.db's lock and listens on
//     DATA/control.sock (ServeControl). Call sends the request there and the
//     server runs Do in its own process.
//   - nobody is serving: Call opens the data directory itself and runs Do in
//     the CLI process.
//
// Either way the result comes back as a value and Render prints it in the
// CLI process, so the output — errors included — is the same by
// construction.
//
// # The control socket
//
// HTTP/1.1 over the unix socket (net/http both ends). Every operation is
// POST /admin/v1/<its words joined by slashes> (Route: "user add" is
// /admin/v1/user/add) with the JSON request as body, decoded onto the
// operation's Defaults; unknown fields are refused, so a flag an older server
// does not know is an error, not ignored. The answer is 200 with
// application/x-ndjson: progress events when the query has progress=1, then
// one event with done set, carrying the result, the error, or both. A
// streaming operation (backup) answers with its bytes and puts the result
// and error in trailers. A request refused before the operation runs gets
// 4xx and one event. The header Berth-Admin-Protocol names the wire version.
// Closing the connection (Ctrl-C in the CLI) cancels the operation.
//
// Handler serves these routes without authentication; the web UI's admin
// pages are meant to mount the same handler on the main port behind a
// signed-in admin session. Requests must be application/json, which a
// cross-site form cannot send.
//
// # Security
//
// The socket is the only authentication for admin commands: it is created
// with mode 0600 inside DATA, and on Linux the server also checks the peer's
// uid (the server's own, or root) before it reads a request.
package admin
