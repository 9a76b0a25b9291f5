// Package operator turns worker_pools rows into the Kubernetes objects that
// run a pool's encode pods (design.md, Operator): per pool and lane a KEDA
// ScaledJob fed by the lane's Redis list, a TriggerAuthentication for KEDA's
// Redis credentials, a NetworkPolicy that isolates the pool's pods, and a
// Secret holding the pool's worker token.
//
// Render is pure: the same pool and Config always give the same objects, so
// `mpegflow pools plan` can print exactly what the operator applies. The
// Reconciler applies them with server-side apply under one field manager,
// deletes what no pool wants any more (found by label) and runs under a
// coordination.k8s.io Lease so only one replica ever writes.
//
// Run is the process: it refuses a database login that can write
// (CheckReadOnly), and Status, told of every Lease read and reconcile pass,
// answers /readyz, /healthz and the mpegflow_operator_* metrics.
package operator
