package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpen_RefusesInvalidRecords: Open refuses a meta.db whose user
// records let one user sign in as another or whose repository names leave
// the grammar, naming the record; ValidateRecords (restore) refuses those
// and every other kind; a valid store passes both.
func TestOpen_RefusesInvalidRecords(t *testing.T) {
	userAs := func(key, name string) func(*testing.T, *Store) {
		return func(t *testing.T, s *Store) {
			v, err := encode(User{Name: name, PasswordHash: []byte("hash"), Epoch: 9})
			if err != nil {
				t.Fatal(err)
			}
			dbPut(t, s, bucketUsers, []byte(key), v)
		}
	}
	for _, tc := range []struct {
		name    string
		break_  func(*testing.T, *Store)
		atOpen  bool // Open refuses it too, not only ValidateRecords
		wantErr string
	}{
		{"Valid", func(*testing.T, *Store) {}, false, ""},
		{"UserKeyIsNotItsName", userAs("alice", "admin"), true, `users "alice": its record is for user "admin"`},
		{"UserNameOutsideTheGrammar", userAs("Bad Name", "Bad Name"), false, `users "Bad Name": invalid user name`},
		{"RepositoryOutsideTheGrammar", func(t *testing.T, s *Store) { dbPut(t, s, bucketRepos, []byte("../../../etc"), timeValue(s.now())) }, true, `repos "../../../etc"`},
		{"TagOutsideTheGrammar", func(t *testing.T, s *Store) {
			dbPut(t, s, bucketTags, key("app", "-x"), []byte("sha256:"+strings.Repeat("a", 64)))
		}, false, `tags "app\x00-x"`},
		{"TagValueNotADigest", func(t *testing.T, s *Store) { dbPut(t, s, bucketTags, key("app", "v1"), []byte("latest")) }, false, `tags "app\x00v1"`},
		{"RuleUnreadable", func(t *testing.T, s *Store) { dbPut(t, s, bucketRules, positionKey(0), []byte{9}) }, false, `rules "\x00\x00\x00\x00\x00\x00\x00\x00"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(t, s)
			err = s.ValidateRecords(nil)
			s.Close()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateRecords of a valid store: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRecordInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateRecords = %v, want %s", err, tc.wantErr)
			}
			s, err = Open(dir, Options{})
			if tc.atOpen != (err != nil) {
				t.Errorf("Open = %v, want refused: %v", err, tc.atOpen)
			}
			if err == nil {
				s.Close()
			} else if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Open's error %q does not name %s", err, tc.wantErr)
			}
		})
	}
}

// TestOpen_MustExist: with MustExist, Open refuses a directory without
// meta.db and creates nothing.
func TestOpen_MustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := Open(dir, Options{MustExist: true}); !errors.Is(err, ErrNotDataDir) {
		t.Fatalf("Open(MustExist) of a missing directory = %v, want ErrNotDataDir", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(MustExist) created %s", dir)
	}
}
