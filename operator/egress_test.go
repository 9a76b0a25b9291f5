package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The default except lists of the public egress rule, spelled out: a
// change to DefaultPublicEgressExcept must change these on purpose.
var (
	wantExceptV4 = []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
	}
	wantExceptV6 = []string{"::1/128", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "ff00::/8"}
)

// TestRenderEgress holds every egress rule of the pool's NetworkPolicy to
// its exact peers, ports and except lists, one configuration knob at a
// time (docs/deploy.md, "Encode-pod egress").
func TestRenderEgress(t *testing.T) {
	t.Parallel()
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	tcpPorts := func(ports ...int32) []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for _, p := range ports {
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p))})
		}
		return out
	}
	ns := func(name string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": name}}
	}
	sel := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	coordinator := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ns("mpegflow"), PodSelector: sel("app.kubernetes.io/name", "mpegflow", "app.kubernetes.io/component", "server")}},
		Ports: tcpPorts(50051),
	}
	dnsPorts := []networkingv1.NetworkPolicyPort{{Protocol: udp, Port: ptr.To(intstr.FromInt32(53))}, {Protocol: tcp, Port: ptr.To(intstr.FromInt32(53))}}
	kubeDNS := networkingv1.NetworkPolicyEgressRule{
		To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ns("kube-system"), PodSelector: sel("k8s-app", "kube-dns")}},
		Ports: dnsPorts,
	}
	public := func(v4, v6 []string, ports ...int32) networkingv1.NetworkPolicyEgressRule {
		return networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
			},
			Ports: tcpPorts(ports...),
		}
	}
	defaultPublic := public(wantExceptV4, wantExceptV6, 443)

	tests := map[string]struct {
		cfg  func(*Config)
		want []networkingv1.NetworkPolicyEgressRule
	}{
		"default: coordinator, kube-dns, public https minus every inside range": {
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, defaultPublic},
		},
		"http inputs allowed: port 80 joins 443": {
			cfg:  func(c *Config) { c.EncoderAllowHTTP = true },
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, public(wantExceptV4, wantExceptV6, 443, 80)},
		},
		"s3.cidrs: an explicit allow on the object storage ports": {
			cfg: func(c *Config) {
				c.ObjectStorageCIDRs = []string{"10.20.0.0/16", "fd00:20::/64"}
				c.ObjectStoragePorts = []int32{443, 8443}
			},
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, defaultPublic, {
				To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "fd00:20::/64"}},
				},
				Ports: tcpPorts(443, 8443),
			}},
		},
		"in-cluster S3: MinIO's namespace, pods and port": {
			cfg: func(c *Config) {
				c.InClusterS3Namespace = "minio"
				c.InClusterS3PodLabels = map[string]string{"app.kubernetes.io/name": "minio"}
			},
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, defaultPublic, {
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ns("minio"), PodSelector: sel("app.kubernetes.io/name", "minio")}},
				Ports: tcpPorts(9000),
			}},
		},
		"NodeLocal DNSCache: its link-local address beside kube-dns": {
			cfg: func(c *Config) { c.DNSCIDRs = []string{"169.254.20.10/32"} },
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, {
				To: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: ns("kube-system"), PodSelector: sel("k8s-app", "kube-dns")},
					{IPBlock: &networkingv1.IPBlock{CIDR: "169.254.20.10/32"}},
				},
				Ports: dnsPorts,
			}, defaultPublic},
		},
		"custom DNS selector": {
			cfg: func(c *Config) {
				c.DNSNamespace = "dns"
				c.DNSPodLabels = map[string]string{"app.kubernetes.io/name": "coredns"}
			},
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, {
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ns("dns"), PodSelector: sel("app.kubernetes.io/name", "coredns")}},
				Ports: dnsPorts,
			}, defaultPublic},
		},
		"custom except list, split by family": {
			cfg:  func(c *Config) { c.PublicEgressExcept = []string{"fd00::/8", "10.0.0.0/8", "203.0.113.0/24"} },
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, public([]string{"10.0.0.0/8", "203.0.113.0/24"}, []string{"fd00::/8"}, 443)},
		},
		"public egress off: only what is listed": {
			cfg: func(c *Config) {
				c.NoPublicEgress = true
				c.ObjectStorageCIDRs = []string{"10.20.0.0/16"}
			},
			want: []networkingv1.NetworkPolicyEgressRule{coordinator, kubeDNS, {
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}},
				Ports: tcpPorts(443),
			}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.ObjectStorageCIDRs = nil
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			got, err := Render(cfg, testPool("acme"))
			require.NoError(t, err)
			if diff := cmp.Diff(tt.want, got.NetworkPolicy.Spec.Egress); diff != "" {
				t.Errorf("egress (-want +got):\n%s", diff)
			}
			require.Empty(t, got.NetworkPolicy.Spec.Ingress, "nothing reaches an encode pod")
			require.Equal(t, []networkingv1.PolicyType{"Ingress", "Egress"}, got.NetworkPolicy.Spec.PolicyTypes)
		})
	}
}

// TestEgressConfigValidation: the API server would refuse the policy (a CIDR
// with host bits, an except outside its block) or it would open more than
// meant (an in-cluster S3 namespace without a pod selector).
func TestEgressConfigValidation(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg  func(*Config)
		want string
	}{
		"host bits in s3.cidrs":            {cfg: func(c *Config) { c.ObjectStorageCIDRs = []string{"10.1.2.3/16"} }, want: `object storage CIDR "10.1.2.3/16": host bits set: write 10.1.0.0/16`},
		"not a CIDR in except":             {cfg: func(c *Config) { c.PublicEgressExcept = []string{"10.0.0.1"} }, want: `public egress except CIDR "10.0.0.1"`},
		"not a CIDR in DNS":                {cfg: func(c *Config) { c.DNSCIDRs = []string{"169.254.20.10"} }, want: `DNS CIDR "169.254.20.10"`},
		"in-cluster S3 without pod labels": {cfg: func(c *Config) { c.InClusterS3Namespace = "minio" }, want: "InClusterS3PodLabels are required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			tt.cfg(&cfg)
			require.ErrorContains(t, cfg.Validate(), tt.want)
		})
	}
}

// TestAPIServerAcceptsEgressPolicy server-side applies, as the operator
// does, the NetworkPolicy of a pool with every egress knob on (http, both
// families' except lists, s3.cidrs in both families, in-cluster S3,
// NodeLocal DNSCache, a custom DNS selector) to the real kube-apiserver:
// it validates except ⊂ cidr, CIDR syntax and selectors, and must store
// the rendered spec unchanged.
func TestAPIServerAcceptsEgressPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(testREST)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(testREST)
	require.NoError(t, err)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "egress-" + hex.EncodeToString(b)
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	for name, edit := range map[string]func(*Config){
		"defaults": func(*Config) {},
		"every knob": func(c *Config) {
			c.EncoderAllowHTTP = true
			c.ObjectStorageCIDRs = []string{"10.20.0.0/16", "fd00:20::/64"}
			c.ObjectStoragePorts = []int32{443, 9000}
			c.InClusterS3Namespace, c.InClusterS3PodLabels = "minio", map[string]string{"app.kubernetes.io/name": "minio"}
			c.DNSNamespace, c.DNSPodLabels = "dns", map[string]string{"k8s-app": "coredns"}
			c.DNSCIDRs = []string{"169.254.20.10/32", "fd00:53::a/128"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Namespace = ns
			edit(&cfg)
			p := testPool(name[:5])
			objs, err := Render(cfg, p)
			require.NoError(t, err)
			u, err := ToUnstructured(objs.NetworkPolicy)
			require.NoError(t, err)
			applied, err := dyn.Resource(NetworkPolicyResource).Namespace(ns).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: ManagedBy, Force: true})
			require.NoError(t, err, "the API server refuses the rendered NetworkPolicy")
			var stored networkingv1.NetworkPolicy
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, &stored))
			if diff := cmp.Diff(objs.NetworkPolicy.Spec, stored.Spec); diff != "" {
				t.Errorf("stored spec (-rendered +stored):\n%s", diff)
			}
		})
	}
}
