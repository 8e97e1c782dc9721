package admin

import (
	"strings"
	"testing"
)

func TestWebhookOps_SameBothWays(t *testing.T) {
	tw := newTwin(t)
	add := func(mod func(*WebhookAdd)) func() result {
		req := WebhookAddOp.Defaults
		req.Name, req.URL, req.SecretStdin = "ci", "http://127.0.0.1:9/hook", true
		if mod != nil {
			mod(&req)
		}
		return func() result { return both(t, tw, WebhookAddOp, req, "the-secret\n") }
	}
	steps := []struct {
		name    string
		run     func() result
		wantOut string
		wantErr string
	}{
		{"add", add(func(r *WebhookAdd) { r.Headers = []string{"Authorization=Bearer xyz"}; r.Repos = "team/*" }), "added webhook ci\n", ""},
		{"add again", add(nil), "", "webhook ci exists (berth webhook del ci first)"},
		{"add bad url", add(func(r *WebhookAdd) { r.Name, r.URL = "x", "ftp://h" }), "", `invalid webhook: url "ftp://h": must start with http:// or https://`},
		{"add bad event", add(func(r *WebhookAdd) { r.Name, r.Events = "x", "push,mount" }), "", `invalid webhook: event "mount": choose from push, delete, pull`},
		{"add bad header", add(func(r *WebhookAdd) { r.Name, r.Headers = "x", []string{"novalue"} }), "", `--header "novalue": want K=V`},
		{"list", func() result { return both(t, tw, WebhookListOp, WebhookList{}, "") },
			"NAME  URL                      EVENTS       REPOS   FORMAT        HEADERS        TIMEOUT  MAX AGE\n" +
				"ci    http://127.0.0.1:9/hook  push,delete  team/*  distribution  Authorization  10s      24h0m0s\n", ""},
		{"status", func() result { return both(t, tw, WebhookStatusOp, WebhookStatus{}, "") },
			"NAME  PENDING  OLDEST  DEAD  DELIVERED  LAST SUCCESS  LAST ERROR\n" +
				"ci    0        -       0     0          never         -\n", ""},
		{"status unknown", func() result { return both(t, tw, WebhookStatusOp, WebhookStatus{Name: "nope"}, "") }, "", "no webhook nope (see berth webhook list)"},
		{"replay neither", func() result { return both(t, tw, WebhookReplayOp, WebhookReplay{Name: "ci"}, "") }, "", "usage: berth webhook replay NAME ID...|--all"},
		{"replay all of none", func() result { return both(t, tw, WebhookReplayOp, WebhookReplay{Name: "ci", All: true}, "") }, "queued 0 dead letters for ci again\n", ""},
		{"replay unknown id", func() result {
			return both(t, tw, WebhookReplayOp, WebhookReplay{Name: "ci", IDs: []string{"abc"}}, "")
		}, "", "ci has no dead letter abc"},
		{"test unreachable", func() result { return both(t, tw, WebhookTestOp, WebhookTest{Name: "ci"}, "") }, "", "webhook ci: test delivery to http://127.0.0.1:9/hook failed: "},
		{"del", func() result { return both(t, tw, WebhookDelOp, WebhookDel{Name: "ci"}, "") }, "deleted webhook ci\n", ""},
		{"del again", func() result { return both(t, tw, WebhookDelOp, WebhookDel{Name: "ci"}, "") }, "", "no webhook ci (see berth webhook list)"},
	}
	for _, st := range steps {
		got := st.run()
		if got.out != st.wantOut || !strings.HasPrefix(got.err, st.wantErr) || (st.wantErr == "") != (got.err == "") {
			t.Errorf("%s: got\n%s\nwant stdout\n%serror: %s", st.name, got, st.wantOut, st.wantErr)
		}
		if strings.Contains(got.out+got.errOut+got.err, "the-secret") || strings.Contains(got.out, "xyz") {
			t.Errorf("%s: the output shows a secret or a header value:\n%s", st.name, got)
		}
	}
}

func TestWebhookAdd_GeneratedSecretShownOnce(t *testing.T) {
	dir := t.TempDir()
	req := WebhookAddOp.Defaults
	req.Name, req.URL = "ci", "https://ci.example/hook"
	got := call(t, dir, WebhookAddOp, req, "")
	secret, ok := strings.CutPrefix(strings.TrimPrefix(got.out, "added webhook ci\n"), "signing secret (shown only now): ")
	secret = strings.TrimSpace(secret)
	if got.err != "" || !ok || len(secret) != 64 {
		t.Fatalf("add without --secret-stdin should print a 64-hex-digit secret:\n%s", got)
	}
	list := call(t, dir, WebhookListOp, WebhookList{}, "")
	status := call(t, dir, WebhookStatusOp, WebhookStatus{Name: "ci"}, "")
	if strings.Contains(list.out+status.out, secret) {
		t.Errorf("list or status shows the secret:\n%s\n%s", list, status)
	}
}
