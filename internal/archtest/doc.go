// Package archtest has no code, only tests that hold the components to the
// boundaries between them: which packages each may link (imports_test.go,
// through `go list -deps`), and that every writer of the encode pod's
// environment tells the encoder what the encoder reads
// (encode_pod_env_test.go). They live here because they import several
// components at once, which no component's own tests should.
package archtest
