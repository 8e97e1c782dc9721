// Package admin runs the maintenance commands on a data directory — users,
// access rules, and later gc, du, backup — and carries them over the control
// socket, both ends, so a command gives the same output whether the server is
// stopped or serving.
//
// # One command, two ways to reach it
//
// A Command is a name and a Run function over an Env (the open store) and
// plain Args (words and flag values, as the CLI parsed them). Run, the entry
// point the CLI calls, picks the way:
//
//   - serve is running: it holds meta.db's lock and listens on
//     DATA/control.sock (ServeControl). Run dials the socket and the server runs
//     the same Command in its own process, streaming stdout and stderr back and
//     pulling stdin on demand.
//   - nobody is serving: Run opens the data directory itself and runs the
//     Command in the CLI process.
//
// The Command writes the same bytes to the same writers either way, and its
// error travels back as its message, so the output is identical by
// construction.
//
// # The control protocol
//
// One connection carries one command. Every message is a frame: one type
// byte, a 4-byte big-endian payload length, the payload (at most maxFrame
// bytes). The client sends a request frame (JSON: protocol version, command,
// args); the server answers with stdout and stderr frames, asks for stdin with
// "want" frames that the client answers with at most that many bytes or an
// end frame, and finishes with an exit frame carrying the error message, if
// any. Stdin is pulled rather than pushed so that a command which never reads
// it never touches the user's terminal, and so that a restore stream gets
// back-pressure for free.
//
// # Security
//
// The socket is the only authentication for admin commands: it is created
// with mode 0600 inside DATA, and on Linux the server also checks the peer's
// uid (the server's own, or root) before reading a request. Passwords are
// hashed in the CLI process, so plaintext never crosses the socket.
package admin
