package store

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// Content the test manifests point at. Only digests and sizes matter to
// ParseManifest; the bytes are kept where a descriptor embeds them as data.
var (
	configJSON   = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	digConfig    = DigestOf(SHA256, configJSON)
	digConfig512 = DigestOf(SHA512, configJSON)
	digEmpty     = DigestOf(SHA256, []byte("{}"))
	digLayer1    = DigestOf(SHA256, []byte("layer one"))
	digLayer2    = DigestOf(SHA256, []byte("layer two"))
	digForeign   = DigestOf(SHA256, []byte("foreign layer"))
	digAMD64     = DigestOf(SHA256, []byte("amd64 manifest"))
	digARM64     = DigestOf(SHA256, []byte("arm64 manifest"))
	digAttest    = DigestOf(SHA256, []byte("attestation manifest"))
	digWindows   = DigestOf(SHA256, []byte("windows manifest"))
	digForeign2  = DigestOf(SHA256, []byte("foreign update layer"))
	digSubject   = DigestOf(SHA256, []byte("subject manifest"))
	badHexDigest = "sha256:" + strings.Repeat("Z", 64)
)

const (
	typeOCIConfig        = "application/vnd.oci.image.config.v1+json"
	typeOCILayer         = "application/vnd.oci.image.layer.v1.tar+gzip"
	typeEmptyJSON        = "application/vnd.oci.empty.v1+json"
	typeSBOM             = "application/vnd.example.sbom.v1"
	typeDockerConfig     = "application/vnd.docker.container.image.v1+json"
	typeSchema1          = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	typeArtifactManifest = "application/vnd.oci.artifact.manifest.v1+json"
)

// descJSON renders a descriptor; extra is spliced in as further JSON fields.
func descJSON(mediaType string, d Digest, size int, extra ...string) string {
	fields := append([]string{fmt.Sprintf(`"mediaType":%q,"digest":%q,"size":%d`, mediaType, d, size)}, extra...)
	return "{" + strings.Join(fields, ",") + "}"
}

// imageJSON renders an image manifest with the given top-level mediaType field
// ("" leaves it out) and extra top-level fields.
func imageJSON(mediaType string, config string, layers []string, extra ...string) string {
	fields := []string{`"schemaVersion":2`}
	if mediaType != "" {
		fields = append(fields, fmt.Sprintf(`"mediaType":%q`, mediaType))
	}
	fields = append(fields, `"config":`+config, `"layers":[`+strings.Join(layers, ",")+`]`)
	return "{" + strings.Join(append(fields, extra...), ",") + "}"
}

// indexJSON renders an index the same way.
func indexJSON(mediaType string, manifests []string, extra ...string) string {
	fields := []string{`"schemaVersion":2`}
	if mediaType != "" {
		fields = append(fields, fmt.Sprintf(`"mediaType":%q`, mediaType))
	}
	fields = append(fields, `"manifests":[`+strings.Join(manifests, ",")+`]`)
	return "{" + strings.Join(append(fields, extra...), ",") + "}"
}

var (
	ociConfigDesc = descJSON(typeOCIConfig, digConfig, len(configJSON))
	ociLayerDescs = []string{descJSON(typeOCILayer, digLayer1, 9), descJSON(typeOCILayer, digLayer2, 9)}
	ociImageJSON  = imageJSON(MediaTypeOCIManifest, ociConfigDesc, ociLayerDescs)
	indexEntries  = []string{
		descJSON(MediaTypeOCIManifest, digAMD64, 14, `"platform":{"architecture":"amd64","os":"linux"}`),
		descJSON(MediaTypeOCIManifest, digARM64, 14, `"platform":{"architecture":"arm64","os":"linux","variant":"v8"}`),
	}
	ociIndexJSON = indexJSON(MediaTypeOCIIndex, indexEntries)
)

// manifestWant is what a successful parse must produce.
type manifestWant struct {
	mediaType    string
	artifactType string
	blobs        []Digest
	children     []Digest
	layers       int
	subject      Digest
	annotations  map[string]string
}

func TestParseManifest(t *testing.T) {
	imageBlobs := []Digest{digConfig, digLayer1, digLayer2}
	plain := manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: imageBlobs, layers: 2}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        manifestWant
	}{
		{"OCIImage", MediaTypeOCIManifest, ociImageJSON, plain},
		{"ContentTypeWithCharset", MediaTypeOCIManifest + "; charset=utf-8", ociImageJSON, plain},
		{"ContentTypeOtherCase", "Application/VND.oci.image.manifest.v1+JSON", ociImageJSON, plain},
		{"NoContentType", "", ociImageJSON, plain},
		{"GenericJSONContentType", "application/json", ociImageJSON, plain},
		{"GenericBinaryContentType", "application/octet-stream", ociImageJSON, plain},
		{"TypeFromContentType", MediaTypeDockerManifest, imageJSON("", descJSON(typeDockerConfig, digConfig, 10), nil),
			manifestWant{mediaType: MediaTypeDockerManifest, artifactType: typeDockerConfig, blobs: []Digest{digConfig}}},
		{"TypeInferredFromConfig", "", imageJSON("", ociConfigDesc, ociLayerDescs), plain},
		{"TypeInferredFromManifests", "application/json", indexJSON("", indexEntries),
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digARM64}}},
		{"LeadingWhitespace", "", " \n\t" + ociImageJSON + "\n", plain},
		{"NoLayers", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, nil),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: []Digest{digConfig}}},
		{"LayersAbsent", MediaTypeOCIManifest, fmt.Sprintf(`{"schemaVersion":2,"config":%s}`, ociConfigDesc),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: []Digest{digConfig}}},
		{"Artifact", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeEmptyJSON, digEmpty, 2), []string{descJSON(typeSBOM, digLayer1, 9)},
				fmt.Sprintf(`"artifactType":%q`, typeSBOM)),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeSBOM, blobs: []Digest{digEmpty, digLayer1}, layers: 1}},
		{"ArtifactLayerSameAsConfig", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeEmptyJSON, digEmpty, 2), []string{descJSON(typeEmptyJSON, digEmpty, 2)},
				fmt.Sprintf(`"artifactType":%q`, typeSBOM)),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeSBOM, blobs: []Digest{digEmpty}, layers: 1}},
		{"RepeatedLayer", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{ociLayerDescs[0], ociLayerDescs[1], ociLayerDescs[0]}),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: imageBlobs, layers: 3}},
		{"NondistributableLayers", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{
				descJSON("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", digForeign, 123456, `"urls":["https://store.example.com/blobs/x"]`),
				descJSON("application/vnd.oci.image.layer.nondistributable.v1.tar", digForeign, 12345),
				descJSON("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", digForeign, 1234),
				ociLayerDescs[0],
			}),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: []Digest{digConfig, digLayer1}, layers: 4}},
		{"Subject", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeEmptyJSON, digEmpty, 2), []string{descJSON(typeSBOM, digLayer1, 9)},
				fmt.Sprintf(`"artifactType":%q`, typeSBOM),
				`"subject":`+descJSON(MediaTypeOCIManifest, digSubject, 16),
				`"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}`),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeSBOM, blobs: []Digest{digEmpty, digLayer1}, layers: 1,
				subject: digSubject, annotations: map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}},
		{"CustomFields", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, 10, `"org.example.custom":"x"`), ociLayerDescs,
				`"org.example.custom":"value"`, `"org.example.object":{"nested":[1,2,3]}`), plain},
		{"DataField", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, len(configJSON), dataJSON(configJSON)), ociLayerDescs), plain},
		{"EmptyDataField", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, DigestOf(SHA256, nil), 0, `"data":""`), nil),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: []Digest{DigestOf(SHA256, nil)}}},
		{"SHA512", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig512, len(configJSON), dataJSON(configJSON)), nil),
			manifestWant{mediaType: MediaTypeOCIManifest, artifactType: typeOCIConfig, blobs: []Digest{digConfig512}}},
		{"OCIIndex", MediaTypeOCIIndex, ociIndexJSON,
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digARM64}}},
		{"EmptyIndex", MediaTypeOCIIndex, indexJSON(MediaTypeOCIIndex, nil),
			manifestWant{mediaType: MediaTypeOCIIndex}},
		{"IndexWithoutManifestsField", MediaTypeOCIIndex, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q}`, MediaTypeOCIIndex),
			manifestWant{mediaType: MediaTypeOCIIndex}},
		{"NestedIndex", MediaTypeOCIIndex,
			indexJSON(MediaTypeOCIIndex, []string{descJSON(MediaTypeOCIIndex, digAMD64, 100), descJSON(MediaTypeOCIIndex, digARM64, 100)}),
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digARM64}}},
		{"IndexRepeatedChild", MediaTypeOCIIndex,
			indexJSON(MediaTypeOCIIndex, []string{indexEntries[0], indexEntries[1], indexEntries[0]}),
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digARM64}}},
		{"IndexWithSubjectAndArtifactType", MediaTypeOCIIndex,
			indexJSON(MediaTypeOCIIndex, indexEntries, fmt.Sprintf(`"artifactType":%q`, typeSBOM),
				`"subject":`+descJSON(MediaTypeOCIIndex, digSubject, 16), `"annotations":{"a":"b"}`),
			manifestWant{mediaType: MediaTypeOCIIndex, artifactType: typeSBOM, children: []Digest{digAMD64, digARM64},
				subject: digSubject, annotations: map[string]string{"a": "b"}}},
		{"IndexCustomFields", MediaTypeOCIIndex,
			indexJSON(MediaTypeOCIIndex, indexEntries, `"org.example.CUSTOM":"x"`),
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digARM64}}},
		{"DockerSchema2", MediaTypeDockerManifest, dockerImageJSON,
			manifestWant{mediaType: MediaTypeDockerManifest, artifactType: typeDockerConfig, blobs: []Digest{digConfig, digLayer1, digLayer2}, layers: 2}},
		{"DockerWindowsForeignLayers", MediaTypeDockerManifest, dockerWindowsJSON,
			manifestWant{mediaType: MediaTypeDockerManifest, artifactType: typeDockerConfig, blobs: []Digest{digConfig, digLayer1}, layers: 3}},
		{"DockerManifestList", MediaTypeDockerList, dockerListJSON,
			manifestWant{mediaType: MediaTypeDockerList, children: []Digest{digAMD64, digARM64, digWindows}}},
		{"BuildxIndexWithAttestation", MediaTypeOCIIndex, buildxIndexJSON,
			manifestWant{mediaType: MediaTypeOCIIndex, children: []Digest{digAMD64, digAttest}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(tc.contentType, []byte(tc.body))
			if err != nil {
				t.Fatalf("ParseManifest(%q, %s) = %v", tc.contentType, tc.body, err)
			}
			checkParsed(t, m, tc.want)
		})
	}
}

func checkParsed(t *testing.T, m *Manifest, w manifestWant) {
	t.Helper()
	if m.MediaType != w.mediaType {
		t.Errorf("MediaType = %q, want %q", m.MediaType, w.mediaType)
	}
	if m.ArtifactType != w.artifactType {
		t.Errorf("ArtifactType = %q, want %q", m.ArtifactType, w.artifactType)
	}
	if !slices.Equal(m.Blobs, w.blobs) {
		t.Errorf("Blobs = %v, want %v", m.Blobs, w.blobs)
	}
	if !slices.Equal(m.Children, w.children) {
		t.Errorf("Children = %v, want %v", m.Children, w.children)
	}
	if len(m.Layers) != w.layers {
		t.Errorf("%d layers, want %d", len(m.Layers), w.layers)
	}
	checkManifestInvariants(t, m)
	var subject Digest
	if m.Subject != nil {
		subject = m.Subject.Digest
	}
	if subject != w.subject {
		t.Errorf("Subject = %q, want %q", subject, w.subject)
	}
	if !maps.Equal(m.Annotations, w.annotations) {
		t.Errorf("Annotations = %v, want %v", m.Annotations, w.annotations)
	}
}

func dataJSON(b []byte) string {
	return fmt.Sprintf(`"data":%q`, base64.StdEncoding.EncodeToString(b))
}

func TestParseManifest_Refused(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantErr     error
		wantMsg     string
	}{
		{"TooLarge", MediaTypeOCIManifest, ociImageJSON + strings.Repeat(" ", MaxManifestSize), ErrManifestTooLarge, "more than 4194304"},
		{"EmptyBody", MediaTypeOCIManifest, "", ErrManifestInvalid, "body is empty"},
		{"OnlyWhitespace", MediaTypeOCIManifest, " \n", ErrManifestInvalid, "body is empty"},
		{"JSONNull", MediaTypeOCIManifest, "null", ErrManifestInvalid, "not a JSON object"},
		{"JSONArray", MediaTypeOCIManifest, "[" + ociImageJSON + "]", ErrManifestInvalid, "not a JSON object"},
		{"NotJSON", MediaTypeOCIManifest, "{schemaVersion: 2}", ErrManifestInvalid, "not valid JSON at byte 2"},
		{"Truncated", MediaTypeOCIManifest, ociImageJSON[:len(ociImageJSON)-1], ErrManifestInvalid, "not valid JSON"},
		{"TrailingGarbage", MediaTypeOCIManifest, ociImageJSON + "x", ErrManifestInvalid, "not valid JSON"},
		{"DockerSchema1", typeSchema1, `{"schemaVersion":1,"name":"library/x","tag":"latest","fsLayers":[],"signatures":[]}`, ErrManifestInvalid, "schemaVersion is 1"},
		{"SchemaVersionMissing", MediaTypeOCIManifest, `{"config":` + ociConfigDesc + `}`, ErrManifestInvalid, "schemaVersion is 0"},
		{"SchemaVersionString", MediaTypeOCIManifest, `{"schemaVersion":"2","config":` + ociConfigDesc + `}`, ErrManifestInvalid, `field "schemaVersion"`},
		{"ContentTypeContradictsBody", MediaTypeOCIIndex, ociImageJSON, ErrManifestInvalid, "does not match the body's mediaType"},
		{"DockerContentTypeOCIBody", MediaTypeDockerManifest, ociImageJSON, ErrManifestInvalid, "does not match the body's mediaType"},
		{"UnrelatedContentType", "text/plain", ociImageJSON, ErrManifestInvalid, "does not match the body's mediaType"},
		{"UnknownMediaType", "", imageJSON(typeArtifactManifest, ociConfigDesc, nil), ErrManifestInvalid, "not supported"},
		{"UnknownContentType", typeSchema1, imageJSON("", ociConfigDesc, nil), ErrManifestInvalid, "not supported"},
		{"ConfigMediaTypeAsManifest", typeOCIConfig, imageJSON("", ociConfigDesc, nil), ErrManifestInvalid, "not supported"},
		{"ManifestsAndConfig", "", `{"schemaVersion":2,"config":` + ociConfigDesc + `,"manifests":[]}`, ErrManifestInvalid, "both manifests and config"},
		{"ManifestsAndLayersTypedIndex", MediaTypeOCIIndex, indexJSON(MediaTypeOCIIndex, indexEntries, `"layers":[]`), ErrManifestInvalid, "both manifests and config"},
		{"ManifestsAndLayersTypedImage", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, nil, `"manifests":[]`), ErrManifestInvalid, "both manifests and config"},
		{"ImageTypeWithManifests", MediaTypeOCIManifest, indexJSON(MediaTypeOCIManifest, indexEntries), ErrManifestInvalid, "has manifests"},
		{"DockerImageTypeWithManifests", "", indexJSON(MediaTypeDockerManifest, indexEntries), ErrManifestInvalid, "has manifests"},
		{"IndexTypeWithConfig", MediaTypeOCIIndex, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":%s}`, MediaTypeOCIIndex, ociConfigDesc), ErrManifestInvalid, "has config or layers"},
		{"IndexTypeWithLayers", "", fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"layers":[]}`, MediaTypeDockerList), ErrManifestInvalid, "has config or layers"},
		{"IndexContentTypeImageBody", MediaTypeOCIIndex, imageJSON("", ociConfigDesc, ociLayerDescs), ErrManifestInvalid, "has config or layers"},
		{"NothingToTellType", "", `{"schemaVersion":2}`, ErrManifestInvalid, "no mediaType, no Content-Type"},
		{"ImageWithoutConfig", MediaTypeOCIManifest, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"layers":[]}`, MediaTypeOCIManifest), ErrManifestInvalid, "has no config"},
		{"ConfigNull", MediaTypeOCIManifest, fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":null}`, MediaTypeOCIManifest), ErrManifestInvalid, "has no config"},
		{"ConfigEmptyObject", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, "{}", nil), ErrManifestInvalid, `config: invalid digest: ""`},
		{"ConfigMalformedDigest", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, Digest(badHexDigest), 1), nil), ErrManifestInvalid, "config: invalid digest"},
		{"LayerUnsupportedAlgorithm", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{ociLayerDescs[0], descJSON(typeOCILayer, Digest("sha384:"+strings.Repeat("a", 96)), 1)}),
			ErrManifestInvalid, "layers[1]: unsupported digest algorithm"},
		{"NondistributableLayerBadDigest", MediaTypeOCIManifest,
			imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{descJSON("application/vnd.oci.image.layer.nondistributable.v1.tar", "sha256:x", 1)}),
			ErrManifestInvalid, "layers[0]: invalid digest"},
		{"LayerNull", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{"null"}), ErrManifestInvalid, "layers[0]: invalid digest"},
		{"NegativeSize", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, []string{descJSON(typeOCILayer, digLayer1, -1)}), ErrManifestInvalid, "layers[0]: size -1 is negative"},
		{"FractionalSize", MediaTypeOCIManifest, strings.Replace(ociImageJSON, `"size":9`, `"size":9.5`, 1), ErrManifestInvalid, `field "layers.size"`},
		{"SizeTooBig", MediaTypeOCIManifest, strings.Replace(ociImageJSON, `"size":9`, `"size":99999999999999999999`, 1), ErrManifestInvalid, `field "layers.size"`},
		{"ChildBadDigest", MediaTypeOCIIndex, indexJSON(MediaTypeOCIIndex, []string{indexEntries[0], descJSON(MediaTypeOCIManifest, Digest(badHexDigest), 1)}), ErrManifestInvalid, "manifests[1]: invalid digest"},
		{"ChildNegativeSize", MediaTypeOCIIndex, indexJSON(MediaTypeOCIIndex, []string{descJSON(MediaTypeOCIManifest, digAMD64, -5)}), ErrManifestInvalid, "manifests[0]: size -5"},
		{"SubjectBadDigest", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, nil, `"subject":`+descJSON(MediaTypeOCIManifest, "sha256:nope", 1)), ErrManifestInvalid, "subject: invalid digest"},
		{"DataWrongSize", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, len(configJSON)+1, dataJSON(configJSON)), nil), ErrManifestInvalid, "config: data holds"},
		{"DataWrongContent", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, 2, dataJSON([]byte("{}"))), nil), ErrManifestInvalid, "config: data has digest " + string(digEmpty)},
		{"DataWrongAlgorithm", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig512, len(configJSON), dataJSON([]byte("x"+string(configJSON[1:])))), nil), ErrManifestInvalid, "config: data has digest sha512:"},
		{"DataNotBase64", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, 3, `"data":"!!!"`), nil), ErrManifestInvalid, "not valid base64"},
		{"AnnotationNotString", MediaTypeOCIManifest, imageJSON(MediaTypeOCIManifest, ociConfigDesc, nil, `"annotations":{"a":1}`), ErrManifestInvalid, `field "annotations"`},
		{"MediaTypeNotString", "", `{"schemaVersion":2,"mediaType":5,"config":` + ociConfigDesc + `}`, ErrManifestInvalid, `field "mediaType"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.body
			if len(input) > 300 {
				input = input[:300] + "..."
			}
			m, err := ParseManifest(tc.contentType, []byte(tc.body))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseManifest(%q, %s) = %+v, %v; want %v", tc.contentType, input, m, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("ParseManifest(%q, %s) = %q, want message containing %q", tc.contentType, input, err, tc.wantMsg)
			}
			// A bad digest inside a manifest is a bad manifest, not a bad
			// digest parameter: the HTTP layer must answer MANIFEST_INVALID.
			if errors.Is(err, ErrDigestInvalid) || errors.Is(err, ErrDigestUnsupported) {
				t.Errorf("ParseManifest(%q, %s) = %v, which also wraps a digest error", tc.contentType, input, err)
			}
		})
	}
}

// The conformance suite pushes a manifest of about 3.9 MB of annotations;
// anything up to MaxManifestSize must parse, one byte more must not.
func TestParseManifest_SizeLimit(t *testing.T) {
	head := ociImageJSON[:len(ociImageJSON)-1] + `,"annotations":{"large":"`
	const tail = `"}}`
	body := head + strings.Repeat("A", MaxManifestSize-len(head)-len(tail)) + tail
	m, err := ParseManifest(MediaTypeOCIManifest, []byte(body))
	if err != nil {
		t.Fatalf("ParseManifest of %d bytes = %v", len(body), err)
	}
	if got := len(m.Annotations["large"]); got < 4_000_000 {
		t.Errorf("annotation holds %d bytes, want the whole body", got)
	}
	if _, err := ParseManifest(MediaTypeOCIManifest, []byte(body+" ")); !errors.Is(err, ErrManifestTooLarge) {
		t.Errorf("ParseManifest of %d bytes = %v, want ErrManifestTooLarge", len(body)+1, err)
	}
}

// Descriptors come back whole: the server serves referrers and platforms
// from them.
func TestParseManifest_KeepsDescriptorFields(t *testing.T) {
	list, err := ParseManifest(MediaTypeDockerList, []byte(dockerListJSON))
	if err != nil {
		t.Fatal(err)
	}
	win := list.Manifests[2].Platform
	if win == nil || win.OS != "windows" || win.OSVersion != "10.0.17763.5458" || !slices.Equal(win.OSFeatures, []string{"win32k"}) {
		t.Errorf("windows platform = %+v", win)
	}
	if arm := list.Manifests[1].Platform; arm == nil || arm.Architecture != "arm64" || arm.Variant != "v8" {
		t.Errorf("arm64 platform = %+v", arm)
	}

	img, err := ParseManifest(MediaTypeDockerManifest, []byte(dockerWindowsJSON))
	if err != nil {
		t.Fatal(err)
	}
	if urls := img.Layers[0].URLs; len(urls) != 1 || !strings.HasPrefix(urls[0], "https://mcr.microsoft.com/") {
		t.Errorf("foreign layer urls = %v", urls)
	}

	withData, err := ParseManifest(MediaTypeOCIManifest, []byte(imageJSON(MediaTypeOCIManifest,
		descJSON(typeOCIConfig, digConfig, len(configJSON), dataJSON(configJSON), `"annotations":{"k":"v"}`), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if string(withData.Config.Data) != string(configJSON) || withData.Config.Annotations["k"] != "v" {
		t.Errorf("config = %+v", withData.Config)
	}
}

// Bodies in the shape docker, containerd and buildx push and Docker Hub
// serves (key order and indentation included), with the digests replaced.
var (
	dockerImageJSON = fmt.Sprintf(`{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1472, "digest": %q},
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3370706, "digest": %q},
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 412, "digest": %q}
   ]
}`, digConfig, digLayer1, digLayer2)

	dockerWindowsJSON = fmt.Sprintf(`{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 3297, "digest": %[1]q},
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1711011290, "digest": %[2]q,
         "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/%[2]s"]},
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "size": 1003960913, "digest": %[3]q,
         "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/%[3]s"]},
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1322, "digest": %[4]q}
   ]
}`, digConfig, digForeign, digForeign2, digLayer1)

	dockerListJSON = fmt.Sprintf(`{
  "manifests": [
    {"digest": %q, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "amd64", "os": "linux"}, "size": 528},
    {"digest": %q, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}, "size": 528},
    {"digest": %q, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5458", "os.features": ["win32k"]}, "size": 1125}
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
}`, digAMD64, digARM64, digWindows)

	buildxIndexJSON = fmt.Sprintf(`{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": %[1]q, "size": 1052,
      "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": %[2]q, "size": 839,
      "annotations": {"vnd.docker.reference.digest": %[1]q, "vnd.docker.reference.type": "attestation-manifest"},
      "platform": {"architecture": "unknown", "os": "unknown"}}
  ]
}`, digAMD64, digAttest)
)

func FuzzParseManifest(f *testing.F) {
	f.Add(MediaTypeOCIManifest, []byte(ociImageJSON))
	f.Add("", []byte(ociIndexJSON))
	f.Add(MediaTypeDockerManifest, []byte(dockerImageJSON))
	f.Add(MediaTypeDockerList+"; charset=utf-8", []byte(dockerListJSON))
	f.Add("application/json", []byte(buildxIndexJSON))
	f.Add(MediaTypeOCIManifest, []byte(imageJSON(MediaTypeOCIManifest, descJSON(typeOCIConfig, digConfig, len(configJSON), dataJSON(configJSON)), nil,
		`"subject":`+descJSON(MediaTypeOCIManifest, digSubject, 16))))
	f.Add("", []byte(`{"schemaVersion":2,"config":`+ociConfigDesc+`,"manifests":[]}`))
	f.Add(typeSchema1, []byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		m, err := ParseManifest(contentType, body)
		if err != nil {
			if !errors.Is(err, ErrManifestInvalid) && !errors.Is(err, ErrManifestTooLarge) {
				t.Fatalf("error %v wraps neither ErrManifestInvalid nor ErrManifestTooLarge", err)
			}
			if errors.Is(err, ErrDigestInvalid) || errors.Is(err, ErrDigestUnsupported) {
				t.Fatalf("error %v wraps a digest error", err)
			}
			return
		}
		checkManifestInvariants(t, m)
		// The media type is stored and served as Content-Type on pull; pushed
		// back with it, the body must read the same way.
		again, err := ParseManifest(m.MediaType, body)
		if err != nil || again.MediaType != m.MediaType {
			t.Fatalf("pushed again as %s: %v, %v", m.MediaType, again, err)
		}
	})
}

// checkManifestInvariants asserts what every accepted manifest satisfies.
func checkManifestInvariants(t *testing.T, m *Manifest) {
	t.Helper()
	if !isImageMediaType(m.MediaType) && !isIndexMediaType(m.MediaType) {
		t.Fatalf("accepted media type %q", m.MediaType)
	}
	for _, list := range [][]Digest{m.Blobs, m.Children} {
		seen := map[Digest]bool{}
		for _, d := range list {
			if _, err := ParseDigest(string(d)); err != nil {
				t.Fatalf("reference %q does not parse: %v", d, err)
			}
			if seen[d] {
				t.Fatalf("reference %s listed twice in %v", d, list)
			}
			seen[d] = true
		}
	}
	if m.Subject != nil {
		if _, err := ParseDigest(string(m.Subject.Digest)); err != nil {
			t.Fatalf("subject %q does not parse: %v", m.Subject.Digest, err)
		}
	}
	if isImageMediaType(m.MediaType) {
		if m.Config == nil || len(m.Blobs) == 0 || m.Blobs[0] != m.Config.Digest || len(m.Blobs) > 1+len(m.Layers) {
			t.Fatalf("image manifest with config %+v, %d layers, blobs %v", m.Config, len(m.Layers), m.Blobs)
		}
		if m.Manifests != nil || m.Children != nil {
			t.Fatalf("image manifest with manifests %v", m.Manifests)
		}
		if m.ArtifactType == "" && m.Config.MediaType != "" {
			t.Fatalf("ArtifactType empty though config.mediaType is %q", m.Config.MediaType)
		}
		return
	}
	if m.Config != nil || m.Layers != nil || m.Blobs != nil || len(m.Children) > len(m.Manifests) {
		t.Fatalf("index with config %+v, layers %v, blobs %v, children %v", m.Config, m.Layers, m.Blobs, m.Children)
	}
}
