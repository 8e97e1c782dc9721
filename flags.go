package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-registry/berth/admin"
)

// durationValue is a time.Duration flag value whose parse error says what
// to write: urfave/cli's DurationFlag answers `--gc-interval 10` with a bare
// "parse error".
type durationValue struct{ d time.Duration }

var _ cli.Generic = (*durationValue)(nil)

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil {
		v.d = d
		return nil
	}
	if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
		return fmt.Errorf("%s has no unit: write %ss, %sm or %sh", s, s, s, s)
	}
	return fmt.Errorf("%q is not a duration such as 90s, 30m or 24h", s)
}

func (v *durationValue) String() string { return admin.ShortDuration(v.d) }

// durationFlag is a duration flag with default value, its environment
// variables and usage; read it with durationOf.
func durationFlag(name string, value time.Duration, usage string, env ...string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Value: &durationValue{value}, EnvVars: env, Usage: usage}
}

// durationOf returns the value of the duration flag name.
func durationOf(c *cli.Context, name string) time.Duration {
	if v, ok := c.Generic(name).(*durationValue); ok {
		return v.d
	}
	return 0
}
