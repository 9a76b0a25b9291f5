//go:build cluster

package cluster

import (
	"context"
	"fmt"
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
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

// The cluster's network: host-wide names and prefixes, chosen not to meet
// the usual ones (cni0, podman's 10.88.0.0/16, docker's 172.17.0.0/16).
var (
	podBridge = "mfbr0"
	// PodSubnet is the node's pod network, on the bridge; its first
	// address is the host's (HostAddress).
	PodSubnet   = netip.MustParsePrefix("10.244.0.0/24")
	clusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	// ServiceCIDR is the apiserver's --service-cluster-ip-range;
	// kubernetes is .1, kube-dns is pinned to .10 as kubeadm does.
	ServiceCIDR = netip.MustParsePrefix("10.0.0.0/24")
	clusterDNS  = netip.MustParseAddr("10.0.0.10")
)

// Domain is the cluster's DNS domain.
const Domain = "cluster.local"

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
	"namespace-controller,garbage-collector-controller,node-lifecycle-controller,pod-garbage-collector-controller," +
	"horizontal-pod-autoscaler-controller"

const (
	stepTimeout = 3 * time.Minute
	// PodTimeout bounds how long a test waits for pods (started, ready,
	// gone).
	PodTimeout = 3 * time.Minute
)

// Cluster is a running one-node cluster.
type Cluster struct {
	cfg        *rest.Config
	cs         kubernetes.Interface
	kubeconfig string
	containerd *Containerd
	kubelet    node.Kubelet
	dir        string
}

// RESTConfig is the cluster admin's client configuration (a copy).
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

// Clientset is a client of the cluster as its admin.
func (c *Cluster) Clientset() kubernetes.Interface { return c.cs }

// Kubeconfig is the path of the admin's kubeconfig file (for helm, kubectl
// or a process of the test).
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// NodeName is the name the kubelet registered as.
func (c *Cluster) NodeName() string { return c.kubelet.NodeName }

// HostAddress is the host's address on the pod network (the bridge's):
// the apiserver and CoreDNS listen there. kube-network-policies does not
// filter traffic from pods to the host (docs/design/0016-cluster-tier.md),
// so services whose reachability a NetworkPolicy decides are exposed in
// the managed services' network instead (ExposeOutside).
func (c *Cluster) HostAddress() netip.Addr { return node.NetworkConfig{Subnet: PodSubnet}.Gateway() }

// Dir is the node's directory (logs under Dir()/logs); it is removed when
// the test passes.
func (c *Cluster) Dir() string { return c.dir }

// Containerd is the node's container runtime.
func (c *Cluster) Containerd() *Containerd { return c.containerd }

// ImportImage imports an OCI (or Docker) image archive into the node, where
// pods with imagePullPolicy Never find it under image.
func (c *Cluster) ImportImage(ctx context.Context, t testing.TB, archive, image string) {
	t.Helper()
	c.containerd.ImportImage(ctx, t, archive, image)
}

// Start starts a one-node cluster and registers its teardown; it returns
// once the node is Ready, kube-proxy has synced, CoreDNS answers for the
// cluster domain and kube-network-policies has loaded its table. The node
// is the host's only one: tests that start it must not run in parallel
// with each other.
func Start(t testing.TB) *Cluster {
	t.Helper()
	assets := Need(t, K8sAssetsEnv)
	apiserverBin := Need(t, APIServerEnv)
	runc := Need(t, RuncEnv)
	binDir := Need(t, ContainerdDirEnv)
	pauseArchive := Need(t, PauseArchiveEnv)
	pauseImage := Need(t, PauseImageEnv)
	coredns := Need(t, CorednsEnv)
	netpolBin := Need(t, NetpolEnv)
	cniBin := Need(t, CNIBinEnv)
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		_, err := os.Stat(filepath.Join(cniBin, p))
		require.NoError(t, err, "CNI plugin %s missing from %s (scripts/deps.sh node installs containernetworking-plugins)", p, cniBin)
	}
	started := time.Now()

	// A run killed before its teardown (SIGKILL, a machine reset of the
	// test binary only) leaves the node's rules and table behind; the
	// cluster is the host's only node, so what is there is a dead run's.
	if stale := SweepRules(t); len(stale) > 0 {
		t.Logf("deleted %d packet filter rules and chains an earlier run left", len(stale))
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil && strings.Contains(string(out), "inet "+netpolTable) {
		t.Logf("deleting the nftables table %s an earlier run left", netpolTable)
		Run(t, "nft", "delete", "table", "inet", netpolTable)
	}

	// Registered first, so it runs last: nothing of the node may stay in
	// the host's packet filter. kube-proxy removes its own rules (below),
	// StartKubelet the kubelet's, kube-network-policies its table.
	t.Cleanup(func() {
		if left := SweepRules(t); len(left) > 0 {
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
		Run(t, "ip", "link", "del", podBridge)
	}
	gateway := node.NetworkConfig{Subnet: PodSubnet}.Gateway()
	Run(t, "ip", "link", "add", podBridge, "type", "bridge")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", podBridge).CombinedOutput(); err != nil {
			t.Errorf("delete bridge %s: %v: %s", podBridge, err, out)
		}
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644); err != nil {
			t.Errorf("restore net.ipv4.ip_forward: %v", err)
		}
	})
	Run(t, "ip", "addr", "add", fmt.Sprintf("%s/%d", gateway, PodSubnet.Bits()), "dev", podBridge)
	Run(t, "ip", "link", "set", podBridge, "up")
	startOutside(t)

	// The control plane: etcd and kube-apiserver by envtest, with the
	// ServiceAccount admission plugin back on (envtest turns it off), so
	// pods are admitted as on a real cluster. The apiserver listens on the
	// bridge's address and advertises it, so the kubernetes Service
	// (10.0.0.1:443) leads pods to it, with a serving certificate that names
	// that Service (envtest's names localhost and the listen address only).
	dir := NodeDir(t)
	certDir := filepath.Join(dir, "apiserver")
	serviceIP := ServiceCIDR.Addr().Next()
	caPEM, err := apiserverCerts(certDir, serviceIP, gateway, Domain)
	require.NoError(t, err)
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	api := env.ControlPlane.GetAPIServer()
	api.Path = apiserverBin
	api.CertDir = certDir
	api.SecureServing.CA = caPEM
	api.SecureServing.Address = gateway.String()
	api.SecureServing.Port = strconv.Itoa(FreePort(t))
	api.Configure().Disable("disable-admission-plugins")
	api.Configure().Set("service-cluster-ip-range", ServiceCIDR.String())
	api.Configure().Set("advertise-address", gateway.String())
	cfg, err := env.Start()
	require.NoError(t, err, "start envtest (etcd, kube-apiserver)")
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	logDir := filepath.Join(dir, "logs")
	require.NoError(t, os.MkdirAll(logDir, 0o700))
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, testenv.WriteKubeconfig(cfg, kubeconfig))
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, cfg.CAData, 0o600))
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)

	kcmPort, schedPort := FreePort(t), FreePort(t)
	kcm := StartProc(t, logDir, "kube-controller-manager", filepath.Join(assets, "kube-controller-manager"),
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
	sched := StartProc(t, logDir, "kube-scheduler", filepath.Join(assets, "kube-scheduler"),
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--cert-dir="+filepath.Join(dir, "scheduler-certs"),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
	)
	WaitHTTP(t, kcm, fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), stepTimeout)
	WaitHTTP(t, sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), stepTimeout)
	t.Logf("control plane up after %s", time.Since(started).Round(time.Millisecond))

	// The node: containerd with the pod network's CNI configuration (read
	// when it starts: the runtime reports NetworkReady only with one).
	netCfg := node.NetworkConfig{Bridge: podBridge, Subnet: PodSubnet, IPAMDir: filepath.Join(dir, "cni", "ipam")}
	_, err = node.WriteCNIConfig(filepath.Join(dir, "cni", "net.d"), netCfg)
	require.NoError(t, err)
	c := StartContainerdIn(t, binDir, node.ContainerdConfig{
		Dir: dir, Runc: runc, SandboxImage: pauseImage,
		CNIBinDirs: []string{cniBin}, CNIConfDir: filepath.Join(dir, "cni", "net.d"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c.ImportImage(ctx, t, pauseArchive, pauseImage)
	k := StartKubelet(t, filepath.Join(assets, "kubelet"), c, func(kc *node.KubeletConfig) {
		kc.Kubeconfig = kubeconfig
		kc.ClusterDNS = clusterDNS
		kc.ClusterDomain = Domain
	})
	Eventually(t, stepTimeout, func() bool {
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
	proxyHealthz := FreePort(t)
	proxyArgs, err := node.WriteKubeProxyConfig(node.KubeProxyConfig{
		Dir: filepath.Join(dir, "kube-proxy"), Kubeconfig: kubeconfig, NodeName: k.NodeName,
		ClusterCIDR: clusterCIDR, HealthzPort: proxyHealthz, MetricsPort: FreePort(t),
	})
	require.NoError(t, err)
	// Registered before kube-proxy starts, so it runs after it stopped:
	// kube-proxy's own teardown of its rules (every mode's).
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(assets, "kube-proxy"), "--cleanup").CombinedOutput(); err != nil {
			t.Errorf("kube-proxy --cleanup: %v\n%s", err, lastBytes(string(out), 3000))
		}
	})
	proxy := StartProc(t, logDir, "kube-proxy", filepath.Join(assets, "kube-proxy"), proxyArgs...)
	WaitHTTP(t, proxy, fmt.Sprintf("http://127.0.0.1:%d/healthz", proxyHealthz), stepTimeout)

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
	readyPort := FreePort(t)
	corefile, err := node.Corefile(node.CorefileConfig{
		Listen: gateway, Kubeconfig: kubeconfig, Domain: Domain, HealthPort: FreePort(t), ReadyPort: readyPort,
	})
	require.NoError(t, err)
	corefilePath := filepath.Join(dir, "Corefile")
	require.NoError(t, os.WriteFile(corefilePath, []byte(corefile), 0o600))
	dns := StartProc(t, logDir, "coredns", coredns, "-conf", corefilePath)
	WaitHTTP(t, dns, fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort), stepTimeout)
	// kube-proxy has programmed the DNS Service.
	Eventually(t, stepTimeout, func() bool { return ServiceProgrammed(clusterDNS.String()) },
		func() string { return "kube-proxy's rules for the kube-dns Service " + clusterDNS.String() })
	// NetworkPolicy: kube-network-policies (patched: the compat NFQUEUE
	// target, --kubeconfig). NRI is off in containerd (its socket is
	// host-wide), so it learns pod IPs from the apiserver. The DNS
	// workaround is for kernels before 6.12. It stops on SIGINT (not
	// SIGTERM), deleting its table.
	metrics := FreePort(t)
	netpol := StartProc(t, logDir, "kube-network-policies", netpolBin,
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+k.NodeName,
		"--disable-nri",
		"--netfilter-bug-1766-fix=false",
		"--metrics-bind-address="+fmt.Sprintf("127.0.0.1:%d", metrics),
		"--v=2",
	)
	netpol.StopSignal = syscall.SIGINT
	WaitHTTP(t, netpol, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics), stepTimeout)
	Eventually(t, stepTimeout, func() bool {
		out, err := exec.Command("nft", "list", "tables").Output()
		return err == nil && strings.Contains(string(out), "inet "+netpolTable)
	}, func() string { return "kube-network-policies' nftables table" })
	t.Logf("cluster up (kube-proxy synced, CoreDNS ready, NetworkPolicy table loaded) after %s", time.Since(started).Round(time.Millisecond))
	return &Cluster{cfg: cfg, cs: cs, kubeconfig: kubeconfig, containerd: c, kubelet: k, dir: dir}
}

// ServiceProgrammed reports whether kube-proxy has a rule for clusterIP in
// its KUBE-SERVICES chain.
func ServiceProgrammed(clusterIP string) bool {
	out, err := exec.Command("iptables", "-t", "nat", "-S", "KUBE-SERVICES").Output()
	return err == nil && strings.Contains(string(out), "-d "+clusterIP+"/32")
}

// Namespace creates ns, deletes it when the (sub)test ends (waiting until
// its pods are gone), and waits for its default service account: the
// ServiceAccount admission plugin refuses pods until the serviceaccount
// controller has made it.
func (c *Cluster) Namespace(ctx context.Context, t testing.TB, ns string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { c.DeleteNamespace(t, ns) })
	Eventually(t, PodTimeout, func() bool {
		_, err := c.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, func() string { return "the default service account of " + ns })
}

// DeleteNamespace deletes ns and waits until its pods are gone, so that the
// kubelet tears their sandboxes down through CNI (veth, IP lease) while it
// still runs.
func (c *Cluster) DeleteNamespace(t testing.TB, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), PodTimeout)
	defer cancel()
	if err := c.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", ns, err)
		return
	}
	for {
		pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("pods of namespace %s not gone within %s", ns, PodTimeout)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}
