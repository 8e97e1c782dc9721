package store

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The OCI digest grammar (image-spec descriptor.md) and the encodings of the
// two registered algorithms berth supports.
var (
	digestGrammar = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	sha256Grammar = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	sha512Grammar = regexp.MustCompile(`^sha512:[a-f0-9]{128}$`)
)

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	hex128 := hex64 + hex64
	tests := []struct {
		name    string
		input   string
		wantErr error
	}{
		{"SHA256", "sha256:" + hex64, nil},
		{"SHA512", "sha512:" + hex128, nil},

		{"Empty", "", ErrDigestInvalid},
		{"NoColon", "sha256" + hex64, ErrDigestInvalid},
		{"EmptyAlgorithm", ":" + hex64, ErrDigestInvalid},
		{"EmptyEncoded", "sha256:", ErrDigestInvalid},
		{"UpperCaseHex", "sha256:" + strings.ToUpper(hex64), ErrDigestInvalid},
		{"UpperCaseAlgorithm", "SHA256:" + hex64, ErrDigestInvalid},
		{"ShortSHA256", "sha256:" + hex64[1:], ErrDigestInvalid},
		{"LongSHA256", "sha256:" + hex64 + "0", ErrDigestInvalid},
		{"SHA512WithSHA256Length", "sha512:" + hex64, ErrDigestInvalid},
		{"NonHexInSHA256", "sha256:" + hex64[1:] + "g", ErrDigestInvalid},
		{"TwoColons", "sha256:" + hex64 + ":x", ErrDigestInvalid},
		{"SpaceInEncoded", "sha256: " + hex64[1:], ErrDigestInvalid},
		{"AlgorithmEndsWithSeparator", "sha256+:" + hex64, ErrDigestInvalid},
		{"AlgorithmDoubleSeparator", "a+-b:abc", ErrDigestInvalid},
		{"ConformanceBadDigest", "sha256:baddigeststring", ErrDigestInvalid},

		{"SHA384", "sha384:" + hex64 + hex64[:32], ErrDigestUnsupported},
		{"AlgorithmWithSeparators", "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", ErrDigestUnsupported},
		{"BLAKE3", "blake3:" + hex64, ErrDigestUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDigest(tc.input)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseDigest(%q) error = %v, want %v", tc.input, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDigest(%q) = %v", tc.input, err)
			}
			if got.String() != tc.input {
				t.Errorf("ParseDigest(%q) = %q", tc.input, got)
			}
		})
	}
}

func TestDigest_Parts(t *testing.T) {
	d := Digest("sha512:" + strings.Repeat("ab", 64))
	if d.Algorithm() != SHA512 || d.Hex() != strings.Repeat("ab", 64) {
		t.Errorf("Algorithm, Hex of %s = %q, %q", d, d.Algorithm(), d.Hex())
	}
}

func TestDigestOf(t *testing.T) {
	tests := []struct {
		name  string
		alg   string
		input string
		want  Digest
	}{
		// FIPS 180-2 test vectors for "abc".
		{"DefaultIsSHA256", "", "abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"SHA256", SHA256, "abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"SHA512", SHA512, "abc", "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
		{"EmptyJSONDescriptor", SHA256, "{}", "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DigestOf(tc.alg, []byte(tc.input)); got != tc.want {
				t.Errorf("DigestOf(%q, %q) = %s, want %s", tc.alg, tc.input, got, tc.want)
			}
		})
	}
}

func TestNewHash_Unsupported(t *testing.T) {
	for _, alg := range []string{"", "sha384", "SHA256", "md5"} {
		if h := NewHash(alg); h != nil {
			t.Errorf("NewHash(%q) = %T, want nil", alg, h)
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	for _, seed := range []string{
		"sha256:" + strings.Repeat("a", 64),
		"sha512:" + strings.Repeat("0", 128),
		"sha256:baddigeststring",
		"sha384:abc",
		"a+b.c_d-e:A=_-z",
		"sha256:" + strings.Repeat("A", 64),
		":",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		supported := sha256Grammar.MatchString(s) || sha512Grammar.MatchString(s)
		alg, _, _ := strings.Cut(s, ":")
		otherAlgorithm := digestGrammar.MatchString(s) && alg != SHA256 && alg != SHA512
		switch {
		case err == nil && !supported:
			t.Fatalf("ParseDigest(%q) accepted a digest outside the sha256/sha512 grammar", s)
		case err == nil:
			if string(d) != s || d.Algorithm()+":"+d.Hex() != s {
				t.Fatalf("ParseDigest(%q) = %q (%q, %q), want the input back", s, d, d.Algorithm(), d.Hex())
			}
		case supported:
			t.Fatalf("ParseDigest(%q) = %v, want it accepted", s, err)
		case otherAlgorithm:
			if !errors.Is(err, ErrDigestUnsupported) {
				t.Fatalf("ParseDigest(%q) = %v, want ErrDigestUnsupported", s, err)
			}
		default:
			if !errors.Is(err, ErrDigestInvalid) {
				t.Fatalf("ParseDigest(%q) = %v, want ErrDigestInvalid", s, err)
			}
		}
	})
}
