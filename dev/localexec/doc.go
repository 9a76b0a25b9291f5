// Package localexec is `mpegflow dev`'s stand-in for KEDA: it polls each
// pool's queues and starts `mpegflow encode` processes with the environment
// an encode pod gets (api/encodepod), within the pool's caps. It never links
// the coordinator: the processes it starts dial it over gRPC, as pods do in a
// cluster (internal/archtest holds it to that).
package localexec
