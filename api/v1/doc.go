// Package apiv1 is MpegFlow's REST contract: every request and response body
// of the /v1 API, the names the API speaks (job statuses, lanes,
// accelerators, batch phases, webhook events) and the validation that is
// part of the contract (PoolSettings.Validate). It is JSON only and imports
// nothing but the standard library, so the public Go SDK (package client),
// the CLI and third-party programs can use it without linking the server's
// database, queue or storage drivers.
//
// The server (package apiserver) maps its storage rows onto these types;
// storage rows are never written to the wire. Field names and omitempty
// behaviour here are the wire format: changing them is an API change.
//
// The package is named apiv1 rather than v1 so call sites read apiv1.Job
// without an import alias and never collide with Kubernetes' many v1
// packages (corev1, metav1) that the operator imports next to it.
package apiv1
