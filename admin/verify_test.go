package admin

import (
	"os"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/store"
)

// TestVerify_SameBothWays breaks the same blob in a stopped and a serving
// registry: verify reports it with the same words both ways, --repair
// quarantines it, verify then asks for a re-push, and the re-push heals.
func TestVerify_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	fillTwin(t, tw)
	clean := both(t, tw, VerifyOp, Verify{}, "")
	if clean.err != "" || !strings.HasSuffix(clean.out, ": no faults\n") {
		t.Fatalf("verify of a whole store:\n%s", clean)
	}

	layer := store.DigestOf(store.SHA256, []byte("app layer"))
	for _, dir := range []string{tw.local, tw.remote.Dir()} {
		path := store.BlobPathIn(dir, layer)
		if err := os.WriteFile(path, []byte("app lAyer"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	found := both(t, tw, VerifyOp, Verify{}, "")
	for _, want := range []string{
		"corrupt blob " + string(layer) + ": its content hashes to ",
		"  images: app:v1\n",
		": 1 fault\n",
	} {
		if !strings.Contains(found.out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, found)
		}
	}
	if !strings.Contains(found.err, "1 fault found") {
		t.Errorf("verify error %q, want it to count the fault", found.err)
	}

	repaired := both(t, tw, VerifyOp, Verify{Repair: true}, "")
	if !strings.Contains(repaired.out, "  repaired: moved to quarantine/sha256/"+layer.Hex()) || repaired.err == "" {
		t.Fatalf("verify --repair:\n%s", repaired)
	}
	broken := both(t, tw, VerifyOp, Verify{}, "")
	if !strings.Contains(broken.out, "broken manifest app@") || !strings.Contains(broken.out, "  images: app:v1\n") {
		t.Fatalf("verify after repair should ask for a re-push of app:v1:\n%s", broken)
	}

	local, err := store.Open(tw.local, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.PushImage(t, local, "app", "v1", nil, "shared layer", "app layer")
	local.Close()
	storetest.PushImage(t, tw.remote, "app", "v1", nil, "shared layer", "app layer")
	if healed := both(t, tw, VerifyOp, Verify{}, ""); healed.err != "" {
		t.Fatalf("verify after the re-push:\n%s", healed)
	}
}
