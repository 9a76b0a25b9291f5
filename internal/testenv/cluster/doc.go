//go:build cluster

// Package cluster starts the cluster tier's one-node Kubernetes cluster
// (docs/design/0016-cluster-tier.md) for a test: etcd and kube-apiserver
// (served on the pod bridge's address, so pods reach it through the
// kubernetes Service), kube-controller-manager, kube-scheduler, a kubelet
// on containerd + runc with its pods on a CNI bridge, kube-proxy, CoreDNS
// and kube-network-policies. Start returns a *Cluster; its teardown is the
// test's cleanup.
//
// Every file carries the build tag `cluster`: the package needs root and
// the binaries `make node-tools` builds, whose paths `make test-cluster`
// passes in MPEGFLOW_NODE_* variables and KUBEBUILDER_ASSETS. `make test`
// never builds it.
package cluster
