package ui_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/admin"
	"github.com/berth-registry/berth/fixtures"
	"github.com/berth-registry/berth/internal/storetest"
	"github.com/berth-registry/berth/server"
	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
	"github.com/berth-registry/berth/ui"
)

// TestDirectorySession_DirectoryDown: when a directory session's check is
// due and the directory refuses connections (a loopback port nobody
// listens on), the page is served on the groups of the last check for one
// more interval, then the session ends; a check time in the future (the
// clock went back) is no reason to trust it.
func TestDirectorySession_DirectoryDown(t *testing.T) {
	st := storetest.Open(t, t.TempDir())
	err := st.SetLDAPConfig(&store.LDAPConfig{URL: "ldap://" + fixtures.FreeLoopbackAddr(t), BaseDN: "dc=example,dc=org",
		UserFilter: "(uid=%s)", TimeoutSeconds: 1, UIRecheckSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.NewService(st, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var log storetest.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	web, err := ui.New(ui.Options{Store: st, Auth: svc, Admin: &admin.Env{Store: st}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, server.Config{UI: web, Auth: svc, Logger: logger})
	configID, _, err := svc.DirectorySettings()
	if err != nil || configID == "" {
		t.Fatalf("DirectorySettings: %q, %v", configID, err)
	}
	now := time.Now()
	signedIn := func(id string) bool {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
		req.AddCookie(&http.Cookie{Name: "berth_session", Value: id})
		resp, err := srv.App().Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		return strings.Contains(body.String(), `action="/ui/signout"`)
	}
	for _, tc := range []struct {
		name    string
		checked time.Time
		want    bool
	}{
		{"not due", now.Add(-10 * time.Second), true},
		{"due, within the grace", now.Add(-90 * time.Second), true},
		{"due again, within the grace (no new attempt for 10 s)", now.Add(-100 * time.Second), true},
		{"past the grace", now.Add(-130 * time.Second), false},
		{"checked in the future", now.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			rec := store.UISession{User: "bob", Expires: now.Add(time.Hour), Directory: true, Groups: []string{"cn=ops"}, Checked: tc.checked, LDAPConfig: configID}
			if err := st.CreateUISession(id, rec, now); err != nil {
				t.Fatal(err)
			}
			if got := signedIn(id); got != tc.want {
				t.Fatalf("signed in: %v, want %v; log:\n%s", got, tc.want, log.String())
			}
			_, err := st.UISession(id, time.Now())
			if kept := err == nil; kept != tc.want {
				t.Errorf("session record kept: %v (%v), want %v", kept, err, tc.want)
			}
		})
	}
	if !strings.Contains(log.String(), "going on with the groups of the last check") || !strings.Contains(log.String(), "UI session of an LDAP user ended") {
		t.Errorf("the log says neither the grace nor the end:\n%s", log.String())
	}
}
