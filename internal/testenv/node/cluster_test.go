//go:build cluster

package node_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

// Variables `make test-cluster` sets for the cluster rig.
const (
	k8sAssetsEnv    = "KUBEBUILDER_ASSETS" // kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kube-proxy
	corednsEnv      = "MPEGFLOW_NODE_COREDNS"
	netpolEnv       = "MPEGFLOW_NODE_NETPOL"  // kube-network-policies, patched
	cniBinEnv       = "MPEGFLOW_NODE_CNI_BIN" // the reference CNI plugins (Debian: /usr/lib/cni)
	netcheckArchEnv = "MPEGFLOW_NODE_NETCHECK_ARCHIVE"
	netcheckImgEnv  = "MPEGFLOW_NODE_NETCHECK_IMAGE"
	netcheckBinEnv  = "MPEGFLOW_NODE_NETCHECK" // the same program, run on the host
)

// The rig's network: host-wide names and prefixes, chosen not to meet the
// usual ones (cni0, podman's 10.88.0.0/16, docker's 172.17.0.0/16).
var (
	podBridge   = "mfbr0"
	podSubnet   = netip.MustParsePrefix("10.244.0.0/24")
	clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	// serviceCIDR is envtest's --service-cluster-ip-range; kubernetes is
	// .1, kube-dns is pinned to .10 as kubeadm does.
	serviceCIDR = netip.MustParsePrefix("10.0.0.0/24")
	clusterDNS  = netip.MustParseAddr("10.0.0.10")
)

const clusterDomain = "cluster.local"

// netpolTable is kube-network-policies' nftables table (inet family).
const netpolTable = "kube-network-policies"

// controllers are the kube-controller-manager controllers a namespace of
// Deployments, Services and Jobs needs: workloads (deployment, replicaset,
// job), Service endpoints (endpointslice, and the mirroring of Endpoints
// objects), service accounts and their tokens (the ServiceAccount
// admission plugin is on: every pod gets a projected token and
// kube-root-ca.crt), namespaces, garbage collection, and node-lifecycle,
// which lifts the not-ready taint from a new node.
const controllers = "deployment-controller,replicaset-controller,job-controller,ttl-after-finished-controller," +
	"endpointslice-controller,endpointslice-mirroring-controller,endpoints-controller," +
	"serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller," +
	"namespace-controller,garbage-collector-controller,node-lifecycle-controller,pod-garbage-collector-controller"

const (
	rigStepTimeout = 3 * time.Minute
	podTimeout     = 3 * time.Minute
)

// rigProc is a long-running process of the rig, its output in a log file
// shown when the test fails.
type rigProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
	// stopSignal ends it cleanly: SIGTERM unless set (before the test ends).
	stopSignal syscall.Signal
}

// logTail is the last n bytes of a log file.
func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return lastBytes(string(b), n)
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startRigProc starts bin and registers its stop (SIGTERM, then SIGKILL
// after 30 s) as a cleanup.
func startRigProc(t *testing.T, logDir, name, bin string, args ...string) *rigProc {
	t.Helper()
	p := &rigProc{name: name, log: filepath.Join(logDir, name+".log"), exited: make(chan struct{}), stopSignal: syscall.SIGTERM}
	f, err := os.Create(p.log)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			t.Errorf("%s had exited before the end of the test: %v", name, p.err)
		default:
			_ = p.cmd.Process.Signal(p.stopSignal)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s of %s; killed it", name, p.stopSignal)
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, p.log, logTail(p.log, 5000))
		}
	})
	return p
}

// waitHTTP polls url (plain HTTP, or HTTPS with a self-signed certificate)
// until it answers 200, failing the test when p exits first or after
// timeout.
func waitHTTP(t *testing.T, p *rigProc, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe of a self-signed test server
	}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, url, p.err, logTail(p.log, 5000))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 within %s:\n%s", p.name, url, timeout, logTail(p.log, 5000))
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// rig is a one-node cluster: the control plane, a kubelet on containerd +
// runc with its pods on a CNI bridge, kube-proxy, CoreDNS and
// kube-network-policies.
type rig struct {
	// image is the netcheck image, imported.
	image string
	// netcheckAsNobody probes ip:port from the host as uid 65534.
	netcheckAsNobody func(ip string, port int) bool

	cs         kubernetes.Interface
	kubeconfig string
	containerd *containerd
	kubelet    node.Kubelet
	proxy      *rigProc
}

// sweepRules deletes what the node left in the host's iptables and
// ip6tables: every chain named KUBE-* (kube-proxy's and the kubelet's
// canaries) or CNI-*, and the rules of the built-in chains that jump to
// them. It returns what it found, for the test to assert on.
func sweepRules(t *testing.T) []string {
	t.Helper()
	var found []string
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(bin+"-save", "-t", table).Output()
			if err != nil {
				continue // no such table in this kernel
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if ours(line) {
					found = append(found, bin+" -t "+table+": "+line)
				}
				switch {
				case strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-"):
					chains = append(chains, strings.Fields(line[1:])[0])
				case strings.HasPrefix(line, "-A ") && ours(line) && !strings.HasPrefix(line, "-A KUBE-") && !strings.HasPrefix(line, "-A CNI-"):
					// A rule in a chain not ours that jumps to ours: delete
					// it by its specification.
					args := append([]string{"-t", table, "-D"}, splitRule(line[len("-A "):])...)
					if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
						t.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, out)
					}
				}
			}
			for _, op := range []string{"-F", "-X"} {
				for _, c := range chains {
					if out, err := exec.Command(bin, "-t", table, op, c).CombinedOutput(); err != nil {
						t.Errorf("%s -t %s %s %s: %v: %s", bin, table, op, c, err, out)
					}
				}
			}
		}
	}
	return found
}

func ours(line string) bool {
	return strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, podBridge)
}

// splitRule splits an iptables-save rule into arguments, keeping quoted
// strings (comments) whole.
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

// startRig starts a one-node cluster and registers its teardown; it
// returns once the node is Ready, kube-proxy has synced, CoreDNS answers
// for the cluster domain and kube-network-policies has loaded its table.
func startRig(t *testing.T) *rig {
	t.Helper()
	assets := need(t, k8sAssetsEnv)
	runc := need(t, runcEnv)
	binDir := need(t, containerdDirEnv)
	pauseArchive := need(t, pauseArchiveEnv)
	pauseImage := need(t, pauseImageEnv)
	coredns := need(t, corednsEnv)
	netpolBin := need(t, netpolEnv)
	cniBin := need(t, cniBinEnv)
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		_, err := os.Stat(filepath.Join(cniBin, p))
		require.NoError(t, err, "CNI plugin %s missing from %s (scripts/deps.sh node installs containernetworking-plugins)", p, cniBin)
	}
	started := time.Now()

	// A run killed before its teardown (SIGKILL, a machine reset of the
	// test binary only) leaves the node's rules and table behind; the rig
	// is the host's only node, so what is there is a dead run's.
	if stale := sweepRules(t); len(stale) > 0 {
		t.Logf("deleted %d packet filter rules and chains an earlier run left", len(stale))
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil && strings.Contains(string(out), "inet "+netpolTable) {
		t.Logf("deleting the nftables table %s an earlier run left", netpolTable)
		run(t, "nft", "delete", "table", "inet", netpolTable)
	}

	// Registered first, so it runs last: nothing of the node may stay in
	// the host's packet filter. kube-proxy removes its own rules (below),
	// startKubelet the kubelet's, kube-network-policies its table.
	t.Cleanup(func() {
		if left := sweepRules(t); len(left) > 0 {
			t.Errorf("packet filter rules of the node left after its teardown (now deleted):\n%s", strings.Join(left, "\n"))
		}
		// kube-network-policies deletes its nftables table when it stops.
		out, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil {
			t.Errorf("nft list tables: %v: %s", err, out)
		} else if strings.Contains(string(out), netpolTable) {
			t.Errorf("the NetworkPolicy controller left its nftables table (deleting it): %s", out)
			_ = exec.Command("nft", "delete", "table", "inet", netpolTable).Run()
		}
	})

	// The bridge is the node's, made before any pod: CoreDNS binds its
	// address, and the CNI bridge plugin adopts it. The plugin turns on
	// IPv4 forwarding, which is put back as it was.
	forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	if exec.Command("ip", "link", "show", podBridge).Run() == nil {
		t.Logf("deleting bridge %s left by an earlier run", podBridge)
		run(t, "ip", "link", "del", podBridge)
	}
	gateway := node.NetworkConfig{Subnet: podSubnet}.Gateway()
	run(t, "ip", "link", "add", podBridge, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", podBridge).CombinedOutput(); err != nil {
			t.Errorf("delete bridge %s: %v: %s", podBridge, err, out)
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644); err != nil {
			t.Errorf("restore net.ipv4.ip_forward: %v", err)
		}
	})
	run(t, "ip", "addr", "add", fmt.Sprintf("%s/%d", gateway, podSubnet.Bits()), "dev", podBridge)
	run(t, "ip", "link", "set", podBridge, "up")

	// The control plane: etcd and kube-apiserver by envtest, with the
	// ServiceAccount admission plugin back on (envtest turns it off), so
	// pods are admitted as on a real cluster.
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Disable("disable-admission-plugins")
	api.Configure().Set("service-cluster-ip-range", serviceCIDR.String())
	cfg, err := env.Start()
	require.NoError(t, err, "start envtest (etcd, kube-apiserver)")
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	dir := nodeDir(t)
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o700))
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, testenv.WriteKubeconfig(cfg, kubeconfig))
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, cfg.CAData, 0o600))
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)

	kcmPort, schedPort := freePort(t), freePort(t)
	kcm := startRigProc(t, logDir, "kube-controller-manager", filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers="+controllers,
		"--leader-elect=false",
		"--cert-dir="+filepath.Join(dir, "kcm-certs"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		// Tokens of legacy secrets are signed with the apiserver's key.
		"--service-account-private-key-file="+filepath.Join(api.CertDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		"--use-service-account-credentials=false",
	)
	sched := startRigProc(t, logDir, "kube-scheduler", filepath.Join(assets, "kube-scheduler"),
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--cert-dir="+filepath.Join(dir, "scheduler-certs"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
	)
	waitHTTP(t, kcm, fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), rigStepTimeout)
	waitHTTP(t, sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), rigStepTimeout)
	t.Logf("control plane up after %s", time.Since(started).Round(time.Millisecond))

	// The node: containerd with the pod network's CNI configuration (read
	// when it starts: the runtime reports NetworkReady only with one).
	netCfg := node.NetworkConfig{Bridge: podBridge, Subnet: podSubnet, IPAMDir: filepath.Join(dir, "cni", "ipam")}
	_, err = node.WriteCNIConfig(filepath.Join(dir, "cni", "net.d"), netCfg)
	require.NoError(t, err)
	c := startContainerdIn(t, binDir, node.ContainerdConfig{
		Dir: dir, Runc: runc, SandboxImage: pauseImage,
		CNIBinDirs: []string{cniBin}, CNIConfDir: filepath.Join(dir, "cni", "net.d"),
	})
	ctx, cancel := context.WithTimeout(t.Context(), rigStepTimeout)
	defer cancel()
	c.importImage(ctx, t, pauseArchive, pauseImage)
	k := startKubelet(t, filepath.Join(assets, "kubelet"), c, func(kc *node.KubeletConfig) {
		kc.Kubeconfig = kubeconfig
		kc.ClusterDNS = clusterDNS
		kc.ClusterDomain = clusterDomain
	})
	eventually(t, rigStepTimeout, func() bool {
		n, err := cs.CoreV1().Nodes().Get(ctx, k.NodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				// node-lifecycle lifts the not-ready taint shortly after.
				for _, taint := range n.Spec.Taints {
					if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
						return false
					}
				}
				return true
			}
		}
		return false
	}, func() string {
		n, err := cs.CoreV1().Nodes().Get(ctx, k.NodeName, metav1.GetOptions{})
		if err != nil {
			return "node registered: " + err.Error()
		}
		return fmt.Sprintf("node %s Ready and untainted: conditions %+v taints %+v", k.NodeName, n.Status.Conditions, n.Spec.Taints)
	})
	t.Logf("node %s Ready after %s", k.NodeName, time.Since(started).Round(time.Millisecond))

	// kube-proxy (iptables).
	proxyHealthz := freePort(t)
	proxyArgs, err := node.WriteKubeProxyConfig(node.KubeProxyConfig{
		Dir: filepath.Join(dir, "kube-proxy"), Kubeconfig: kubeconfig, NodeName: k.NodeName,
		ClusterCIDR: clusterCIDR, HealthzPort: proxyHealthz, MetricsPort: freePort(t),
	})
	require.NoError(t, err)
	// Registered before kube-proxy starts, so it runs after it stopped:
	// kube-proxy's own teardown of its rules (every mode's).
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(assets, "kube-proxy"), "--cleanup").CombinedOutput(); err != nil {
			t.Errorf("kube-proxy --cleanup: %v\n%s", err, lastBytes(string(out), 3000))
		}
	})
	proxy := startRigProc(t, logDir, "kube-proxy", filepath.Join(assets, "kube-proxy"), proxyArgs...)
	waitHTTP(t, proxy, fmt.Sprintf("http://127.0.0.1:%d/healthz", proxyHealthz), rigStepTimeout)

	// Cluster DNS: the kube-dns Service (selectorless, pinned ClusterIP)
	// whose one endpoint is CoreDNS on the bridge's address.
	_, err = cs.CoreV1().Services("kube-system").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterDNS.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	port53, udp, tcp := int32(53), corev1.ProtocolUDP, corev1.ProtocolTCP
	dnsName, dnsTCPName, ready := "dns", "dns-tcp", true
	_, err = cs.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-host", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kube-dns",
			discoveryv1.LabelManagedBy:   "mpegflow-cluster-tier",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{gateway.String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{
			{Name: &dnsName, Port: &port53, Protocol: &udp},
			{Name: &dnsTCPName, Port: &port53, Protocol: &tcp},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	readyPort := freePort(t)
	corefile, err := node.Corefile(node.CorefileConfig{
		Listen: gateway, Kubeconfig: kubeconfig, Domain: clusterDomain, HealthPort: freePort(t), ReadyPort: readyPort,
	})
	require.NoError(t, err)
	corefilePath := filepath.Join(dir, "Corefile")
	require.NoError(t, os.WriteFile(corefilePath, []byte(corefile), 0o600))
	dns := startRigProc(t, logDir, "coredns", coredns, "-conf", corefilePath)
	waitHTTP(t, dns, fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort), rigStepTimeout)
	// kube-proxy has programmed the DNS Service.
	eventually(t, rigStepTimeout, func() bool { return serviceProgrammed(clusterDNS.String()) },
		func() string { return "kube-proxy's rules for the kube-dns Service " + clusterDNS.String() })
	// NetworkPolicy: kube-network-policies (patched: the compat NFQUEUE
	// target, --kubeconfig). NRI is off in containerd (its socket is
	// host-wide), so it learns pod IPs from the apiserver. The DNS
	// workaround is for kernels before 6.12. It stops on SIGINT (not
	// SIGTERM), deleting its table.
	metrics := freePort(t)
	netpol := startRigProc(t, logDir, "kube-network-policies", netpolBin,
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+k.NodeName,
		"--disable-nri",
		"--netfilter-bug-1766-fix=false",
		"--metrics-bind-address="+fmt.Sprintf("127.0.0.1:%d", metrics),
		"--v=2",
	)
	netpol.stopSignal = syscall.SIGINT
	waitHTTP(t, netpol, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics), rigStepTimeout)
	eventually(t, rigStepTimeout, func() bool {
		out, err := exec.Command("nft", "list", "tables").Output()
		return err == nil && strings.Contains(string(out), "inet "+netpolTable)
	}, func() string { return "kube-network-policies' nftables table" })
	t.Logf("rig up (kube-proxy synced, CoreDNS ready, NetworkPolicy table loaded) after %s", time.Since(started).Round(time.Millisecond))
	return &rig{cs: cs, kubeconfig: kubeconfig, containerd: c, kubelet: k, proxy: proxy}
}

// serviceProgrammed reports whether kube-proxy has a rule for clusterIP in
// its KUBE-SERVICES chain.
func serviceProgrammed(clusterIP string) bool {
	out, err := exec.Command("iptables", "-t", "nat", "-S", "KUBE-SERVICES").Output()
	return err == nil && strings.Contains(string(out), "-d "+clusterIP+"/32")
}

// deleteNamespace deletes ns and waits until its pods are gone, so that the
// kubelet tears their sandboxes down through CNI (veth, IP lease) while it
// still runs.
func (r *rig) deleteNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), podTimeout)
	defer cancel()
	if err := r.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", ns, err)
		return
	}
	for {
		pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("pods of namespace %s not gone within %s", ns, podTimeout)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
