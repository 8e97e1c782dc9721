package admin

import (
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestNewPasswordHash_Stdin(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string // the password the hash must check against
		wantErr string
	}{
		{"newline dropped", "s3cret-pw\n", "s3cret-pw", ""},
		{"crlf dropped", "s3cret-pw\r\n", "s3cret-pw", ""},
		{"no newline", "s3cret-pw", "s3cret-pw", ""},
		{"only one newline dropped", "s3cret-pw\n\n", "s3cret-pw\n", ""},
		{"spaces kept", " s3 cret pw ", " s3 cret pw ", ""},
		{"8 characters", "12345678", "12345678", ""},
		{"1 character", "x\n", "", "the password is 1 characters long; berth needs at least 8"},
		{"7 characters", "1234567", "", "the password is 7 characters long; berth needs at least 8"},
		{"72 bytes", strings.Repeat("p", 72) + "\n", strings.Repeat("p", 72), ""},
		{"73 bytes", strings.Repeat("p", 73), "", "the password is 73 bytes long, more than bcrypt's limit of 72"},
		{"empty", "", "", "the password is empty"},
		{"just a newline", "\n", "", "the password is empty"},
		{"a file, not a password", strings.Repeat("p", maxPasswordInput+1), "", "stdin holds more than 4096 bytes: not a password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hash, err := NewPasswordHash(strings.NewReader(tc.input), true, nil, "alice")
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("NewPasswordHash(%q) = %v, want error %q", tc.input, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPasswordHash(%q): %v", tc.input, err)
			}
			if err := bcrypt.CompareHashAndPassword(hash, []byte(tc.want)); err != nil {
				t.Errorf("NewPasswordHash(%q): the hash does not check against %q: %v", tc.input, tc.want, err)
			}
			if err := checkBcryptHash(string(hash)); err != nil {
				t.Errorf("the hash made is refused by the commands: %v", err)
			}
		})
	}
}

// TestNewPasswordHash_NoTerminal: without --password-stdin, a stdin that is
// not a terminal is an error that says what to do, not a hang.
func TestNewPasswordHash_NoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, in := range []io.Reader{f, strings.NewReader("pw\n")} {
		_, err := NewPasswordHash(in, false, &strings.Builder{}, "alice")
		if err == nil || !strings.Contains(err.Error(), "use --password-stdin") {
			t.Errorf("prompting on %T: %v", in, err)
		}
	}
}

func TestCheckBcryptHash(t *testing.T) {
	tests := []struct {
		name, hash, wantErr string
	}{
		{"2a", hash2a, ""},
		{"2b", hash2b, ""},
		{"2y", hash2y, ""},
		{"cost too high", "$2a$32$" + hash2a[7:], "malformed bcrypt hash"},
		{"cost at the maximum", "$2a$14$" + hash2a[7:], ""},
		{"cost above the maximum", "$2a$15$" + hash2a[7:], "bcrypt cost 15, above berth's maximum of 14: re-hash with htpasswd -B -C 10 or set it with berth user passwd"},
		{"cost 31", "$2y$31$" + hash2a[7:], "bcrypt cost 31, above berth's maximum of 14: re-hash with htpasswd -B -C 10 or set it with berth user passwd"},
		{"cost not digits", "$2a$x5$" + hash2a[7:], "malformed bcrypt hash"},
		{"too short", hash2a[:59], "malformed bcrypt hash"},
		{"too long", hash2a + "x", "malformed bcrypt hash"},
		{"bad character", hash2a[:59] + "!", "malformed bcrypt hash"},
		{"md5", hashAPR1, "MD5 ($apr1$), not bcrypt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkBcryptHash(tc.hash)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("checkBcryptHash(%q) = %q, want %q", tc.hash, got, tc.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
