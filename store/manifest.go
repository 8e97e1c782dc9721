package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Manifest media types berth stores. Everything else, Docker schema 1
// included, is refused.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	// MaxManifestSize is the largest manifest body accepted, in bytes. The
	// distribution spec requires registries to accept at least 4 MiB.
	MaxManifestSize = 4 << 20
)

// nondistributableLayers are the layer media types whose content the
// registry is not expected to hold (image-spec layer.md, Docker "foreign"
// layers): clients fetch them from the descriptor's urls, so a manifest
// naming them does not need them in the repository.
var nondistributableLayers = map[string]bool{
	"application/vnd.oci.image.layer.nondistributable.v1.tar":      true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":    true,
}

// Platform is the platform object of an index entry (image-spec
// image-index.md).
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
	Features     []string `json:"features,omitempty"`
}

// Descriptor is an OCI content descriptor (image-spec descriptor.md).
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	URLs         []string          `json:"urls,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
	Data         []byte            `json:"data,omitempty"`
}

// Manifest is what the store needs to know about a parsed manifest body.
type Manifest struct {
	// MediaType is the resolved media type, one of the four MediaType
	// constants.
	MediaType string
	// ArtifactType is what the referrers API reports: the body's
	// artifactType, else config.mediaType for image manifests, else "".
	ArtifactType string
	// Annotations are the top-level annotations, nil when there are none.
	Annotations map[string]string

	Config    *Descriptor  // image manifests only; never nil for them
	Layers    []Descriptor // image manifests only, non-distributable ones included
	Manifests []Descriptor // indexes and manifest lists only
	Subject   *Descriptor  // nil when the body has no subject; need not exist

	// Blobs are the blobs that must exist in the repository: the config and
	// every distributable layer, each once, in the order they first appear.
	Blobs []Digest
	// Children are the manifests an index refers to, each once, in order.
	Children []Digest
	// Sizes are the sizes the descriptors of Blobs and Children declare.
	Sizes map[Digest]int64
}

// manifestBody is the wire form: the union of the fields of image manifests
// and indexes. Unknown fields are ignored, as the image spec asks.
type manifestBody struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// ParseManifest decodes and validates a manifest body pushed with the given
// Content-Type header (which may be empty or carry parameters such as
// "; charset=utf-8"). It returns an error wrapping ErrManifestTooLarge when
// body is longer than MaxManifestSize, and ErrManifestInvalid, with a message
// saying what is wrong, for everything else: bodies that are not a JSON
// object with schemaVersion 2, media types berth does not store, a
// Content-Type that contradicts the body, bodies that are both an image and
// an index, and descriptors with a malformed digest, a negative size or
// embedded data that does not match them.
//
// The returned Manifest shares nothing with body.
func ParseManifest(contentType string, body []byte) (*Manifest, error) {
	if len(body) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrManifestTooLarge, len(body), MaxManifestSize)
	}
	var b manifestBody
	if err := decodeManifestBody(body, &b); err != nil {
		return nil, err
	}
	if b.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion is %d, only 2 is supported", ErrManifestInvalid, b.SchemaVersion)
	}
	mediaType, err := resolveMediaType(contentType, &b)
	if err != nil {
		return nil, err
	}
	m := &Manifest{MediaType: mediaType, Annotations: b.Annotations}
	if b.Subject != nil {
		if err := checkDescriptor("subject", b.Subject); err != nil {
			return nil, err
		}
		m.Subject = b.Subject
	}
	if isIndexMediaType(mediaType) {
		err = m.setIndex(&b)
	} else {
		err = m.setImage(&b)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// decodeManifestBody unmarshals body into b and turns decoding errors into
// ErrManifestInvalid with a message a client can act on.
func decodeManifestBody(body []byte, b *manifestBody) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: body is empty", ErrManifestInvalid)
	}
	// json.Unmarshal would accept null into a struct; a manifest is an object.
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", ErrManifestInvalid)
	}
	if err := json.Unmarshal(body, b); err != nil {
		return fmt.Errorf("%w: %s", ErrManifestInvalid, jsonProblem(err))
	}
	return nil
}

// jsonProblem describes a decoding error without Go type names, which mean
// nothing to the client that pushed the manifest.
func jsonProblem(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var base64Err base64.CorruptInputError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("not valid JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %q holds a JSON %s of the wrong type", typeErr.Field, typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("a JSON %s where an object was expected", typeErr.Value)
	case errors.As(err, &base64Err):
		return "a descriptor's data is not valid base64"
	}
	return "not valid JSON"
}

// resolveMediaType decides what the body is, refusing any way it could be
// read as two different things (CVE-2021-41190): a body with both index and
// image fields, a media type that contradicts the fields, or a Content-Type
// that contradicts the body's mediaType.
func resolveMediaType(contentType string, b *manifestBody) (string, error) {
	hasImageFields := b.Config != nil || b.Layers != nil
	hasIndexFields := b.Manifests != nil
	if hasImageFields && hasIndexFields {
		return "", fmt.Errorf("%w: body has both manifests and config/layers, so it could be read as an index or as an image", ErrManifestInvalid)
	}
	header := headerMediaType(contentType)
	mediaType := b.MediaType
	switch {
	case mediaType != "" && header != "" && header != mediaType:
		return "", fmt.Errorf("%w: Content-Type %q does not match the body's mediaType %q", ErrManifestInvalid, header, mediaType)
	case mediaType == "" && header != "":
		mediaType = header
	case mediaType == "" && hasIndexFields:
		mediaType = MediaTypeOCIIndex
	case mediaType == "" && hasImageFields:
		mediaType = MediaTypeOCIManifest
	case mediaType == "":
		return "", fmt.Errorf("%w: no mediaType, no Content-Type and neither manifests nor config to tell what the body is", ErrManifestInvalid)
	}
	switch {
	case !isIndexMediaType(mediaType) && !isImageMediaType(mediaType):
		return "", fmt.Errorf("%w: media type %q is not supported (use OCI image manifests and indexes or Docker schema 2)", ErrManifestInvalid, mediaType)
	case isIndexMediaType(mediaType) && hasImageFields:
		return "", fmt.Errorf("%w: %s has config or layers, which belong to an image manifest", ErrManifestInvalid, mediaType)
	case isImageMediaType(mediaType) && hasIndexFields:
		return "", fmt.Errorf("%w: %s has manifests, which belong to an index", ErrManifestInvalid, mediaType)
	}
	return mediaType, nil
}

// headerMediaType returns the media type a Content-Type header names, or ""
// when it names none. Parameters are dropped (the spec says registries
// SHOULD ignore them) and case is folded (RFC 9110: media types are
// case-insensitive).
//
// The spec makes clients send the manifest's mediaType as Content-Type, and a
// header naming a different type is refused. The generic JSON and binary
// types are treated as no header at all: plain HTTP tools send them by
// default, and since they name no manifest type they cannot make one body
// read as two types; the body alone then decides.
func headerMediaType(contentType string) string {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	switch mediaType {
	case "application/json", "application/octet-stream":
		return ""
	}
	return mediaType
}

func isImageMediaType(mediaType string) bool {
	return mediaType == MediaTypeOCIManifest || mediaType == MediaTypeDockerManifest
}

func isIndexMediaType(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerList
}

// setImage fills m from an image manifest (OCI or Docker schema 2). Layers
// may be empty: OCI artifacts need not have any.
func (m *Manifest) setImage(b *manifestBody) error {
	if b.Config == nil {
		return fmt.Errorf("%w: image manifest has no config", ErrManifestInvalid)
	}
	if err := checkDescriptor("config", b.Config); err != nil {
		return err
	}
	blobs := newDigestList(1 + len(b.Layers))
	blobs.add(b.Config.Digest)
	m.Sizes = map[Digest]int64{b.Config.Digest: b.Config.Size}
	for i := range b.Layers {
		layer := &b.Layers[i]
		where := fmt.Sprintf("layers[%d]", i)
		if err := checkDescriptor(where, layer); err != nil {
			return err
		}
		if !nondistributableLayers[layer.MediaType] {
			blobs.add(layer.Digest)
			if err := m.addSize(where, layer); err != nil {
				return err
			}
		}
	}
	m.Config, m.Layers, m.Blobs = b.Config, b.Layers, blobs.list
	m.ArtifactType = b.ArtifactType
	if m.ArtifactType == "" {
		m.ArtifactType = b.Config.MediaType
	}
	return nil
}

// setIndex fills m from an index or a Docker manifest list. An index
// without entries is valid.
func (m *Manifest) setIndex(b *manifestBody) error {
	children := newDigestList(len(b.Manifests))
	m.Sizes = make(map[Digest]int64, len(b.Manifests))
	for i := range b.Manifests {
		child := &b.Manifests[i]
		where := fmt.Sprintf("manifests[%d]", i)
		if err := checkDescriptor(where, child); err != nil {
			return err
		}
		children.add(child.Digest)
		if err := m.addSize(where, child); err != nil {
			return err
		}
	}
	m.Manifests, m.Children = b.Manifests, children.list
	m.ArtifactType = b.ArtifactType
	return nil
}

// addSize records the size d declares, refusing a digest listed twice with
// two sizes: at most one of them can be right.
func (m *Manifest) addSize(where string, d *Descriptor) error {
	if size, ok := m.Sizes[d.Digest]; ok && size != d.Size {
		return fmt.Errorf("%w: %s: %s is listed with sizes %d and %d", ErrManifestInvalid, where, d.Digest, size, d.Size)
	}
	m.Sizes[d.Digest] = d.Size
	return nil
}

// checkDescriptor validates one descriptor; where names it in the message.
// Digest errors are flattened into ErrManifestInvalid: the client sent a bad
// manifest, not a bad digest parameter.
func checkDescriptor(where string, d *Descriptor) error {
	if _, err := ParseDigest(string(d.Digest)); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrManifestInvalid, where, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%w: %s: size %d is negative", ErrManifestInvalid, where, d.Size)
	}
	// image-spec descriptor.md: the decoded data MUST be identical to the
	// referenced content, so it must have the descriptor's size and digest.
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return fmt.Errorf("%w: %s: data holds %d bytes but size is %d", ErrManifestInvalid, where, len(d.Data), d.Size)
		}
		if got := DigestOf(d.Digest.Algorithm(), d.Data); got != d.Digest {
			return fmt.Errorf("%w: %s: data has digest %s, not %s", ErrManifestInvalid, where, got, d.Digest)
		}
	}
	return nil
}

// digestList collects digests once each, in first-seen order. A map keeps
// it linear: a 4 MiB manifest can hold tens of thousands of descriptors.
type digestList struct {
	list []Digest
	seen map[Digest]bool
}

func newDigestList(capacity int) *digestList {
	return &digestList{list: make([]Digest, 0, capacity), seen: make(map[Digest]bool, capacity)}
}

func (l *digestList) add(d Digest) {
	if !l.seen[d] {
		l.seen[d] = true
		l.list = append(l.list, d)
	}
}
