package integration

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-registry/berth/backup"
)

// Backups carry DATA/tls (20.1); verify and restore check manifest bodies
// and records (20.9); restore refuses invalid records (20.10).

// TestBackup_CarriesTLS: a backup holds DATA/tls, so after `restore
// --force` `serve --tls` works with the same CA clients already trust; a
// restore into a new directory brings the CA key back with mode 0600; and a
// backup from before `tls init` does not take DATA/tls away.
func TestBackup_CarriesTLS(t *testing.T) {
	s, roots := startTLSServer(t)
	caKey, err := os.ReadFile(filepath.Join(s.Data, "tls", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(t.TempDir(), "full.tar.zst")
	s.berth(t, "", "backup", "--output", full)
	s.stop(t)

	out := s.berth(t, "", "restore", "--force", "--input", full)
	if !strings.Contains(out, "restored DATA/tls") {
		t.Errorf("restore --force:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(s.Data, "tls", "ca.key")); !bytes.Equal(got, caKey) {
		t.Fatalf("ca.key after restore --force differs from the one clients trust")
	}
	serveTLS(t, s.Data, roots, "--auth", "none")

	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, errOut, err := runBerth(t, t.Context(), nil, "--data", fresh, "restore", "--input", full); err != nil {
		t.Fatalf("restore into a new directory: %v\n%s", err, errOut)
	}
	fi, err := os.Stat(filepath.Join(fresh, "tls", "ca.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored ca.key: %v %v", fi, err)
	}

	// A backup without DATA/tls, restored with --force over a registry
	// that has one, keeps it.
	plain := startRegistry(t, "")
	old := filepath.Join(t.TempDir(), "old.tar.zst")
	plain.berth(t, "", "backup", "--output", old)
	stopRegistry(t, plain)
	plain.berth(t, "", "tls", "init", "--host", registryHost+",127.0.0.1")
	before, _ := os.ReadFile(filepath.Join(plain.Data, "tls", "ca.key"))
	out = plain.berth(t, "", "restore", "--force", "--input", old)
	if !strings.Contains(out, "kept from the replaced data directory, which no backup holds: tls") {
		t.Errorf("restore --force of a backup without tls:\n%s", out)
	}
	if after, err := os.ReadFile(filepath.Join(plain.Data, "tls", "ca.key")); err != nil || !bytes.Equal(after, before) {
		t.Errorf("restore --force destroyed DATA/tls: %v", err)
	}
}

// manifestValue splits a manifests value into its head, as a map with the
// JSON fields and "created" and "mediaType", and its body; joinManifestValue
// puts them together again.
func manifestValue(t *testing.T, v []byte) (head map[string]any, body []byte) {
	t.Helper()
	// Schema 2 (store/records.go): version 2, head length, then the head:
	// created, media type length and media type, JSON of the rest.
	if v[0] != 2 {
		t.Fatalf("manifest record version %d, want 2", v[0])
	}
	n := binary.BigEndian.Uint32(v[1:5])
	h := v[5 : 5+n]
	m := binary.BigEndian.Uint16(h[8:10])
	if err := json.Unmarshal(h[10+m:], &head); err != nil {
		t.Fatal(err)
	}
	head["created"] = int64(binary.BigEndian.Uint64(h[:8]))
	head["mediaType"] = string(h[10 : 10+m])
	return head, slices.Clone(v[5+n:])
}

func joinManifestValue(t *testing.T, head map[string]any, body []byte) []byte {
	t.Helper()
	rest := maps.Clone(head)
	created, mediaType := rest["created"].(int64), rest["mediaType"].(string)
	delete(rest, "created")
	delete(rest, "mediaType")
	js, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	h := binary.BigEndian.AppendUint64(nil, uint64(created))
	h = binary.BigEndian.AppendUint16(h, uint16(len(mediaType)))
	h = append(append(h, mediaType...), js...)
	out := binary.BigEndian.AppendUint32([]byte{2}, uint32(len(h)))
	return append(append(out, h...), body...)
}

// editMeta changes the meta.db of a stopped registry.
func editMeta(t *testing.T, data string, edit func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(data, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(edit); err != nil {
		t.Fatal(err)
	}
}

// manifestKey is the manifests key of repo@digest.
func manifestKey(repo, d string) []byte { return []byte(repo + "\x00" + d) }

// TestVerify_ManifestBodySwap swaps the bodies of two tagged manifests in
// meta.db: the registry would serve each under the other's digest. verify
// reports both, a backup of it does not restore, verify --repair makes them
// unknown, and a re-push heals the registry.
func TestVerify_ManifestBodySwap(t *testing.T) {
	s := startRegistry(t, "")
	a, b := mustImage(t, mustLayer(t, 2048)), mustImage(t, mustLayer(t, 2048))
	if err := remote.Write(s.ref(t, "app/a:v1"), a, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "app/a:v2"), b, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	stopRegistry(t, s)
	editMeta(t, s.Data, func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte("manifests"))
		va, vb := slices.Clone(m.Get(manifestKey("app/a", da.String()))), slices.Clone(m.Get(manifestKey("app/a", db.String())))
		ha, bodyA := manifestValue(t, va)
		hb, bodyB := manifestValue(t, vb)
		if err := m.Put(manifestKey("app/a", da.String()), joinManifestValue(t, ha, bodyB)); err != nil {
			return err
		}
		return m.Put(manifestKey("app/a", db.String()), joinManifestValue(t, hb, bodyA))
	})

	// Served, neither body goes out under the other's digest.
	s = startRegistry(t, s.Data)
	if _, err := remote.Image(s.ref(t, "app/a:v1"), remoteOptions(t)...); err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Errorf("pull of a swapped manifest: %v, want MANIFEST_UNKNOWN", err)
	}
	stopRegistry(t, s)
	out, _, err := runBerth(t, t.Context(), nil, "--data", s.Data, "verify")
	for _, d := range []string{da.String(), db.String()} {
		if err == nil || !strings.Contains(out, "corrupt manifest app/a@"+d+": its body in meta.db hashes to ") {
			t.Errorf("verify does not report the swapped body of %s: %v\n%s", d, err, out)
		}
	}
	archive := filepath.Join(t.TempDir(), "swapped.tar.zst")
	s.berth(t, "", "backup", "--output", archive)
	restored := filepath.Join(t.TempDir(), "restored")
	if _, errOut, err := runBerth(t, t.Context(), nil, "--data", restored, "restore", "--input", archive); err == nil || !strings.Contains(errOut, "its body in meta.db hashes to") {
		t.Errorf("restore of a backup with a swapped body: %v\n%s", err, errOut)
	}

	// verify --repair exits non-zero while faults remain to re-push.
	out, _, _ = runBerth(t, t.Context(), nil, "--data", s.Data, "verify", "--repair")
	if !strings.Contains(out, "its body saved to quarantine/manifests/sha256/"+da.Hex) {
		t.Errorf("verify --repair:\n%s", out)
	}
	s = startRegistry(t, s.Data)
	if _, err := remote.Image(s.ref(t, "app/a:v1"), remoteOptions(t)...); err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Errorf("pull of a repaired manifest: %v, want MANIFEST_UNKNOWN", err)
	}
	if err := remote.Write(s.ref(t, "app/a:v1"), a, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(s.ref(t, "app/a:v2"), b, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	if out := s.berth(t, "", "verify"); !strings.Contains(out, "no faults") {
		t.Errorf("verify after the re-push:\n%s", out)
	}
	img, err := remote.Image(s.ref(t, "app/a:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("app/a:v1 after the re-push: %v", err)
	}
}

// TestVerify_ManifestRecordMismatch drops a layer from a tagged manifest's
// record (and its reverse index entry): gc would then delete the layer of a
// tagged image. verify reports it, --repair rebuilds the record from the
// body, and gc keeps the layer.
func TestVerify_ManifestRecordMismatch(t *testing.T) {
	s := startRegistry(t, "")
	layer := mustLayer(t, 4096)
	img := mustImage(t, layer)
	if err := remote.Write(s.ref(t, "app/x:v1"), img, remoteOptions(t)...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ld, _ := layer.Digest()
	stopRegistry(t, s)
	editMeta(t, s.Data, func(tx *bolt.Tx) error {
		m := tx.Bucket([]byte("manifests"))
		k := manifestKey("app/x", d.String())
		head, body := manifestValue(t, slices.Clone(m.Get(k)))
		var kept []any
		for _, b := range head["blobs"].([]any) {
			if b != ld.String() {
				kept = append(kept, b)
			}
		}
		head["blobs"] = kept
		if err := tx.Bucket([]byte("refs")).Delete([]byte("app/x\x00" + ld.String() + "\x00" + d.String())); err != nil {
			return err
		}
		return m.Put(k, joinManifestValue(t, head, body))
	})
	out, _, err := runBerth(t, t.Context(), nil, "--data", s.Data, "verify")
	if err == nil || !strings.Contains(out, "corrupt manifest app/x@"+d.String()+": its record lists blobs") {
		t.Errorf("verify does not report the record: %v\n%s", err, out)
	}
	out, _, _ = runBerth(t, t.Context(), nil, "--data", s.Data, "verify", "--repair")
	if !strings.Contains(out, "its record rebuilt from its body") {
		t.Errorf("verify --repair:\n%s", out)
	}
	if out := s.berth(t, "", "verify"); !strings.Contains(out, "no faults") {
		t.Errorf("verify after repair:\n%s", out)
	}
	s.berth(t, "", "gc", "--grace", "0s")
	s = startRegistry(t, s.Data)
	pulled, err := remote.Image(s.ref(t, "app/x:v1"), remoteOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("app/x:v1 after repair and gc: %v", err)
	}
}

// rewriteBackup copies the backup in to out with its meta.db changed by
// edit, the header's meta.db size adjusted: an archive a restore must judge
// by its records, since every other check passes.
func rewriteBackup(t *testing.T, in, out string, edit func(tx *bolt.Tx) error) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{h.Name, data})
	}
	meta := filepath.Join(t.TempDir(), "meta.db")
	if err := os.WriteFile(meta, entries[1].data, 0o600); err != nil {
		t.Fatal(err)
	}
	editMeta(t, filepath.Dir(meta), edit)
	if entries[1].data, err = os.ReadFile(meta); err != nil {
		t.Fatal(err)
	}
	var hdr backup.Header
	if err := json.Unmarshal(entries[0].data, &hdr); err != nil {
		t.Fatal(err)
	}
	hdr.MetaSize = int64(len(entries[1].data))
	if entries[0].data, err = json.Marshal(hdr); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.data)), Mode: 0o600}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestore_RefusesInvalidRecords restores archives that pass every
// check of the archive itself but hold one invalid record each, of every
// kind: each is refused, naming the record, and nothing is restored.
func TestRestore_RefusesInvalidRecords(t *testing.T) {
	s, _ := startAuthServer(t, "")
	s.addUser(t, "alice", "alice-password")
	img := mustImage(t, mustLayer(t, 1024))
	admin, _ := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err := remote.Write(s.ref(t, "alice/app:v1"), img, append(remoteOptions(t), withAuth(t, "admin", strings.TrimSpace(string(admin)))...)...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	good := filepath.Join(t.TempDir(), "good.tar.zst")
	s.berth(t, "", "backup", "--output", good)

	put := func(bucket, k string, v []byte) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(k), v) }
	}
	userAs := func(key, name string) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			users := tx.Bucket([]byte("users"))
			var u map[string]any
			if err := json.Unmarshal(users.Get([]byte("alice"))[1:], &u); err != nil {
				return err
			}
			u["Name"] = name
			v, _ := json.Marshal(u)
			return users.Put([]byte(key), append([]byte{1}, v...))
		}
	}
	rule, _ := json.Marshal(map[string]any{"Account": "", "Name": "/[/", "Actions": []string{"pull"}})
	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
		want string
	}{
		{"RuleThatDoesNotCompile", put("rules", "\x00\x00\x00\x00\x00\x00\x00\x00", append([]byte{1}, rule...)), `access rule 1 (account "", name "/[/")`},
		{"UserNamedOtherThanItsKey", userAs("admin", "alice"), `users "admin": its record is for user "alice"`},
		{"UserNameInsideANamespace", userAs("alice/team", "alice/team"), `users "alice/team": invalid user name`},
		{"RepositoryOutsideTheGrammar", put("repos", "../../../etc", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}), `repos "../../../etc"`},
		{"RepositoryWithANewline", put("repos", "app\nx", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}), `repos "app\nx"`},
		{"TagOutsideTheGrammar", put("tags", "alice/app\x00-bad tag", []byte(d.String())), `tags "alice/app\x00-bad tag"`},
		{"TagNotADigest", put("tags", "alice/app\x00v2", []byte("../../etc/passwd")), `tags "alice/app\x00v2"`},
		{"LinkOutsideTheGrammar", put("links", "../x\x00"+d.String(), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}), `links "../x\x00`},
		{"ManifestKeyNotADigest", put("manifests", "alice/app\x00latest", []byte{1}), `manifests "alice/app\x00latest"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostile := filepath.Join(t.TempDir(), "hostile.tar.zst")
			rewriteBackup(t, good, hostile, tc.edit)
			target := filepath.Join(t.TempDir(), "restored")
			_, errOut, err := runBerth(t, t.Context(), nil, "--data", target, "restore", "--input", hostile)
			if err == nil || !strings.Contains(errOut, "meta.db holds an invalid record") || !strings.Contains(errOut, tc.want) {
				t.Errorf("restore: %v\n%s\nwant a refusal naming %s", err, errOut, tc.want)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s", target)
			}
		})
	}
	// The untouched archive, rewritten the same way, restores: the
	// refusals come from the records, not from the rewriting.
	same := filepath.Join(t.TempDir(), "same.tar.zst")
	rewriteBackup(t, good, same, func(*bolt.Tx) error { return nil })
	if _, errOut, err := runBerth(t, t.Context(), nil, "--data", filepath.Join(t.TempDir(), "ok"), "restore", "--input", same); err != nil {
		t.Errorf("restore of the rewritten good archive: %v\n%s", err, errOut)
	}
}
