//go:build cluster

package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// netcheckReport is what `netcheck get` writes to its termination message.
type netcheckReport struct {
	Addresses []string       `json:"addresses"`
	Answers   map[string]int `json:"answers"`
	Errors    int            `json:"errors"`
	LastError string         `json:"lastError"`
}

// TestClusterServiceByDNS starts a one-node cluster (control plane, kubelet
// on containerd + runc, CNI bridge, kube-proxy, CoreDNS) and checks what
// the chart relies on: a Deployment's two replicas each get a network
// namespace and an address of the pod subnet, and a Job's pod resolves the
// Service by its DNS name to the ClusterIP and is answered by both
// replicas through it.
//
// Not parallel: it is the host's only kubelet while it runs (two would
// share the kubepods cgroups), and its bridge and iptables rules are
// host-wide.
func TestClusterServiceByDNS(t *testing.T) {
	archive := need(t, netcheckArchEnv)
	image := need(t, netcheckImgEnv)
	r := startRig(t)
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	r.containerd.importImage(ctx, t, archive, image)

	const ns = "netcheck"
	_, err := r.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { r.deleteNamespace(t, ns) })
	// The ServiceAccount admission plugin refuses pods until the
	// serviceaccount controller has made the namespace's default account.
	eventually(t, podTimeout, func() bool {
		_, err := r.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, func() string { return "the default service account of " + ns })

	labels := map[string]string{"app": "web"}
	_, err = r.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:            "web",
					Image:           image,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"serve", "-addr", ":8080"},
					Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
					}}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					// The kubelet probes the pod's own address: the host
					// reaches the pod over the bridge.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := r.cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	clusterIP := svc.Spec.ClusterIP
	require.True(t, serviceCIDR.Contains(netip.MustParseAddr(clusterIP)), "ClusterIP %s from the service CIDR %s", clusterIP, serviceCIDR)

	// Both replicas ready, in the Service's EndpointSlice, and kube-proxy's
	// rules for the ClusterIP in place.
	eventually(t, podTimeout, func() bool {
		d, err := r.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	}, func() string {
		pods, _ := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return fmt.Sprintf("2 ready replicas of web; pods: %s", podSummary(pods))
	})
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	require.Len(t, pods.Items, 2)
	var names, ips []string
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		require.NoError(t, err, "pod %s has an IP", p.Name)
		require.True(t, podSubnet.Contains(ip), "pod %s's IP %s in the pod subnet %s (not the host's network)", p.Name, ip, podSubnet)
		require.False(t, p.Spec.HostNetwork)
		names, ips = append(names, p.Name), append(ips, ip.String())
	}
	require.NotEqual(t, ips[0], ips[1], "each replica its own address")
	eventually(t, podTimeout, func() bool {
		list, err := r.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false
		}
		var ready []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready = append(ready, e.Addresses...)
				}
			}
		}
		return len(ready) == 2
	}, func() string { return "two ready endpoints for Service web" })
	eventually(t, podTimeout, func() bool { return serviceProgrammed(clusterIP) },
		func() string { return "kube-proxy's rules for Service web " + clusterIP })
	t.Logf("web: 2 replicas ready at %v, Service %s programmed, after %s", ips, clusterIP, time.Since(started).Round(time.Millisecond))

	// The client: resolves web by its full DNS name through the pod's
	// resolv.conf (the kube-dns ClusterIP, CoreDNS behind it), then connects
	// to the answer until both replicas have answered.
	host := fmt.Sprintf("web.%s.svc.%s", ns, clusterDomain)
	_, err = r.cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "client"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name:            "client",
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"get", "-host", host, "-port", "80", "-want", "2", "-timeout", "60s"},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var job *batchv1.Job
	eventually(t, podTimeout, func() bool {
		job, err = r.cs.BatchV1().Jobs(ns).Get(ctx, "client", metav1.GetOptions{})
		return err == nil && (job.Status.Succeeded > 0 || job.Status.Failed > 0)
	}, func() string {
		pods, _ := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=client"})
		return "the client Job finished; pods: " + podSummary(pods)
	})
	clients, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=client"})
	require.NoError(t, err)
	require.Len(t, clients.Items, 1)
	client := clients.Items[0]
	require.Len(t, client.Status.ContainerStatuses, 1)
	term := client.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term, "the client container terminated")
	var rep netcheckReport
	require.NoError(t, json.Unmarshal([]byte(term.Message), &rep), "the client's report: %q", term.Message)
	t.Logf("client pod %s (%s): exit %d, report %+v", client.Name, client.Status.PodIP, term.ExitCode, rep)
	require.Equal(t, int32(0), term.ExitCode, "the client saw both replicas: %+v", rep)
	require.Equal(t, int32(1), job.Status.Succeeded)
	require.Equal(t, []string{clusterIP}, rep.Addresses, "%s resolves to the Service's ClusterIP", host)
	got := make([]string, 0, len(rep.Answers))
	for name := range rep.Answers {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(names)
	require.Equal(t, names, got, "both replicas answered through the ClusterIP")
	clientIP := netip.MustParseAddr(client.Status.PodIP)
	require.True(t, podSubnet.Contains(clientIP), "the client pod's IP %s in the pod subnet", clientIP)
	t.Logf("scenario (image import, Deployment, Service, Job) took %s", time.Since(started).Round(time.Millisecond))
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
