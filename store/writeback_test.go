package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWritebackFile writes through a writebackFile from the start of a
// file and from the middle (a resumed session), in pieces of several sizes,
// and checks that the bytes land where they belong and that writeback was
// asked for in whole steps from where the writes began, never past them.
func TestWritebackFile(t *testing.T) {
	tests := []struct {
		name   string
		offset int64 // bytes already in the file
		pieces []int
	}{
		{"new file, 64 KiB pieces", 0, repeat(64<<10, 300)},
		{"resumed at 3 MiB+5, odd pieces", 3<<20 + 5, append(repeat(100_003, 200), 7)},
		{"under one step", 1 << 20, []int{4 << 20}},
		{"one piece of two steps", 0, []int{2*writebackEvery + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			want := seeded(int(tc.offset)+sum(tc.pieces), 7)
			if err := os.WriteFile(path, want[:tc.offset], 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			w := newWritebackFile(f, tc.offset)
			at := int(tc.offset)
			for _, n := range tc.pieces {
				if k, err := w.Write(want[at : at+n]); err != nil || k != n {
					t.Fatalf("write %d bytes at %d: %d, %v", n, at, k, err)
				}
				at += n
				if w.off != int64(at) {
					t.Fatalf("offset %d after writing up to %d", w.off, at)
				}
				if w.started > w.off || w.off-w.started >= writebackEvery {
					t.Fatalf("writeback asked up to %d with the file at %d: want within one step behind", w.started, w.off)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes that differ from the %d written", len(got), len(want))
			}
		})
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}

func sum(s []int) int {
	t := 0
	for _, n := range s {
		t += n
	}
	return t
}

// seeded returns n bytes that depend on seed and on their position.
func seeded(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ byte(i>>11) ^ seed
	}
	return b
}
