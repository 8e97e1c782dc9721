package server

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/store"
)

// parseContentRange parses the Content-Range of a PATCH (or closing PUT)
// chunk. The spec's form is "<start>-<end>", inclusive, matching
// ^[0-9]+-[0-9]+$; the RFC 9110 forms "bytes <start>-<end>" and
// "bytes <start>-<end>/<total|*>" are accepted as well because some clients
// send those. It returns start and end with 0 <= start <= end; any other
// input, including numbers that overflow int64 and a total not larger than
// end, gives an error wrapping store.ErrRangeInvalid.
func parseContentRange(s string) (start, end int64, err error) {
	span, total := strings.Trim(s, " \t"), ""
	if unit, rest, ok := strings.Cut(span, " "); ok {
		if !strings.EqualFold(unit, "bytes") {
			return 0, 0, fmt.Errorf("%w: Content-Range unit %q", store.ErrRangeInvalid, unit)
		}
		span, total, _ = strings.Cut(rest, "/")
		if total == "" && strings.HasSuffix(rest, "/") {
			return 0, 0, fmt.Errorf("%w: Content-Range %q has an empty length", store.ErrRangeInvalid, s)
		}
	}
	first, last, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%w: Content-Range %q is not <start>-<end>", store.ErrRangeInvalid, s)
	}
	start, okStart := parseDigits(first)
	end, okEnd := parseDigits(last)
	if !okStart || !okEnd || end < start {
		return 0, 0, fmt.Errorf("%w: Content-Range %q is not <start>-<end> with start <= end", store.ErrRangeInvalid, s)
	}
	if total != "" && total != "*" {
		if n, ok := parseDigits(total); !ok || n <= end {
			return 0, 0, fmt.Errorf("%w: Content-Range %q has a length not past its end", store.ErrRangeInvalid, s)
		}
	}
	return start, end, nil
}

// parseDigits parses a non-empty run of ASCII digits that fits in int64.
// Unlike strconv.ParseInt it refuses signs.
func parseDigits(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseRange parses the Range header of a blob GET for a blob of size bytes.
// Only a single range of RFC 9110's byte ranges is served: "bytes=a-b",
// "bytes=a-" and "bytes=-n" (the unit is case-insensitive).
//
// It returns ok with the inclusive range [start, end] to send, end clamped to
// size-1, so 0 <= start <= end < size. It returns ok false and no error when
// the header is to be ignored and the whole blob sent, as RFC 9110 allows: no
// header, another unit, a syntax error, several ranges, or a suffix range of
// an empty blob. It returns an error wrapping store.ErrRangeInvalid, for a
// 416 with "Content-Range: bytes */size", when the range is well-formed but
// cannot be served: it starts at or past size, asks for the last 0 bytes,
// or ends before it starts. RFC 9110 lets a server either ignore such an
// invalid range or refuse it; the OCI conformance suite expects 416.
func parseRange(header string, size int64) (start, end int64, ok bool, err error) {
	unit, set, found := strings.Cut(header, "=")
	if !found || !strings.EqualFold(strings.Trim(unit, " \t"), "bytes") {
		return 0, 0, false, nil
	}
	spec, single := singleRangeSpec(set)
	if !single {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, nil
	}
	if first == "" {
		return suffixRange(last, size)
	}
	start, okFirst := parseSaturating(first)
	end, okLast := parseSaturating(last)
	if !okFirst || (last != "" && !okLast) {
		return 0, 0, false, nil
	}
	if last == "" {
		end = math.MaxInt64
	}
	if end < start || start >= size {
		return 0, 0, false, fmt.Errorf("%w: range %q of %d bytes", store.ErrRangeInvalid, spec, size)
	}
	return start, min(end, size-1), true, nil
}

// singleRangeSpec returns the one range-spec of a range-set. Empty list
// elements are skipped, as RFC 9110's list rule asks of recipients.
func singleRangeSpec(set string) (spec string, single bool) {
	n := 0
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		spec = elem
		n++
	}
	return spec, n == 1
}

// suffixRange serves "bytes=-n": the last n bytes, or the whole blob when it
// is shorter than n.
func suffixRange(length string, size int64) (start, end int64, ok bool, err error) {
	n, valid := parseSaturating(length)
	switch {
	case !valid:
		return 0, 0, false, nil
	case n == 0:
		return 0, 0, false, fmt.Errorf("%w: range %q asks for no bytes", store.ErrRangeInvalid, "-"+length)
	case size == 0:
		// Satisfiable by RFC 9110, but an empty range has no inclusive
		// [start, end]: the whole (empty) blob is the answer.
		return 0, 0, false, nil
	}
	return size - min(n, size), size - 1, true, nil
}

// parseSaturating parses a non-empty run of ASCII digits; a value past
// int64 is math.MaxInt64, which is past any blob's end, so a syntactically
// valid position never becomes a syntax error.
func parseSaturating(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, true
	}
	return n, true
}
