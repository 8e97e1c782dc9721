package server

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/berth-registry/berth/store"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		start, end int64
		ok         bool
	}{
		{"spec form", "0-999", 0, 999, true},
		{"spec form later chunk", "1000-1999", 1000, 1999, true},
		{"one byte", "5-5", 5, 5, true},
		{"leading zeros", "007-010", 7, 10, true},
		{"outer spaces", " 0-9 ", 0, 9, true},
		{"bytes unit", "bytes 0-999", 0, 999, true},
		{"bytes unit upper-case", "BYTES 0-999", 0, 999, true},
		{"bytes with total", "bytes 0-999/5000", 0, 999, true},
		{"bytes with last byte as total", "bytes 0-999/1000", 0, 999, true},
		{"bytes with unknown total", "bytes 0-999/*", 0, 999, true},
		{"largest int64", "0-9223372036854775807", 0, math.MaxInt64, true},

		{"empty", "", 0, 0, false},
		{"no dash", "1000", 0, 0, false},
		{"end before start", "10-9", 0, 0, false},
		{"missing end", "0-", 0, 0, false},
		{"missing start", "-9", 0, 0, false},
		{"plus sign", "+0-9", 0, 0, false},
		{"minus sign", "0--9", 0, 0, false},
		{"space inside number", "1 0-20", 0, 0, false},
		{"space around dash", "0 - 9", 0, 0, false},
		{"overflow", "0-9223372036854775808", 0, 0, false},
		{"hex", "0x0-0x9", 0, 0, false},
		{"other unit", "items 0-9", 0, 0, false},
		{"bytes equals form", "bytes=0-9", 0, 0, false},
		{"total before end", "bytes 0-999/999", 0, 0, false},
		{"empty total", "bytes 0-999/", 0, 0, false},
		{"bad total", "bytes 0-999/x", 0, 0, false},
		{"unsatisfied form", "bytes */1000", 0, 0, false},
		{"total without unit", "0-999/1000", 0, 0, false},
		{"two ranges", "0-9,20-29", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end, err := parseContentRange(tc.in)
			if !tc.ok {
				if !errors.Is(err, store.ErrRangeInvalid) {
					t.Fatalf("parseContentRange(%q) = %d, %d, %v; want ErrRangeInvalid", tc.in, start, end, err)
				}
				return
			}
			if err != nil || start != tc.start || end != tc.end {
				t.Fatalf("parseContentRange(%q) = %d, %d, %v; want %d, %d", tc.in, start, end, err, tc.start, tc.end)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, seed := range []string{"0-999", "bytes 0-999/1000", "bytes 5-9/*", "10-9", "+1-2", "0-9223372036854775808", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err != nil {
			if !errors.Is(err, store.ErrRangeInvalid) {
				t.Fatalf("parseContentRange(%q) error %v does not wrap ErrRangeInvalid", s, err)
			}
			return
		}
		if start < 0 || end < start {
			t.Fatalf("parseContentRange(%q) = %d, %d: want 0 <= start <= end", s, start, end)
		}
		canonical := fmt.Sprintf("%d-%d", start, end)
		if s2, e2, err := parseContentRange(canonical); err != nil || s2 != start || e2 != end {
			t.Fatalf("parseContentRange(%q) = %d, %d, but %q parses as %d, %d, %v", s, start, end, canonical, s2, e2, err)
		}
	})
}

func TestParseRange(t *testing.T) {
	const size = 4096
	tests := []struct {
		name       string
		header     string
		size       int64
		start, end int64
		want       string // "ok", "ignore" or "416"
	}{
		{"closed", "bytes=500-1499", size, 500, 1499, "ok"},
		{"open", "bytes=500-", size, 500, size - 1, "ok"},
		{"suffix", "bytes=-500", size, size - 500, size - 1, "ok"},
		{"end clamped", "bytes=2000-5000", size, 2000, size - 1, "ok"},
		{"first byte", "bytes=0-0", size, 0, 0, "ok"},
		{"last byte", "bytes=4095-4095", size, 4095, 4095, "ok"},
		{"suffix longer than blob", "bytes=-10000", size, 0, size - 1, "ok"},
		{"unit case-insensitive", "Bytes=1-2", size, 1, 2, "ok"},
		{"empty list elements", "bytes=, 1-2 ,", size, 1, 2, "ok"},
		{"end past int64", "bytes=1-99999999999999999999", size, 1, size - 1, "ok"},
		{"suffix past int64", "bytes=-99999999999999999999", size, 0, size - 1, "ok"},

		{"no header", "", size, 0, 0, "ignore"},
		{"other unit", "items=0-1", size, 0, 0, "ignore"},
		{"no equals", "bytes 0-1", size, 0, 0, "ignore"},
		{"two ranges", "bytes=0-1,5-9", size, 0, 0, "ignore"},
		{"no dash", "bytes=500", size, 0, 0, "ignore"},
		{"bare dash", "bytes=-", size, 0, 0, "ignore"},
		{"empty set", "bytes=", size, 0, 0, "ignore"},
		{"plus sign", "bytes=+1-2", size, 0, 0, "ignore"},
		{"negative suffix", "bytes=--5", size, 0, 0, "ignore"},
		{"space in number", "bytes=1 0-20", size, 0, 0, "ignore"},
		{"letters", "bytes=a-b", size, 0, 0, "ignore"},
		{"suffix of empty blob", "bytes=-5", 0, 0, 0, "ignore"},

		{"end before start", "bytes=500-0", size, 0, 0, "416"},
		{"start past end of blob", "bytes=5000-10000", size, 0, 0, "416"},
		{"start at size", "bytes=4096-", size, 0, 0, "416"},
		{"start past int64", "bytes=99999999999999999999-", size, 0, 0, "416"},
		{"zero suffix", "bytes=-0", size, 0, 0, "416"},
		{"any start of empty blob", "bytes=0-", 0, 0, 0, "416"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end, ok, err := parseRange(tc.header, tc.size)
			got := "ok"
			switch {
			case err != nil:
				got = "416"
				if !errors.Is(err, store.ErrRangeInvalid) {
					t.Errorf("parseRange(%q, %d) error %v does not wrap ErrRangeInvalid", tc.header, tc.size, err)
				}
			case !ok:
				got = "ignore"
			}
			if got != tc.want || (got == "ok" && (start != tc.start || end != tc.end)) {
				t.Fatalf("parseRange(%q, %d) = %d, %d, %v, %v; want %s %d-%d", tc.header, tc.size, start, end, ok, err, tc.want, tc.start, tc.end)
			}
		})
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=500-1499", int64(4096))
	f.Add("bytes=-500", int64(4096))
	f.Add("bytes=500-", int64(100))
	f.Add("bytes=500-0", int64(4096))
	f.Add("bytes=0-1,2-3", int64(10))
	f.Add("bytes=-1", int64(0))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			return
		}
		start, end, ok, err := parseRange(header, size)
		if err != nil {
			if ok || !errors.Is(err, store.ErrRangeInvalid) {
				t.Fatalf("parseRange(%q, %d) = ok %v, error %v: want ok false and ErrRangeInvalid", header, size, ok, err)
			}
			return
		}
		if !ok {
			return
		}
		if start < 0 || start > end || end >= size {
			t.Fatalf("parseRange(%q, %d) = %d-%d: want 0 <= start <= end < size", header, size, start, end)
		}
		// The range served, asked for exactly, is served as it is.
		canonical := fmt.Sprintf("bytes=%d-%d", start, end)
		s2, e2, ok2, err := parseRange(canonical, size)
		if !ok2 || err != nil || s2 != start || e2 != end {
			t.Fatalf("parseRange(%q, %d) = %d-%d, but %q gives %d-%d, %v, %v", header, size, start, end, canonical, s2, e2, ok2, err)
		}
	})
}
