package operator

import (
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/internal/store"
)

// DefaultPublicEgressExcept is what the public egress rule of an encode
// pod's NetworkPolicy cuts out of 0.0.0.0/0 and ::/0 unless
// Config.PublicEgressExcept replaces it: every private, shared, loopback,
// link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254),
// multicast and reserved range, so that "the public internet on 443" never
// includes another pool's pods, the cluster's Services or the node's
// metadata endpoint. Pod and Service CIDRs outside these ranges must be
// added by the installation (docs/deploy.md, "Encode-pod egress").
var DefaultPublicEgressExcept = []string{
	"0.0.0.0/8",      // "this network"
	"10.0.0.0/8",     // RFC 1918
	"100.64.0.0/10",  // carrier-grade NAT, used for pod networks (EKS custom networking, GKE)
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local: cloud metadata, NodeLocal DNSCache
	"172.16.0.0/12",  // RFC 1918
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // RFC 1918
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, broadcast
	"::1/128",        // loopback
	"64:ff9b:1::/48", // local-use NAT64
	"fc00::/7",       // unique local (also fd00:ec2::254, EC2's metadata)
	"fe80::/10",      // link-local
	"ff00::/8",       // multicast
}

// Ports of the public egress rule: HTTPS always, HTTP only where the
// encoder may fetch http:// inputs (MPEGFLOW_ALLOW_HTTP).
const (
	httpsPort = 443
	httpPort  = 80
	dnsPort   = 53
)

// networkPolicy renders the pool's NetworkPolicy: no ingress, and egress
// only to DNS, the coordinator, object storage and public HTTPS (see
// docs/deploy.md, "Encode-pod egress", for every knob). NetworkPolicy
// rules add up, so a peer one rule excepts (NodeLocal DNSCache's
// 169.254.20.10 from the public rule) may still be allowed, on its own
// ports, by another.
func networkPolicy(cfg Config, p store.Pool) *networkingv1.NetworkPolicy {
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	nsSelector := func(ns string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	}
	tcpPorts := func(ports ...int32) []networkingv1.NetworkPolicyPort {
		out := make([]networkingv1.NetworkPolicyPort, 0, len(ports))
		for _, n := range ports {
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: tcp, Port: ptr.To(intstr.FromInt32(n))})
		}
		return out
	}

	dns := networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: nsSelector(cfg.DNSNamespace),
			PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(cfg.DNSPodLabels)},
		}},
		Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: udp, Port: ptr.To(intstr.FromInt32(dnsPort))},
			{Protocol: tcp, Port: ptr.To(intstr.FromInt32(dnsPort))},
		},
	}
	for _, c := range cfg.DNSCIDRs { // NodeLocal DNSCache: 169.254.20.10/32
		dns.To = append(dns.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{ // the coordinator (gRPC Claim, Heartbeat, PresignOutputs, Complete, Fail)
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: nsSelector(cfg.CoordinatorNamespace),
				PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(cfg.CoordinatorPodLabels)},
			}},
			Ports: tcpPorts(port(cfg.Coordinator)),
		},
		dns, // to resolve the coordinator, object storage and input hosts
	}
	if !cfg.NoPublicEgress {
		// Object storage reached by name (S3, GCS, R2...) and public
		// https:// inputs: the internet, minus everything inside.
		ports := []int32{httpsPort}
		if cfg.EncoderAllowHTTP {
			ports = append(ports, httpPort)
		}
		v4, v6 := splitFamilies(cfg.PublicEgressExcept)
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: v4}},
				{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: v6}},
			},
			Ports: tcpPorts(ports...),
		})
	}
	if len(cfg.ObjectStorageCIDRs) > 0 { // explicit allow: a VPC endpoint, an on-premises S3
		rule := networkingv1.NetworkPolicyEgressRule{Ports: tcpPorts(cfg.ObjectStoragePorts...)}
		for _, c := range cfg.ObjectStorageCIDRs {
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
		}
		egress = append(egress, rule)
	}
	if cfg.InClusterS3Namespace != "" { // MinIO or another S3 server in the cluster
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: nsSelector(cfg.InClusterS3Namespace),
				PodSelector:       &metav1.LabelSelector{MatchLabels: maps.Clone(cfg.InClusterS3PodLabels)},
			}},
			Ports: tcpPorts(cfg.InClusterS3Ports...),
		})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(cfg, p, NetworkPolicyName(p.ID), "network-policy"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: podSelector(p)},
			// Both types with no ingress rule: nothing reaches encode pods,
			// and they reach only what egress lists (so never another pool).
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      egress,
		},
	}
}

// splitFamilies splits CIDRs (validated by withDefaults) into IPv4 and IPv6
// ones, in their given order: an ipBlock's except entries must lie inside
// its cidr, so 0.0.0.0/0 and ::/0 each take their own family's.
func splitFamilies(cidrs []string) (v4, v6 []string) {
	for _, c := range cidrs {
		if pfx, err := netip.ParsePrefix(c); err == nil && pfx.Addr().Is4() {
			v4 = append(v4, c)
		} else {
			v6 = append(v6, c)
		}
	}
	return v4, v6
}
