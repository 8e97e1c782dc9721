package admin

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-registry/berth/store"
)

// Real hashes of the password "secret": bcrypt from Go's bcrypt (the $2b$
// and $2y$ variants, from OpenBSD and `htpasswd -B`, are the same algorithm
// under another name), MD5 ($apr1$), SHA-1 ({SHA}) and DES crypt as
// `htpasswd -m`, `-s` and `-d` write them.
const (
	hash2a    = "$2a$05$HmuYrBSjICbPRISSKmMXXO69x7gbO1wMbqhbhr06osTZ.cjQI5P3a"
	hash2b    = "$2b$04$erf0tmelkqqOGDYT9S3jLuxJWVoBoDN/P.S.XstJipgX2sP8Fb1X."
	hash2y    = "$2y$04$erf0tmelkqqOGDYT9S3jLuxJWVoBoDN/P.S.XstJipgX2sP8Fb1X."
	hashAPR1  = "$apr1$RIlG9dFK$yiISz72t4QTkl7G0SIwXc."
	hashSHA   = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="
	hashCrypt = "x6Idip7Rl3txs"
)

func TestParseHtpasswd(t *testing.T) {
	tests := []struct {
		name        string
		input       string
		wantUsers   []string
		wantRefused []string
	}{
		{"bcrypt variants", "a:" + hash2y + "\nb:" + hash2a + "\nc:" + hash2b + "\n", []string{"a", "b", "c"}, nil},
		{"crlf, blanks and comments", "# users\r\n\r\nalice:" + hash2y + "\r\n   \n", []string{"alice"}, nil},
		{"nginx comment field", "alice:" + hash2y + ":Alice Liddell\n", []string{"alice"}, nil},
		{"no final newline", "alice:" + hash2y, []string{"alice"}, nil},
		{"md5", "bob:" + hashAPR1, nil, []string{"bob (line 1: MD5 ($apr1$), not bcrypt)"}},
		{"sha1", "bob:" + hashSHA, nil, []string{"bob (line 1: SHA-1 ({SHA}), not bcrypt)"}},
		{"des crypt", "bob:" + hashCrypt, nil, []string{"bob (line 1: DES crypt, not bcrypt)"}},
		{"sha512 crypt", "bob:$6$salt$abc", nil, []string{"bob (line 1: SHA-512-crypt ($6$), not bcrypt)"}},
		{"plain", "bob:hunter2", nil, []string{"bob (line 1: plain text or an unknown scheme, not bcrypt)"}},
		{"empty hash", "bob:", nil, []string{"bob (line 1: empty password, not bcrypt)"}},
		{"buggy bcrypt variant", "bob:$2x$04$erf0tmelkqqOGDYT9S3jLuxJWVoBoDN/P.S.XstJipgX2sP8Fb1X.", nil, []string{"bob (line 1: an unsupported bcrypt variant, not bcrypt)"}},
		{"bcrypt cost above the maximum", "bob:$2y$17$" + hash2y[7:], nil, []string{"bob (line 1: bcrypt cost 17, above berth's maximum of 14: re-hash with htpasswd -B -C 10 or set it with berth user passwd)"}},
		{"truncated bcrypt", "bob:$2y$05$short", nil, []string{"bob (line 1: malformed bcrypt hash)"}},
		{"no colon", "bob\n", nil, []string{"line 1 (no ':' between name and hash)"}},
		{"empty name", ":" + hash2y, nil, []string{"line 1 (invalid user name: empty)"}},
		{"control character", "b\x01ob:" + hash2y, nil, []string{`line 1 (invalid user name: "b\x01ob": character "\x01" at offset 1 is not allowed (only a-z, 0-9, '.', '_', '-'))`}},
		{"upper case", "Bob:" + hash2y, nil, []string{`line 1 (invalid user name: "Bob": upper-case letter "B" at offset 0 (names are lower-case))`}},
		{"repeated name", "alice:" + hash2y + "\nalice:" + hash2a, []string{"alice"}, []string{"alice (line 2: repeats line 1)"}},
		{"mixed", "alice:" + hash2y + "\nbob:" + hashAPR1 + "\ncarol:" + hash2b + "\ndave:" + hashSHA + "\n",
			[]string{"alice", "carol"}, []string{"bob (line 2: MD5 ($apr1$), not bcrypt)", "dave (line 4: SHA-1 ({SHA}), not bcrypt)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users, refused, err := parseHtpasswd(strings.NewReader(tc.input))
			if err != nil {
				t.Fatalf("parseHtpasswd(%q): %v", tc.input, err)
			}
			var gotUsers, gotRefused []string
			for _, u := range users {
				gotUsers = append(gotUsers, u.Name)
			}
			for _, r := range refused {
				gotRefused = append(gotRefused, r.String())
			}
			if !reflect.DeepEqual(gotUsers, tc.wantUsers) || !reflect.DeepEqual(gotRefused, tc.wantRefused) {
				t.Errorf("parseHtpasswd(%q)\n got users %q, refused %q\nwant users %q, refused %q", tc.input, gotUsers, gotRefused, tc.wantUsers, tc.wantRefused)
			}
		})
	}
}

func TestParseHtpasswd_LineTooLong(t *testing.T) {
	input := "alice:" + strings.Repeat("x", maxHtpasswdLine)
	if _, _, err := parseHtpasswd(strings.NewReader(input)); err == nil {
		t.Errorf("a %d-byte line was accepted", len(input))
	}
}

func TestUserImportHtpasswd(t *testing.T) {
	tw := newTwin(t)
	bobOld := testHash(t, "old")
	both(t, tw, UserAddOp, UserAdd{Name: "bob", NewPassword: NewPassword{PasswordHash: bobOld}}, "")
	file := strings.Join([]string{
		"# migrated from nginx",
		"alice:" + hash2y,
		"bob:" + hash2a,
		"carol:" + hashAPR1,
		"dave:" + hashSHA,
		"erin:" + hash2b,
		"garbage",
	}, "\n") + "\n"

	// Without --overwrite bob keeps his password, and the import says so.
	refused := both(t, tw, UserImportHtpasswdOp, UserImportHtpasswd{File: "-"}, "bob:"+hash2a+"\n")
	if refused.out != "" || refused.err != "imported 0, refused 1: bob (line 1: exists with another password; --overwrite replaces it)" {
		t.Errorf("import over bob without --overwrite: got\n%s", refused)
	}
	if u, _ := tw.remote.User("bob"); string(u.PasswordHash) != bobOld {
		t.Errorf("bob's password changed without --overwrite")
	}

	got := both(t, tw, UserImportHtpasswdOp, UserImportHtpasswd{File: "-", Overwrite: true}, file)
	wantOut := "added user alice\nupdated the password of bob\nadded user erin\n"
	wantErr := "imported 3, refused 3: carol (line 4: MD5 ($apr1$), not bcrypt), dave (line 5: SHA-1 ({SHA}), not bcrypt), line 7 (no ':' between name and hash)"
	if got.out != wantOut || got.err != wantErr {
		t.Errorf("first import: got\n%s\nwant stdout %q\nerror %q", got, wantOut, wantErr)
	}
	for _, secret := range []string{hashAPR1, hashSHA, "RIlG9dFK", "5en6G6Me"} {
		if strings.Contains(got.err+got.out, secret) {
			t.Errorf("output shows a refused hash %q", secret)
		}
	}

	again := both(t, tw, UserImportHtpasswdOp, UserImportHtpasswd{File: "-"}, "alice:"+hash2y+"\n")
	if again.out != "unchanged alice\n" || again.err != "" {
		t.Errorf("second import: got\n%s", again)
	}
	u, err := tw.remote.User("bob")
	if err != nil || string(u.PasswordHash) != hash2a || u.Admin {
		t.Errorf("bob after import: %+v, %v", u, err)
	}
	if _, err := tw.remote.User("carol"); err == nil {
		t.Error("carol, with an MD5 hash, was imported")
	}
}

// FuzzParseHtpasswd: parsing never panics; every accepted entry has a valid
// user name and a well-formed bcrypt hash without ':'; every line that is
// neither blank nor a comment is accepted or refused, never dropped; and the
// accepted entries, written out again, parse to themselves.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:" + hash2y + "\nbob:" + hashAPR1 + "\n")
	f.Add("# c\n\nx:" + hash2a + ":comment\r\n")
	f.Add("a:b:c\n:\n\x00:\xff\n")
	f.Fuzz(func(t *testing.T, input string) {
		users, refused, err := parseHtpasswd(strings.NewReader(input))
		if err != nil {
			return // only a line over maxHtpasswdLine
		}
		for _, u := range users {
			if store.ValidateUserName(u.Name) != nil || strings.Contains(u.Hash, ":") || checkBcryptHash(u.Hash) != nil {
				t.Fatalf("accepted %q:%q", u.Name, u.Hash)
			}
		}
		if got, want := len(users)+len(refused), countEntryLines(input); got != want {
			t.Fatalf("%d accepted + refused for %d entry lines", got, want)
		}
		var out strings.Builder
		for _, u := range users {
			fmt.Fprintf(&out, "%s:%s\n", u.Name, u.Hash)
		}
		again, refusedAgain, err := parseHtpasswd(strings.NewReader(out.String()))
		if err != nil || len(refusedAgain) != 0 || len(again) != len(users) {
			t.Fatalf("reparse of %q: %d users, refused %v, %v", out.String(), len(again), refusedAgain, err)
		}
		for i := range again {
			if again[i].Name != users[i].Name || again[i].Hash != users[i].Hash {
				t.Fatalf("round trip changed %q:%q into %q:%q", users[i].Name, users[i].Hash, again[i].Name, again[i].Hash)
			}
		}
	})
}

// countEntryLines counts the lines parseHtpasswd must account for, by the
// rules of bufio.ScanLines.
func countEntryLines(input string) int {
	n := 0
	lines := strings.Split(input, "\n")
	if strings.HasSuffix(input, "\n") {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l != "" && l[0] != '#' {
			n++
		}
	}
	return n
}
