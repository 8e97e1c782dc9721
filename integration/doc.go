// Package integration runs the real berth binary on 127.0.0.1 and drives it
// with real clients: go-containerregistry, skopeo and the OCI
// distribution-spec conformance suite. It holds only tests.
package integration
