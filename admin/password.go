package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/berth-registry/berth/server/auth"
)

// maxPasswordLen is bcrypt's limit: it ignores (and x/crypto refuses) the
// bytes after the 72nd, so a longer password would not be what it seems.
const maxPasswordLen = 72

// minPasswordLen is the shortest password berth sets (README "Users and
// access rules"). Eight characters keep a one-letter slip from becoming an
// account anyone guesses; the lockout (five tries a minute) does the rest.
const minPasswordLen = 8

// maxPasswordInput bounds what --password-stdin reads.
const maxPasswordInput = 4096

// checkPassword applies berth's rules for a new password.
func checkPassword(pw []byte) error {
	switch {
	case len(pw) == 0:
		return errors.New("the password is empty")
	case len(pw) < minPasswordLen:
		return fmt.Errorf("the password is %d characters long; berth needs at least %d", len(pw), minPasswordLen)
	case len(pw) > maxPasswordLen:
		return fmt.Errorf("the password is %d bytes long, more than bcrypt's limit of %d", len(pw), maxPasswordLen)
	}
	return nil
}

// hashNewPassword checks a new password and returns its bcrypt hash at
// auth.PasswordCost, the cost the server's login checks are sized for.
// Imported hashes keep the cost they were made with.
func hashNewPassword(pw []byte) ([]byte, error) {
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	return auth.HashPassword(string(pw))
}

// NewPasswordHash reads a new password for user and returns its bcrypt hash.
// With fromStdin it reads all of in and drops one trailing newline, as
// `docker login --password-stdin` does. Otherwise in must be a terminal: it
// prompts on prompt twice, without echo, and the two must match. Passwords
// are hashed here, in the CLI process, so that only the hash crosses the
// control socket.
func NewPasswordHash(in io.Reader, fromStdin bool, prompt io.Writer, user string) ([]byte, error) {
	var pw []byte
	var err error
	if fromStdin {
		pw, err = readPasswordStdin(in)
	} else {
		pw, err = promptPassword(in, prompt, user)
	}
	if err != nil {
		return nil, err
	}
	return hashNewPassword(pw)
}

func readPasswordStdin(in io.Reader) ([]byte, error) {
	pw, err := io.ReadAll(io.LimitReader(in, maxPasswordInput+1))
	if err != nil {
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	if len(pw) > maxPasswordInput {
		return nil, fmt.Errorf("stdin holds more than %d bytes: not a password", maxPasswordInput)
	}
	pw = bytes.TrimSuffix(pw, []byte("\n"))
	return bytes.TrimSuffix(pw, []byte("\r")), nil
}

// promptPassword asks twice on a terminal without echo.
func promptPassword(in io.Reader, prompt io.Writer, user string) ([]byte, error) {
	f, ok := in.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("stdin is not a terminal to ask for the password on: use --password-stdin")
	}
	fd := int(f.Fd())
	read := func(question string) ([]byte, error) {
		fmt.Fprint(prompt, question)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		return pw, nil
	}
	pw, err := read(fmt.Sprintf("New password for %s: ", user))
	if err != nil {
		return nil, err
	}
	if err := checkPassword(pw); err != nil {
		return nil, err
	}
	again, err := read("Repeat it: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the two passwords differ")
	}
	return pw, nil
}

// bcryptPrefixes are the bcrypt variants berth accepts: what htpasswd -B,
// docker_auth's docs and Go's bcrypt write. $2x$ marks hashes made by a
// buggy implementation and is refused.
var bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}

// checkBcryptHash accepts a well-formed bcrypt hash of an accepted variant:
// "$2b$", a two-digit cost from bcrypt's minimum to auth.MaxPasswordCost,
// "$", and 53 characters of bcrypt's base64 alphabet (salt and digest). The
// error names the scheme or the cost, never the hash.
func checkBcryptHash(hash string) error {
	scheme := hashScheme(hash)
	if scheme != "bcrypt" {
		return fmt.Errorf("%s, not bcrypt", scheme)
	}
	if len(hash) != bcryptHashLen || hash[6] != '$' || strings.Trim(hash[7:], cryptAlphabet) != "" {
		return errors.New("malformed bcrypt hash")
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return errors.New("malformed bcrypt hash")
	}
	if cost > auth.MaxPasswordCost {
		return fmt.Errorf("bcrypt cost %d, above berth's maximum of %d: re-hash with htpasswd -B -C %d or set it with berth user passwd", cost, auth.MaxPasswordCost, auth.PasswordCost)
	}
	return nil
}

// bcryptHashLen is the length of every bcrypt hash: "$2b$10$" and 53
// characters.
const bcryptHashLen = 60

// hashScheme names the password scheme of an htpasswd-style hash, for
// refusal messages: "bcrypt" for the accepted ones.
func hashScheme(hash string) string {
	for _, p := range bcryptPrefixes {
		if strings.HasPrefix(hash, p) {
			return "bcrypt"
		}
	}
	switch {
	case hash == "":
		return "empty password"
	case strings.HasPrefix(hash, "$apr1$"):
		return "MD5 ($apr1$)"
	case strings.HasPrefix(hash, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(hash, "$5$"):
		return "SHA-256-crypt ($5$)"
	case strings.HasPrefix(hash, "$6$"):
		return "SHA-512-crypt ($6$)"
	case strings.HasPrefix(hash, "$2"):
		return "an unsupported bcrypt variant"
	case strings.HasPrefix(hash, "$"):
		return "an unknown crypt scheme"
	case len(hash) == 13 && strings.Trim(hash, cryptAlphabet) == "":
		return "DES crypt"
	}
	return "plain text or an unknown scheme"
}

// cryptAlphabet is the base64 alphabet of crypt(3) hashes, bcrypt's too.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
