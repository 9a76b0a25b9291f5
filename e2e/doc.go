//go:build e2e

// Package e2e runs MpegFlow's whole path on one machine with every piece
// real except the container runtime: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, KEDA's own operator, a
// virtual-kubelet node that runs pods as local processes
// (tools/processnode), Postgres, Redis, an S3 server, and `mpegflow serve`
// and `mpegflow operator` configured as the chart configures them. A job
// submitted over REST becomes a Kubernetes Job through KEDA, is scheduled,
// runs as `mpegflow encode`, and completes with its outputs in S3.
//
// Run it with `make test-e2e` (the build tag keeps it out of `go test
// ./...`). Missing binaries or services fail it; it never skips.
package e2e
