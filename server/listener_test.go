package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestMaxConnectionsFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, DefaultMaxConnections},     // unknown
		{65536, DefaultMaxConnections}, // the systemd unit's LimitNOFILE
		{1024, 1024 - fdReserve},       // a shell's default
		{256, 128},                     // half, never below
		{DefaultMaxConnections + fdReserve, DefaultMaxConnections},
	} {
		if got := MaxConnectionsFor(tc.nofile); got != tc.want {
			t.Errorf("MaxConnectionsFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// TestRefusal_IsAValidResponse parses the canned refusals as a client
// would: a status, a Content-Length that matches, an OCI error body.
func TestRefusal_IsAValidResponse(t *testing.T) {
	for answer, status := range map[string]int{refusedBusy: 503, refusedAddr: 429} {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
		if err != nil {
			t.Fatalf("%q: %v", answer, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || int64(len(body)) != resp.ContentLength {
			t.Fatalf("%q: body %d bytes (%v), Content-Length %d", answer, len(body), err, resp.ContentLength)
		}
		var env errorBody
		if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Code != "TOOMANYREQUESTS" {
			t.Errorf("%q: body %s is not one TOOMANYREQUESTS error (%v)", answer, body, err)
		}
		if resp.StatusCode != status || !resp.Close {
			t.Errorf("%q: status %d close %v, want %d and close", answer, resp.StatusCode, resp.Close, status)
		}
	}
}

func TestAdmission(t *testing.T) {
	proxy := netip.MustParseAddr("10.0.0.1")
	a := admission{
		limits:  Limits{MaxConnections: 4, MaxConnectionsPerAddr: 2},
		trusted: proxySet{netip.PrefixFrom(proxy, 32)},
		byAddr:  make(map[netip.Addr]int),
	}
	client := netip.MustParseAddr("192.0.2.7")
	for i := range 2 {
		if answer, _ := a.admit(client); answer != "" {
			t.Fatalf("connection %d of a client refused", i+1)
		}
	}
	if _, reason := a.admit(client); reason != "per_address" {
		t.Fatalf("third connection of a client: reason %q, want per_address", reason)
	}
	// A trusted proxy is not capped per address, only in total.
	for i := range 2 {
		if answer, _ := a.admit(proxy); answer != "" {
			t.Fatalf("proxy connection %d refused", i+1)
		}
	}
	if _, reason := a.admit(proxy); reason != "max" {
		t.Fatalf("fifth connection: reason %q, want max", reason)
	}
	a.leave(client)
	if answer, _ := a.admit(client); answer != "" {
		t.Fatal("a client's place did not come back when its connection closed")
	}
	a.leave(client)
	a.leave(client)
	if n := a.byAddr[client]; n != 0 {
		t.Errorf("byAddr keeps %d for a client with no connection", n)
	}
}
