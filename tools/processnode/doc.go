// Command processnode is a virtual-kubelet node whose pods are local
// processes: the end-to-end rig's stand-in for a kubelet and a container
// runtime, the one piece of the path that is not the real thing.
//
// A pod scheduled to the node runs its first container's command and args
// (the command's base name looked up on PATH, so the freshly built mpegflow
// runs) with the container's environment as the pod controller resolved it
// (values, fieldRefs, Secrets, ConfigMaps), in a scratch directory of its
// own. Every volume mount becomes a directory inside it, and a mount path
// in an environment value, an argument or an exec probe is replaced by that
// directory. The pod is Running while the process runs, then Succeeded or
// Failed with the real exit code; exec readiness probes run as local
// commands and set the Ready condition. Deleting a pod sends SIGTERM to the
// process group, SIGKILL after the grace period, and finishes the delete
// once the process has exited (virtual-kubelet alone would wait out the
// whole grace period).
//
// It lives in its own module because virtual-kubelet brings dependencies
// the product does not need.
package main
