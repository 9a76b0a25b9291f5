// Package node holds the pieces of the cluster tier's real node that are
// not built from upstream modules (docs/design/0016-cluster-tier.md): the
// pod sandbox ("pause") image, written as an OCI archive because no registry
// is reachable, and the configuration of a node that lives in one temporary
// directory: containerd's, the kubelet's, the pod network's (CNI bridge and
// host-local), kube-proxy's and CoreDNS's.
//
// Its tests carry the build tag `cluster` and need the binaries `make
// node-tools` builds; `make test-cluster` runs them, among them a one-node
// cluster (control plane, kubelet, pod network, kube-proxy, CoreDNS)
// serving a Service by its DNS name. `make test` does not.
package node
