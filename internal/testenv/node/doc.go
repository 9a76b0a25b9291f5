// Package node holds the pieces of the cluster tier's real node that are
// not built from upstream modules (docs/design/0016-cluster-tier.md): the
// pod sandbox ("pause") image, written as an OCI archive because no registry
// is reachable, and containerd's configuration for a node that lives in one
// temporary directory.
//
// Its tests carry the build tag `cluster` and need the binaries `make
// node-tools` builds; `make test-cluster` runs them. `make test` does not.
package node
