package integration

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestMirror_TokenAuthTLSUpstream: the upstream is a second berth with
// token auth over HTTPS (its own CA, from tls init), standing in for
// Docker Hub's bearer flow. The mirror signs in with the credentials it
// was given, trusts the CA it was given, never shows the password, and
// opens its namespace to anonymous pulls — by path prefix and by Docker's
// registry-mirrors names — while the rest of the registry stays closed.
func TestMirror_TokenAuthTLSUpstream(t *testing.T) {
	up, roots := startTLSServer(t, "--auth", "token")
	raw, err := os.ReadFile(filepath.Join(up.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	up.addUser(t, "puller", "puller-secret-4711")
	img, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	upRef, err := name.ParseReference(up.Addr+"/library/app:v1", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections) // else up's shutdown waits for it
	if err := remote.Write(upRef, img, remote.WithContext(t.Context()), remote.WithTransport(tr),
		remote.WithAuth(&authn.Basic{Username: "admin", Password: strings.TrimSpace(string(raw))})); err != nil {
		t.Fatalf("push upstream: %v", err)
	}

	b, _ := startAuthServer(t, "")
	ca := filepath.Join(up.Data, "tls", "ca.crt")
	b.berth(t, "puller-secret-4711\n", "mirror", "add", "hub", "--url", "https://"+up.Addr, "--user", "puller",
		"--password-stdin", "--ca", ca, "--anonymous", "--docker-hub")
	b.berth(t, "wrong-password\n", "mirror", "add", "bad", "--url", "https://"+up.Addr, "--user", "puller", "--password-stdin", "--ca", ca)
	if out := b.berth(t, "", "mirror", "test", "hub"); !strings.Contains(out, "200") {
		t.Errorf("mirror test hub: %q", out)
	}
	if out, errOut, err := runBerth(t, t.Context(), nil, "--data", b.Data, "mirror", "test", "bad"); err == nil {
		t.Errorf("mirror test with a wrong password succeeded: %s", out)
	} else if !strings.Contains(errOut, "bad") {
		t.Errorf("mirror test bad: stderr %q does not name the mirror", errOut)
	}
	list := b.berth(t, "", "mirror", "list")
	if !strings.Contains(list, "hub") || !strings.Contains(list, "puller") || strings.Contains(list, "puller-secret") {
		t.Errorf("mirror list:\n%s", list)
	}

	for _, r := range []string{"hub/library/app:v1", "library/app:v1"} {
		got, _, err := pullAll(t.Context(), b.ref(t, r), remoteOptions(t)...)
		if err != nil {
			t.Fatalf("anonymous pull of %s through the mirror: %v", r, err)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("validate %s: %v", r, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Errorf("%s: pulled %s, want %s", r, d, want)
		}
	}
	// Only the mirror is open: the rest needs a sign-in, and the mirror
	// with the wrong password says the upstream refused it.
	_, err = remote.Image(b.ref(t, "bad/library/app:v1"), withAuth(t, "admin", adminPassword(t, b))...)
	wantStatusCode(t, "pull through a mirror with a wrong upstream password", err, http.StatusForbidden)
	if err == nil || !strings.Contains(err.Error(), up.Addr) {
		t.Errorf("error %v does not name the upstream", err)
	}
	_, err = remote.Image(b.ref(t, "bad/library/app:v1"), remoteOptions(t)...)
	wantStatusCode(t, "anonymous pull of a mirror not opened to it", err, http.StatusUnauthorized)
	if strings.Contains(b.Log(), "puller-secret") {
		t.Errorf("the server log shows the upstream password")
	}
}

func adminPassword(t testing.TB, s *server) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}
