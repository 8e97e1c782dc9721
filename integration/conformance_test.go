package integration

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
)

// conformancePkg is the OCI distribution-spec conformance suite. go.mod pins
// its version with a `tool` directive, so `go build` of this path needs no
// version and stays in step with go.sum.
const conformancePkg = "github.com/opencontainers/distribution-spec/conformance"

// minConformancePasses guards against a run that silently tested little: the
// pinned suite has about 790 leaf specs with every API and data group on, so
// far fewer passes means groups went missing, not that berth got better.
const minConformancePasses = 600

// maxDetailed bounds how many failed or skipped specs are printed with their
// messages and requests; the rest are named only, since a server that fails
// everything would otherwise print megabytes. report.html has them all.
const maxDetailed = 25

// conformanceSettings configures the suite through its environment variables
// (README of the conformance module). Every API group is on; OCI_VERSION=dev
// additionally turns on upload cancel, required Docker-Content-Digest headers
// and tags given as parameters of a manifest PUT by digest.
var conformanceSettings = []string{
	"OCI_TLS=disabled",
	"OCI_VERSION=dev",
	"OCI_REPO1=conformance/repo1",
	"OCI_REPO2=conformance/repo2",
	"OCI_LOG=warn",

	"OCI_API_PING=true",
	"OCI_API_PULL=true",
	"OCI_API_PUSH=true",
	"OCI_API_BLOBS_ATOMIC=true",
	"OCI_API_BLOBS_DELETE=true",
	"OCI_API_BLOBS_DIGEST_HEADER=true",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
	"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	"OCI_API_MANIFESTS_ATOMIC=true",
	"OCI_API_MANIFESTS_DELETE=true",
	"OCI_API_MANIFESTS_DIGEST_HEADER=true",
	"OCI_API_MANIFESTS_TAG_PARAM=true",
	"OCI_API_TAGS_ATOMIC=true",
	"OCI_API_TAGS_DELETE=true",
	"OCI_API_TAGS_LIST=true",
	"OCI_API_REFERRER=true",

	"OCI_DATA_IMAGE=true",
	"OCI_DATA_INDEX=true",
	"OCI_DATA_INDEX_LIST=true",
	// Sparse data pushes an image whose first layer was never uploaded and an
	// index naming a child manifest that does not exist, and expects 201 for
	// both. The spec lets a registry refuse such manifests with
	// MANIFEST_BLOB_UNKNOWN ("A registry MAY reject a manifest of any type
	// uploaded to the manifest endpoint if it references manifests or blobs
	// that do not exist"), and berth does, so that pulls never meet a dangling
	// reference. Non-distributable layers are the one exception berth makes,
	// and OCI_DATA_NONDISTRIBUTABLE below tests it.
	"OCI_DATA_SPARSE=false",
	"OCI_DATA_ARTIFACT=true",
	"OCI_DATA_SUBJECT=true",
	"OCI_DATA_SUBJECT_MISSING=true",
	"OCI_DATA_ARTIFACT_LIST=true",
	"OCI_DATA_SUBJECT_LIST=true",
	"OCI_DATA_DATA_FIELD=true",
	"OCI_DATA_NONDISTRIBUTABLE=true",
	"OCI_DATA_CUSTOM_FIELDS=true",
	"OCI_DATA_NO_LAYERS=true",
	"OCI_DATA_EMPTY_BLOB=true",
	"OCI_DATA_SHA512=true",
}

// TestConformance runs the OCI distribution-spec conformance suite against
// the real berth binary and fails on any spec that does not pass: a failure,
// an error of the suite itself, a skip (the suite skips what it finds
// unsupported), or a disabled spec (a setting above that did not take).
func TestConformance(t *testing.T) {
	suite := buildConformanceSuite(t)
	t.Run("AuthNone", func(t *testing.T) {
		checkConformance(t, suite, startServer(t, ""), nil)
	})
	// The same suite through the token flow: every request of the suite then
	// goes through a 401 challenge, /token with Basic credentials, and a
	// Bearer token, as docker and containerd do.
	t.Run("AuthToken", func(t *testing.T) {
		srv := startServer(t, "", "--auth", "token")
		password, err := os.ReadFile(filepath.Join(srv.Data, "initial-admin-password"))
		if err != nil {
			t.Fatalf("read the first admin's password: %v", err)
		}
		checkConformance(t, suite, srv, []string{"OCI_USERNAME=admin", "OCI_PASSWORD=" + strings.TrimSpace(string(password))})
	})
	// Blobs in an S3 bucket (versitygw), streamed through berth. With
	// redirects on, the suite's blob GETs follow the 307 to S3 and then miss
	// the Docker-Content-Digest header that OCI_VERSION=dev requires of the
	// final response: S3 cannot be made to send it (a presigned URL may only
	// override the response-* headers). The redirect itself is tested with
	// real clients (TestS3_PushPull, TestS3_Skopeo, TestS3_Redirect).
	t.Run("S3", func(t *testing.T) {
		checkConformance(t, suite, startS3Registry(t, fixtures.StartS3(t), "", "--s3-redirect=false"), nil)
	})
}

// checkConformance runs the suite against srv with the extra environment
// and fails the test on anything but a clean pass.
func checkConformance(t *testing.T, suite string, srv *server, env []string) {
	results := t.TempDir()
	run := runConformanceSuite(t, suite, srv.Addr, results, env)
	if run.timedOut {
		dumpGoroutines(t, srv)
		kept := keepConformanceResults(t, results, srv.Log())
		t.Fatalf("conformance suite still running after %v, so berth probably left a request unanswered; "+
			"its goroutine dump ends server.log in %s\nsuite stderr:\n%s", suiteTimeout, kept, tail(run.stderr, 4000))
	}

	report, err := readJUnit(filepath.Join(results, "junit.xml"))
	if err != nil {
		kept := keepConformanceResults(t, results, srv.Log())
		t.Fatalf("conformance suite wrote no readable junit.xml (%v); exit: %v; server log kept in %s\nstdout:\n%s\nstderr:\n%s",
			err, run.exit, kept, tail(run.stdout, 4000), tail(run.stderr, 4000))
	}
	verdict := judge(report, run.stderr)
	t.Logf("conformance: %d specs passed of %d", len(verdict.passed), len(report.Cases))
	if verdict.ok() && run.exit == nil && len(verdict.passed) >= minConformancePasses {
		return
	}

	kept := keepConformanceResults(t, results, srv.Log())
	t.Errorf("conformance suite did not pass cleanly (exit: %v); report, junit.xml and server log kept in %s",
		run.exit, kept)
	if n := len(verdict.passed); n < minConformancePasses {
		t.Errorf("only %d specs passed, expected at least %d: the run tested too little", n, minConformancePasses)
	}
	reportVerdict(t, verdict)
}

// reportVerdict names every spec that did not pass cleanly, the first ones
// with the suite's messages and the requests it made, which are what it takes
// to fix the server.
func reportVerdict(t *testing.T, verdict verdict) {
	t.Helper()
	for i, c := range verdict.failed {
		if i >= maxDetailed {
			t.Errorf("FAILED %s (status %s)", c.Name, c.Status)
			continue
		}
		t.Errorf("FAILED %s (status %s):\n%s\nrequests (latest last):\n%s",
			c.Name, c.Status, indent(c.SystemOut), indent(tail(c.SystemErr, 4000)))
	}
	for i, c := range verdict.skipped {
		if i >= maxDetailed {
			t.Errorf("SKIPPED %s", c.Name)
			continue
		}
		t.Errorf("SKIPPED %s (the suite found it unsupported or disabled):\n%s\nrequests (latest last):\n%s",
			c.Name, indent(c.SystemOut), indent(tail(c.SystemErr, 4000)))
	}
	for _, c := range verdict.serverErrors {
		t.Errorf("5xx ANSWER in %s: berth answered one of its requests with a server error:\n%s",
			c.Name, indent(exchangeWith5xx(c.SystemErr)))
	}
	for _, line := range verdict.strayResponses {
		t.Errorf("STRAY RESPONSE: berth wrote a response nobody asked for on a kept-alive connection "+
			"(it probably answered before reading the whole request body, then parsed the rest as a request):\n%s",
			indent(line))
	}
}

// buildConformanceSuite compiles the pinned suite into a temporary directory.
func buildConformanceSuite(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "conformance")
	build := exec.Command("go", "build", "-o", bin, conformancePkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", conformancePkg, err, out)
	}
	return bin
}

// suiteTimeout bounds one run of the suite, which takes seconds. The suite's
// HTTP client has no timeout of its own, so a request berth never answers
// would otherwise stall the whole test binary.
const suiteTimeout = 3 * time.Minute

// suiteRun is what the suite process left behind besides its results files.
type suiteRun struct {
	stdout, stderr string
	exit           error // nil for exit status 0
	timedOut       bool  // killed after suiteTimeout
}

// runConformanceSuite runs the suite against addr, writing its results files
// into resultsDir.
func runConformanceSuite(t *testing.T, suite, addr, resultsDir string, env []string) suiteRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite)
	// An empty working directory, so no oci-conformance.yaml lying around
	// can change the settings.
	cmd.Dir = t.TempDir()
	cmd.Env = append(withoutOCIVars(os.Environ()), conformanceSettings...)
	cmd.Env = append(cmd.Env, "OCI_REGISTRY="+addr, "OCI_RESULTS_DIR="+resultsDir)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return suiteRun{stdout: stdout.String(), stderr: stderr.String(), exit: err, timedOut: ctx.Err() != nil}
}

// dumpGoroutines makes berth write every goroutine's stack to its log and
// exit, the Go runtime's answer to SIGQUIT: it shows where a request hangs.
func dumpGoroutines(t *testing.T, srv *server) {
	t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Logf("SIGQUIT berth: %v", err)
		return
	}
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		t.Logf("berth did not exit within 10s of SIGQUIT")
	}
}

// withoutOCIVars drops the suite's own variables from env, so the caller's
// shell cannot change what is tested.
func withoutOCIVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OCI_") {
			out = append(out, kv)
		}
	}
	return out
}

// junitReport is the part of the suite's junit.xml that the test reads. The
// suite marks each leaf spec with a status attribute (passed, skipped,
// failure, error), puts its error messages in system-out and the requests
// and responses it made in system-err.
type junitReport struct {
	Cases []junitCase `xml:"testsuite>testcase"`
}

type junitCase struct {
	Name      string `xml:"name,attr"`
	Status    string `xml:"status,attr"`
	SystemOut string `xml:"system-out"`
	SystemErr string `xml:"system-err"`
}

func readJUnit(path string) (junitReport, error) {
	var r junitReport
	raw, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := xml.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}

// verdict sorts a run's specs by what went wrong with them.
type verdict struct {
	passed, failed, skipped []junitCase
	serverErrors            []junitCase // passed or not, saw a 5xx answer
	strayResponses          []string    // from the suite's HTTP client log
}

func (v verdict) ok() bool {
	return len(v.failed) == 0 && len(v.skipped) == 0 && len(v.serverErrors) == 0 && len(v.strayResponses) == 0
}

// status5xx matches a response header block in the suite's request log.
var status5xx = regexp.MustCompile(`(?m)^~~~ RESPONSE ~~~\nStatus: 5\d\d$`)

func judge(r junitReport, suiteStderr string) verdict {
	var v verdict
	for _, c := range r.Cases {
		switch c.Status {
		case "passed":
			v.passed = append(v.passed, c)
		case "skipped":
			v.skipped = append(v.skipped, c)
		default: // failure, error, or anything this test does not know
			v.failed = append(v.failed, c)
		}
		if status5xx.MatchString(c.SystemErr) {
			v.serverErrors = append(v.serverErrors, c)
		}
	}
	// net/http logs this when a server writes to a connection with no
	// request outstanding; the suite passes it through to stderr.
	for _, line := range strings.Split(suiteStderr, "\n") {
		if strings.Contains(line, "Unsolicited response received on idle HTTP channel") {
			v.strayResponses = append(v.strayResponses, line)
		}
	}
	return v
}

// exchangeSeparator starts each request in the suite's log.
const exchangeSeparator = "================================================================================\n~~~ REQUEST ~~~"

// exchangeWith5xx returns the first request in a spec's log whose answer
// was a 5xx, with that answer.
func exchangeWith5xx(log string) string {
	for _, ex := range strings.Split(log, exchangeSeparator) {
		if status5xx.MatchString(ex) {
			return tail("~~~ REQUEST ~~~"+strings.TrimRight(ex, "=\n"), 3000)
		}
	}
	return "(not found)"
}

// keepConformanceResults copies the suite's reports and the server log to a
// directory that outlives the test, since t.TempDir is removed when it ends,
// and returns its path.
func keepConformanceResults(t *testing.T, results, serverLog string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-conformance-")
	if err != nil {
		t.Logf("keep conformance results: %v", err)
		return results + " (removed when the test ends)"
	}
	for _, name := range []string{"report.html", "junit.xml", "results.yaml"} {
		raw, err := os.ReadFile(filepath.Join(results, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), raw, 0o644)
		}
		if err != nil {
			t.Logf("keep %s: %v", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "server.log"), []byte(serverLog), 0o644); err != nil {
		t.Logf("keep server.log: %v", err)
	}
	return dir
}

// tail returns the last n bytes of s, marking a cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[…]" + s[len(s)-n:]
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// TestJudge keeps the reading of the suite's junit.xml honest: a status or
// log format the test misreads would let a broken server pass.
func TestJudge(t *testing.T) {
	exchange := func(status int) string {
		return exchangeSeparator + "\nMethod: GET\nURL: http://x/v2/\nHeaders:\n--- Empty body ---\n" +
			"--------------------------------------------------------------------------------\n" +
			fmt.Sprintf("~~~ RESPONSE ~~~\nStatus: %d\nHeaders:\n--- Empty body ---\n", status) +
			"================================================================================\n"
	}
	tests := []struct {
		name                                      string
		cases                                     []junitCase
		stderr                                    string
		passed, failed, skipped, serverErr, stray int
	}{
		{name: "all passed", cases: []junitCase{{Name: "a", Status: "passed", SystemErr: exchange(200)}},
			passed: 1},
		{name: "failure and error both fail", cases: []junitCase{{Name: "a", Status: "failure"}, {Name: "b", Status: "error"}},
			failed: 2},
		{name: "unknown status fails", cases: []junitCase{{Name: "a", Status: ""}},
			failed: 1},
		{name: "skipped", cases: []junitCase{{Name: "a", Status: "skipped"}},
			skipped: 1},
		{name: "passed with a 500 on the way", cases: []junitCase{{Name: "a", Status: "passed", SystemErr: exchange(404) + exchange(500)}},
			passed: 1, serverErr: 1},
		{name: "a 500 in a body is no answer", cases: []junitCase{{Name: "a", Status: "passed", SystemErr: exchange(200) + "Status: 500\n"}},
			passed: 1},
		{name: "stray response", stderr: "2026/01/01 Unsolicited response received on idle HTTP channel starting with \"HTTP/1.1 500\"\nother\n",
			stray: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(junitReport{Cases: tc.cases}, tc.stderr)
			got := []int{len(v.passed), len(v.failed), len(v.skipped), len(v.serverErrors), len(v.strayResponses)}
			want := []int{tc.passed, tc.failed, tc.skipped, tc.serverErr, tc.stray}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("judge(%+v, %q) = passed, failed, skipped, 5xx, stray %v, want %v", tc.cases, tc.stderr, got, want)
			}
			if wantOK := tc.failed+tc.skipped+tc.serverErr+tc.stray == 0; v.ok() != wantOK {
				t.Errorf("ok() = %v, want %v", v.ok(), wantOK)
			}
		})
	}
}
