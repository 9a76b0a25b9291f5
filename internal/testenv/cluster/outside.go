//go:build cluster

package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The managed services' network: a network namespace of its own, joined to
// the host by a veth pair and routed (no NAT), standing for the VPC subnet
// where a cloud's managed Postgres, Redis and object storage live. Pods
// reach it through the host's forwarding path, where the NetworkPolicy
// controller filters (it does not filter what pods send to the host's own
// addresses; docs/design/0016-cluster-tier.md, "NetworkPolicy").
var (
	outsideNetns = "mfsvc"
	outsideHost  = "mfsvc0" // the host's end of the veth pair
	outsidePeer  = "mfsvc1" // the namespace's end
	// outsideSubnet: the host is .1, the services' address .2.
	outsideSubnet = netip.MustParsePrefix("192.168.250.0/30")
)

// OutsideAddress is the managed services' address (ExposeOutside).
func OutsideAddress() netip.Addr { return outsideSubnet.Addr().Next().Next() }

// startOutside makes the managed services' network and registers its
// removal; a namespace or link an earlier run left is deleted first.
func startOutside(t testing.TB) {
	t.Helper()
	if exec.Command("ip", "link", "show", outsideHost).Run() == nil {
		t.Logf("deleting link %s left by an earlier run", outsideHost)
		Run(t, "ip", "link", "del", outsideHost)
	}
	if _, err := os.Stat(filepath.Join("/var/run/netns", outsideNetns)); err == nil {
		t.Logf("deleting network namespace %s left by an earlier run", outsideNetns)
		Run(t, "ip", "netns", "del", outsideNetns)
	}
	host := outsideSubnet.Addr().Next()
	Run(t, "ip", "netns", "add", outsideNetns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", outsideNetns).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v: %s", outsideNetns, err, out)
		}
	})
	Run(t, "ip", "link", "add", outsideHost, "type", "veth", "peer", "name", outsidePeer, "netns", outsideNetns)
	Run(t, "ip", "addr", "add", fmt.Sprintf("%s/%d", host, outsideSubnet.Bits()), "dev", outsideHost)
	Run(t, "ip", "link", "set", outsideHost, "up")
	in := func(args ...string) { Run(t, "ip", append([]string{"netns", "exec", outsideNetns}, args...)...) }
	in("ip", "addr", "add", fmt.Sprintf("%s/%d", OutsideAddress(), outsideSubnet.Bits()), "dev", outsidePeer)
	in("ip", "link", "set", outsidePeer, "up")
	in("ip", "link", "set", "lo", "up")
	in("ip", "route", "add", "default", "via", host.String())
}

// ExposeOutside is Expose with the listener in the managed services'
// network: pods reach target (a loopback service of the host) at the
// returned address as they would a managed service's, through the node's
// forwarding path and so under their NetworkPolicy; the host reaches it
// by its route.
func (c *Cluster) ExposeOutside(t testing.TB, target string) netip.AddrPort {
	t.Helper()
	l, err := listenInNetns(filepath.Join("/var/run/netns", outsideNetns), net.JoinHostPort(OutsideAddress().String(), "0"))
	require.NoError(t, err)
	return relay(t, l, target)
}

// listenInNetns opens a TCP listener inside the network namespace at
// nsPath: the socket is made on a locked thread that entered the namespace
// and then returns to the host's. The thread must not end in the
// namespace's stead: the processes this test started with a parent-death
// signal (containerd, the kubelet) receive it when the thread that forked
// them exits, and a locked goroutine that ends takes its thread with it.
func listenInNetns(nsPath, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		host, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open this thread's network namespace: %w", err)}
			return
		}
		defer unix.Close(host)
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open %s: %w", nsPath, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(host, unix.CLONE_NEWNET); err != nil {
			// Stuck in the namespace: keep the thread locked, so that it
			// ends with this goroutine and nothing else runs on it.
			if lerr == nil {
				_ = l.Close()
			}
			ch <- result{err: fmt.Errorf("return to the host's network namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{l: l, err: lerr}
	}()
	r := <-ch
	return r.l, r.err
}
