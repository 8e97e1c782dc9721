package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

func TestEnsureInitialAdmin(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	var out bytes.Buffer
	if err := EnsureInitialAdmin(s, &out, true); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^created user admin with password ([0-9A-Za-z]{24})\n\(also in (.+); change it with: berth --data (.+) user passwd admin\)\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("printed %q", out.String())
	}
	password, path := m[1], m[2]
	if path != filepath.Join(s.Dir(), initialPasswordFile) || m[3] != s.Dir() {
		t.Errorf("printed path %s, data %s", path, m[3])
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != password+"\n" {
		t.Errorf("%s holds %q, %v; want the printed password", path, data, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, %v; want 0600", path, fi.Mode(), err)
	}
	u, err := s.User("admin")
	if err != nil || !u.Admin {
		t.Fatalf("admin user: %+v, %v", u, err)
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)); err != nil {
		t.Errorf("the printed password does not sign in: %v", err)
	}

	out.Reset()
	if err := EnsureInitialAdmin(s, &out, true); err != nil || out.Len() != 0 {
		t.Errorf("second call: %v, printed %q; want nothing", err, out.String())
	}
}

func TestEnsureInitialAdmin_UsersExist(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	if err := s.AddUser(store.User{Name: "alice", PasswordHash: []byte(hash2a)}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := EnsureInitialAdmin(s, &out, true); err != nil || out.Len() != 0 {
		t.Errorf("EnsureInitialAdmin = %v, printed %q; want nothing done", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), initialPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("password file: %v; want none", err)
	}
}

// TestEnsureInitialAdmin_ReplacesOpenFile: a password file left from an
// earlier admin (deleted since) with loose permissions is replaced, 0600.
func TestEnsureInitialAdmin_ReplacesOpenFile(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	path := filepath.Join(s.Dir(), initialPasswordFile)
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := EnsureInitialAdmin(s, &bytes.Buffer{}, true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != initialPasswordLen+1 {
		t.Errorf("%s: %v, %v", path, fi.Mode(), err)
	}
}

func TestEnsureInitialAdmin_Concurrent(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = EnsureInitialAdmin(s, &outs[i], true)
		}()
	}
	wg.Wait()
	printed := 0
	for i := range outs {
		if errs[i] != nil {
			t.Errorf("call %d: %v", i, errs[i])
		}
		if strings.Contains(outs[i].String(), "created user admin") {
			printed++
		}
	}
	if n, _ := s.UserCount(); n != 1 || printed != 1 {
		t.Errorf("%d users, %d passwords printed; want 1 and 1", n, printed)
	}
}

func TestRandomString(t *testing.T) {
	seen := make(map[string]bool)
	counts := make(map[rune]int)
	for range 200 {
		p := randomString(initialPasswordLen, base62)
		if len(p) != initialPasswordLen || strings.Trim(p, base62) != "" || seen[p] {
			t.Fatalf("password %q: wrong length, alphabet, or repeated", p)
		}
		seen[p] = true
		for _, r := range p {
			counts[r]++
		}
	}
	// 4800 draws over 62 letters: about 77 each. A letter never drawn, or
	// drawn three times too often, means a broken draw, not bad luck.
	for _, r := range base62 {
		if counts[r] == 0 || counts[r] > 3*4800/62 {
			t.Errorf("letter %q drawn %d times in 4800", r, counts[r])
		}
	}
}

// TestEnsureInitialAdmin_NotATerminal: the password stays out of output
// that is not a terminal (a journal, docker logs); the message says where
// it is.
func TestEnsureInitialAdmin_NotATerminal(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	var out bytes.Buffer
	if err := EnsureInitialAdmin(s, &out, false); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), initialPasswordFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(data))
	want := "created user admin; its password is in " + path + " (readable by this user only)\nchange it with: berth --data " + s.Dir() + " user passwd admin\n"
	if out.String() != want || strings.Contains(out.String(), password) {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

// TestEnsureInitialAdmin_FileUnwritable: when the password file cannot be
// written, no admin is created and no file claims to hold a password.
func TestEnsureInitialAdmin_FileUnwritable(t *testing.T) {
	s := storetest.Open(t, t.TempDir())
	path := filepath.Join(s.Dir(), initialPasswordFile)
	// A non-empty directory in its place: the write fails as on a full disk.
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := EnsureInitialAdmin(s, &out, true)
	if err == nil || !strings.Contains(err.Error(), "no user created") {
		t.Fatalf("EnsureInitialAdmin = %v, want a failure saying no user was created", err)
	}
	if n, _ := s.UserCount(); n != 0 || out.Len() != 0 {
		t.Errorf("%d users, printed %q; want none and nothing", n, out.String())
	}
}
