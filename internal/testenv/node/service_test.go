//go:build cluster

package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// netcheckReport is what `netcheck get` writes to its termination message.
type netcheckReport struct {
	Addresses []string       `json:"addresses"`
	Answers   map[string]int `json:"answers"`
	Errors    int            `json:"errors"`
	LastError string         `json:"lastError"`
	// netcheck get -refused: connections before the first failure, and
	// after it.
	Early int `json:"early"`
	Leaks int `json:"leaks"`
}

// The netcheck server's ports: 8080 serves, 8081 answers the same for the
// kubelet's readiness probe (a NetworkPolicy can open it to the node alone).
const (
	servePort  = 8080
	healthPort = 8081
)

// TestCluster starts a one-node cluster (control plane, kubelet on
// containerd + runc, CNI bridge, kube-proxy, CoreDNS, kube-network-policies)
// once and runs the scenarios the chart relies on, each in a namespace of
// its own, deleted at its end.
//
// Not parallel: it is the host's only kubelet while it runs (two would
// share the kubepods cgroups), and its bridge and packet filter rules are
// host-wide.
func TestCluster(t *testing.T) {
	archive := cluster.Need(t, netcheckArchEnv)
	image := cluster.Need(t, netcheckImgEnv)
	r := &rig{Cluster: cluster.Start(t), image: image}
	ctx, cancel := context.WithTimeout(t.Context(), podTimeout)
	defer cancel()
	r.ImportImage(ctx, t, archive, image)
	r.netcheckAsNobody = netcheckAsNobody(t, cluster.Need(t, netcheckBinEnv))

	// The node's own checks, side by side (each in a namespace of its
	// own), before the chart that relies on all of them.
	t.Run("Node", func(t *testing.T) {
		for _, s := range []struct {
			name string
			run  func(*testing.T)
		}{
			{"ServiceByDNS", r.serviceByDNS},
			{"NetworkPolicyEnforced", r.networkPolicyEnforced},
			{"APIServerFromPod", r.apiServerFromPod},
			{"BuiltImages", r.builtImages},
		} {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				s.run(t)
			})
		}
	})
	// The chart, installed as a user would, then the scenarios on that
	// release: EncodeJob first (it counts the shared pool's Jobs), then the
	// rest side by side. KilledEncodeRequeued spends most of its two
	// minutes waiting for a lease to lapse and RollingAPI most of its own
	// waiting for pods, so running them one after the other would only add
	// up waits. The dedicated pool's scenarios run in order (PauseResume
	// and EncodePodPolicy use DedicatedPool's pool).
	t.Run("Chart", func(t *testing.T) {
		rel := r.chartInstalled(t)
		if !t.Run("EncodeJob", rel.encodeJob) {
			t.Log("EncodeJob failed: the release may be in any state, the scenarios after it are not run")
			return
		}
		t.Run("Alongside", func(t *testing.T) {
			t.Run("KilledEncodeRequeued", func(t *testing.T) {
				t.Parallel()
				rel.killedEncodeRequeued(t)
			})
			t.Run("RollingAPI", func(t *testing.T) {
				t.Parallel()
				rel.rollingAPI(t)
			})
			t.Run("DedicatedPool", func(t *testing.T) {
				t.Parallel()
				for _, s := range []struct {
					name string
					run  func(*testing.T)
				}{
					{"Created", rel.dedicatedPool},
					{"PauseResume", rel.pauseResume},
					{"EncodePodPolicy", rel.encodePodPolicy},
				} {
					if !t.Run(s.name, s.run) {
						t.Logf("%s failed: the dedicated pool may be in any state, the scenarios after it are not run", s.name)
						return
					}
				}
			})
		})
	})
}

// webService runs `netcheck serve` as a Deployment "web" of the given
// replicas behind a Service "web" (port 80 → 8080), waits until every
// replica is ready, in the Service's EndpointSlice and behind kube-proxy's
// rule, and returns the pods and the ClusterIP.
func (r *rig) webService(ctx context.Context, t *testing.T, ns string, replicas int32) ([]corev1.Pod, string) {
	t.Helper()
	labels := map[string]string{"app": "web"}
	_, err := r.Clientset().AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:            "web",
					Image:           r.image,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"serve", "-addr", fmt.Sprintf(":%d", servePort), "-health", fmt.Sprintf(":%d", healthPort)},
					Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
					}}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: servePort}, {Name: "health", ContainerPort: healthPort}},
					// The kubelet probes the pod's own address from the
					// host, over the bridge.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("health")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := r.Clientset().CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	clusterIP := svc.Spec.ClusterIP
	require.True(t, serviceCIDR.Contains(netip.MustParseAddr(clusterIP)), "ClusterIP %s from the service CIDR %s", clusterIP, serviceCIDR)

	cluster.Eventually(t, podTimeout, func() bool {
		d, err := r.Clientset().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == replicas
	}, func() string {
		pods, _ := r.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return fmt.Sprintf("%d ready replicas of web; pods: %s", replicas, podSummary(pods))
	})
	pods, err := r.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	require.Len(t, pods.Items, int(replicas))
	cluster.Eventually(t, podTimeout, func() bool {
		list, err := r.Clientset().DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false
		}
		ready := 0
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready += len(e.Addresses)
				}
			}
		}
		return ready == int(replicas)
	}, func() string { return fmt.Sprintf("%d ready endpoints for Service web", replicas) })
	cluster.Eventually(t, podTimeout, func() bool { return cluster.ServiceProgrammed(clusterIP) },
		func() string { return "kube-proxy's rules for Service web " + clusterIP })
	return pods.Items, clusterIP
}

// startClient creates a Job that runs `netcheck get -host host -port 80
// -want want -timeout timeout` in one pod with the given labels.
func (r *rig) startClient(ctx context.Context, t *testing.T, ns, name string, labels map[string]string, host string, want int, timeout time.Duration) {
	t.Helper()
	r.startJob(ctx, t, ns, name, labels, "get", "-host", host, "-port", "80",
		"-want", strconv.Itoa(want), "-timeout", timeout.String())
}

// startJob creates a Job that runs netcheck with args in one pod with the
// given labels, as the namespace's default service account.
func (r *rig) startJob(ctx context.Context, t *testing.T, ns, name string, labels map[string]string, args ...string) {
	t.Helper()
	_, err := r.Clientset().BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:            "client",
						Image:           r.image,
						ImagePullPolicy: corev1.PullNever,
						Args:            args,
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// clientResult waits until the Job name (a netcheck get) has finished and
// returns its exit status and report.
func (r *rig) clientResult(ctx context.Context, t *testing.T, ns, name string) (int32, netcheckReport) {
	t.Helper()
	exit, msg := r.jobResult(ctx, t, ns, name)
	var rep netcheckReport
	require.NoError(t, json.Unmarshal([]byte(msg), &rep), "Job %s's report: %q", name, msg)
	t.Logf("Job %s: exit %d, report %+v", name, exit, rep)
	return exit, rep
}

// jobResult waits until the one-pod Job name has finished, checks its pod
// ran on the pod network, and returns its container's exit status and
// termination message.
func (r *rig) jobResult(ctx context.Context, t *testing.T, ns, name string) (int32, string) {
	t.Helper()
	var job *batchv1.Job
	var err error
	selector := batchv1.JobNameLabel + "=" + name
	cluster.Eventually(t, podTimeout, func() bool {
		job, err = r.Clientset().BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && (job.Status.Succeeded > 0 || job.Status.Failed > 0)
	}, func() string {
		pods, _ := r.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return "Job " + name + " finished; pods: " + podSummary(pods)
	})
	pods, err := r.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1, "Job %s ran one pod", name)
	pod := pods.Items[0]
	require.Len(t, pod.Status.ContainerStatuses, 1)
	term := pod.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term, "Job %s's container terminated", name)
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	require.NoError(t, err)
	require.True(t, podSubnet.Contains(ip), "Job %s's pod IP %s in the pod subnet", name, ip)
	t.Logf("Job %s, pod %s (%s): exit %d", name, pod.Name, pod.Status.PodIP, term.ExitCode)
	if term.ExitCode == 0 {
		require.Equal(t, int32(1), job.Status.Succeeded)
	}
	return term.ExitCode, term.Message
}

// serviceByDNS: a Deployment's two replicas each get a network namespace
// and an address of the pod subnet, and a Job's pod resolves the Service by
// its DNS name to the ClusterIP and is answered by both replicas through it.
func (r *rig) serviceByDNS(t *testing.T) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	const ns = "netcheck"
	r.Namespace(ctx, t, ns)
	pods, clusterIP := r.webService(ctx, t, ns, 2)
	var names, ips []string
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		require.NoError(t, err, "pod %s has an IP", p.Name)
		require.True(t, podSubnet.Contains(ip), "pod %s's IP %s in the pod subnet %s (not the host's network)", p.Name, ip, podSubnet)
		require.False(t, p.Spec.HostNetwork)
		names, ips = append(names, p.Name), append(ips, ip.String())
	}
	require.NotEqual(t, ips[0], ips[1], "each replica its own address")
	t.Logf("web: 2 replicas ready at %v, Service %s programmed, after %s", ips, clusterIP, time.Since(started).Round(time.Millisecond))

	// The client resolves web by its full name through the pod's
	// resolv.conf (the kube-dns ClusterIP, CoreDNS behind it), then connects
	// to the answer until both replicas have answered.
	host := fmt.Sprintf("web.%s.svc.%s", ns, clusterDomain)
	r.startClient(ctx, t, ns, "client", nil, host, 2, 60*time.Second)
	exit, rep := r.clientResult(ctx, t, ns, "client")
	require.Equal(t, int32(0), exit, "the client saw both replicas: %+v", rep)
	require.Equal(t, []string{clusterIP}, rep.Addresses, "%s resolves to the Service's ClusterIP", host)
	got := make([]string, 0, len(rep.Answers))
	for name := range rep.Answers {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(names)
	require.Equal(t, names, got, "both replicas answered through the ClusterIP")
	t.Logf("scenario (Deployment, Service, Job) took %s", time.Since(started).Round(time.Millisecond))
}

// networkPolicyEnforced: with an ingress policy on the server (its serving
// port only from pods labelled role=allowed, its second port only from the
// node's address on the pod network) and an egress policy on pods labelled
// egress=dns-only (DNS only), an allowed client is answered through the
// Service, while a client without the label and an allowed client whose
// egress is locked are not, though both resolve the name.
func (r *rig) networkPolicyEnforced(t *testing.T) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	const ns = "policy"
	r.Namespace(ctx, t, ns)
	pods, clusterIP := r.webService(ctx, t, ns, 1)
	web := pods[0]
	require.True(t, r.netcheckAsNobody(web.Status.PodIP, servePort), "before any policy the host reaches web's serving port")

	gateway := r.HostAddress()
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	_, err := r.Clientset().NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "allowed"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(servePort))}},
				},
				{
					From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: gateway.String() + "/32"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(healthPort))}},
				},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = r.Clientset().NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-only"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"egress": "dns-only"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: &udp, Port: ptr.To(intstr.FromInt32(53))},
					{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(53))},
				},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// Enforced once a host process (not root: kube-network-policies
	// accepts everything root sends from the node, so that the kubelet's
	// probes pass) no longer reaches the serving port from the bridge's
	// address, while it still reaches the port the ipBlock rule opens.
	cluster.Eventually(t, podTimeout, func() bool { return !r.netcheckAsNobody(web.Status.PodIP, servePort) },
		func() string {
			return "the ingress policy enforced: the host (uid 65534) refused at web's serving port"
		})
	require.True(t, r.netcheckAsNobody(web.Status.PodIP, healthPort), "the ipBlock rule admits the node's address to port %d", healthPort)
	t.Logf("policies enforced after %s", time.Since(started).Round(time.Millisecond))

	// Three clients at once. Refused means no answer within 15 s, though
	// the name resolves (DNS goes to CoreDNS on the host, which no policy
	// here restricts).
	host := fmt.Sprintf("web.%s.svc.%s", ns, clusterDomain)
	refused := []struct {
		name   string
		labels map[string]string
		why    string
	}{
		{"denied", nil, "the web policy admits only role=allowed on its serving port"},
		{"locked", map[string]string{"role": "allowed", "egress": "dns-only"}, "its own egress policy allows DNS only"},
	}
	r.startClient(ctx, t, ns, "allowed", map[string]string{"role": "allowed"}, host, 1, 60*time.Second)
	for _, c := range refused {
		r.startClient(ctx, t, ns, c.name, c.labels, host, 1, 15*time.Second)
	}
	exit, rep := r.clientResult(ctx, t, ns, "allowed")
	require.Equal(t, int32(0), exit, "a role=allowed pod is answered: %+v", rep)
	require.Equal(t, []string{web.Name}, slices.Collect(maps.Keys(rep.Answers)))
	for _, c := range refused {
		exit, rep := r.clientResult(ctx, t, ns, c.name)
		require.NotEqual(t, int32(0), exit, "Job %s must not be answered (%s): %+v", c.name, c.why, rep)
		require.Empty(t, rep.Answers, "Job %s: %s", c.name, c.why)
		require.Equal(t, []string{clusterIP}, rep.Addresses, "Job %s resolved the Service", c.name)
		require.Positive(t, rep.Errors)
	}
	t.Logf("scenario (Deployment, Service, policies, three Jobs) took %s", time.Since(started).Round(time.Millisecond))
}

// netcheckAsNobody returns a probe that runs `netcheck get` on the host as
// uid 65534 against ip:port and reports whether it was answered within two
// seconds. The binary is copied where that user may run it.
func netcheckAsNobody(t *testing.T, bin string) func(ip string, port int) bool {
	t.Helper()
	dir, err := os.MkdirTemp("", "mf-netcheck-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	exe := filepath.Join(dir, "netcheck")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	return func(ip string, port int) bool {
		cmd := exec.Command(exe, "get", "-host", ip, "-port", strconv.Itoa(port), "-want", "1", "-timeout", "2s")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.Run() == nil
	}
}

func podSummary(pods *corev1.PodList) string {
	if pods == nil {
		return "(none)"
	}
	var s string
	for _, p := range pods.Items {
		s += fmt.Sprintf("\n  %s %s ip=%s", p.Name, p.Status.Phase, p.Status.PodIP)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				s += fmt.Sprintf(" %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				s += fmt.Sprintf(" waiting(%s: %s)", w.Reason, w.Message)
			}
			if term := cs.State.Terminated; term != nil {
				s += fmt.Sprintf(" terminated(%d %s: %s)", term.ExitCode, term.Reason, term.Message)
			}
		}
	}
	return s
}

// apiServerFromPod: a pod reaches the apiserver as in-cluster clients do,
// through https://kubernetes.default.svc (the cluster DNS, then the
// kubernetes Service's ClusterIP, then kube-proxy to the apiserver on the
// bridge's address), verifies its serving certificate against the
// kube-root-ca.crt the kubelet mounted, and lists ConfigMaps with its
// service account's token under a Role that allows exactly that.
func (r *rig) apiServerFromPod(t *testing.T) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	const ns = "apicheck"
	r.Namespace(ctx, t, ns)
	cs := r.Clientset()

	// The kubernetes Service leads to the apiserver's advertised address.
	eps, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	require.NoError(t, err)
	var addrs []string
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			addrs = append(addrs, e.Addresses...)
		}
	}
	require.Equal(t, []string{r.HostAddress().String()}, addrs, "the kubernetes Service's endpoint is the apiserver on the bridge")
	svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	require.NoError(t, err)
	cluster.Eventually(t, podTimeout, func() bool { return cluster.ServiceProgrammed(svc.Spec.ClusterIP) },
		func() string { return "kube-proxy's rules for the kubernetes Service " + svc.Spec.ClusterIP })

	_, err = cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "list-configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "list-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "list-configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: ns}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	url := fmt.Sprintf("https://kubernetes.default.svc/api/v1/namespaces/%s/configmaps", ns)
	r.startJob(ctx, t, ns, "lister", nil, "api", "-url", url, "-timeout", "60s")
	exit, msg := r.jobResult(ctx, t, ns, "lister")
	var rep struct {
		Status    int      `json:"status"`
		Items     []string `json:"items"`
		LastError string   `json:"lastError"`
	}
	require.NoError(t, json.Unmarshal([]byte(msg), &rep), "the lister's report: %q", msg)
	require.Equal(t, int32(0), exit, "the pod listed ConfigMaps through %s: %+v", url, rep)
	require.Equal(t, http.StatusOK, rep.Status)
	require.Contains(t, rep.Items, "kube-root-ca.crt", "the list is the namespace's ConfigMaps")
	t.Logf("scenario (a pod lists through kubernetes.default.svc with its token) took %s", time.Since(started).Round(time.Millisecond))
}
