package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// testRequest has a field of every kind the command line builder knows.
type testRequest struct {
	Name    string        `arg:"NAME" json:"name"`
	ID      string        `arg:"ID?" json:"id"`
	Admin   bool          `flag:"admin" usage:"u" json:"admin"`
	Grace   time.Duration `flag:"grace" usage:"u" json:"grace"`
	Key     string        `flag:"key,k" usage:"u" json:"key"`
	At      *string       `flag:"at" usage:"u" json:"at"`
	Hosts   []string      `flag:"host" usage:"u" json:"hosts"`
	Jobs    int           `flag:"jobs" usage:"u" json:"jobs"`
	Secret  string        `json:"secret"` // no tag: not on the command line
	private int
}

// parse runs args through a command built from testRequest and returns the
// request it filled, or the error.
func parse(t *testing.T, args ...string) (testRequest, error) {
	t.Helper()
	defaults := testRequest{Grace: time.Hour, Key: "ecdsa"}
	var got testRequest
	app := &cli.App{Name: "berth", Commands: []*cli.Command{{
		Name:      "op",
		Flags:     requestFlags(reflect.ValueOf(defaults)),
		ArgsUsage: argsUsage(reflect.TypeFor[testRequest]()),
		Action: func(c *cli.Context) error {
			var err error
			got, err = requestFrom(c, defaults)
			return err
		},
	}}}
	err := app.Run(append([]string{"berth", "op"}, args...))
	return got, err
}

func TestRequestFrom(t *testing.T) {
	at := "3"
	tests := []struct {
		name    string
		args    []string
		want    testRequest
		wantErr string
	}{
		{"defaults", []string{"alice"}, testRequest{Name: "alice", Grace: time.Hour, Key: "ecdsa"}, ""},
		{"everything, flags after the words", []string{"alice", "x1", "--admin", "--grace", "0s", "-k", "rsa", "--at", "3", "--host", "a,b", "--host", "c", "--jobs", "4"},
			testRequest{Name: "alice", ID: "x1", Admin: true, Key: "rsa", At: &at, Hosts: []string{"a,b", "c"}, Jobs: 4}, ""},
		{"no name", nil, testRequest{}, "usage: berth op NAME [ID]"},
		{"a word too many", []string{"a", "b", "c"}, testRequest{}, "usage: berth op NAME [ID]"},
		{"unknown flag after a word", []string{"alice", "--secret", "x"}, testRequest{}, "flag provided but not defined: --secret"},
		{"bad duration", []string{"alice", "--grace", "soon"}, testRequest{}, `invalid value "soon" for flag --grace`},
		{"after --", []string{"alice", "--", "-x1"}, testRequest{Name: "alice", ID: "-x1", Grace: time.Hour, Key: "ecdsa"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("%q: error %v, want %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%q: got %+v, %v; want %+v", tc.args, got, err, tc.want)
			}
		})
	}
}

func TestRequestFlags_UnknownTypePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a flag of an unknown type was accepted")
		}
	}()
	requestFlags(reflect.ValueOf(struct {
		N float64 `flag:"n"`
	}{}))
}

// TestAdminOps_AllOnTheCommandLine: every operation the control socket
// serves is a command of the CLI, at the words of its name.
func TestAdminOps_AllOnTheCommandLine(t *testing.T) {
	names := admin.Names()
	if len(names) < 10 {
		t.Fatalf("admin has %d operations: %v", len(names), names)
	}
	for _, name := range names {
		cmds := newApp().Commands
		var found *cli.Command
		for _, word := range strings.Fields(name) {
			found = nil
			for _, c := range cmds {
				if c.Name == word {
					found = c
				}
			}
			if found == nil {
				break
			}
			cmds = found.Subcommands
		}
		if found == nil || found.Action == nil {
			t.Errorf("operation %q has no command berth %s", name, name)
		}
	}
}
