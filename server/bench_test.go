package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// BenchmarkManifestRequest serves manifest HEAD and GET by tag over real
// loopback TCP, in-process, with --auth none and with a Bearer token, the
// access log on (text, to io.Discard). One client connection sends each
// request and reads its response, so ns/op and allocs/op are the whole
// request path of the server (plus a small client): for profiling with
// -cpuprofile and -memprofile. integration's BenchmarkLeanManifest measures
// the real binary.
func BenchmarkManifestRequest(b *testing.B) {
	for _, mode := range []string{"none", "bearer"} {
		st, err := store.Open(b.TempDir(), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		manifest := benchImage(b, st, "bench/small", "v0")
		cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		authz := ""
		if mode == "bearer" {
			svc, err := auth.NewService(st, auth.Options{Issuer: "berth"})
			if err != nil {
				b.Fatal(err)
			}
			if err := st.AddUser(store.User{Name: "bench", PasswordHash: []byte("unused")}); err != nil {
				b.Fatal(err)
			}
			u, err := st.User("bench")
			if err != nil {
				b.Fatal(err)
			}
			tok, err := svc.IssueToken(u, "berth", []auth.Access{{Type: "repository", Name: "bench/small", Actions: []string{"pull"}}})
			if err != nil {
				b.Fatal(err)
			}
			cfg.Auth, authz = svc, "Authorization: Bearer "+tok.Raw+"\r\n"
		}
		s := New(st, cfg)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go s.Serve(ln)
		b.Cleanup(func() { s.Shutdown(b.Context()) })
		for _, method := range []string{"HEAD", "GET"} {
			b.Run(mode+"/"+method, func(b *testing.B) {
				conn, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				req := []byte(method + " /v2/bench/small/manifests/v0 HTTP/1.1\r\nHost: " + ln.Addr().String() + "\r\n" + authz +
					"Accept: application/vnd.oci.image.manifest.v1+json\r\n\r\n")
				r := bufio.NewReaderSize(conn, 64<<10)
				want := fmt.Appendf(nil, "Content-Length: %d\r\n", len(manifest))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := conn.Write(req); err != nil {
						b.Fatal(err)
					}
					if err := readBenchResponse(r, method == "HEAD", len(manifest), want); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// readBenchResponse reads a 200 response with the wanted Content-Length
// line and, unless head, its body of n bytes.
func readBenchResponse(r *bufio.Reader, head bool, n int, want []byte) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("status line %q", line)
	}
	found := false
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		found = found || bytes.Equal(line, want)
	}
	if !found {
		return fmt.Errorf("no %q", want)
	}
	if !head {
		_, err = r.Discard(n)
	}
	return err
}

// benchImage stores a config, a layer and a manifest tagged tag in repo,
// and returns the manifest.
func benchImage(b *testing.B, st *store.Store, repo, tag string) []byte {
	b.Helper()
	var descs []string
	for i, blob := range [][]byte{[]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), bytes.Repeat([]byte{7}, 4096)} {
		d := store.DigestOf(store.SHA256, blob)
		if _, err := st.PutBlob(repo, d, int64(len(blob)), bytes.NewReader(blob)); err != nil {
			b.Fatal(err)
		}
		mt := "application/vnd.oci.image.layer.v1.tar"
		if i == 0 {
			mt = "application/vnd.oci.image.config.v1+json"
		}
		descs = append(descs, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, d, len(blob)))
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + descs[0] + `,"layers":[` + descs[1] + `]}`)
	ref, err := store.ParseReference(tag)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := st.PutManifest(repo, ref, nil, "application/vnd.oci.image.manifest.v1+json", manifest); err != nil {
		b.Fatal(err)
	}
	return manifest
}
