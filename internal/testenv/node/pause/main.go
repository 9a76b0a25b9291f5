// Command pause is the cluster tier's pod sandbox process: it holds a pod's
// namespaces open and does nothing else, like Kubernetes' own pause image,
// which cannot be pulled here. It exits 0 on SIGINT or SIGTERM (as PID 1 in
// a container it gets no default handling of those) and, since it is PID 1
// of a pod that shares its process namespace, reaps orphaned children.
//
// It is built static (CGO_ENABLED=0) and packed into an OCI archive by
// imagearchive; see `make pause-image`.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
