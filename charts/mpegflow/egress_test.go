package chart_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/operator"
)

// TestEncoderEgressValues: encoderEgress, s3.cidrs and s3.inCluster reach
// the operator's Config through its environment, and the schema refuses
// what the operator would (an in-cluster S3 without a pod selector, a
// malformed CIDR).
func TestEncoderEgressValues(t *testing.T) {
	t.Parallel()
	load := func(t *testing.T, values map[string]any) operator.Config {
		t.Helper()
		r := mustRender(t, values)
		cfg, _, err := operator.FromEnv(kubeletEnv(t, containerEnv(t, r, operatorKey(r)), chartSecrets()))
		require.NoError(t, err)
		return cfg
	}
	type egress struct {
		DNSNamespace         string
		DNSPodLabels         map[string]string
		DNSCIDRs             []string
		NoPublicEgress       bool
		PublicEgressExcept   []string
		ObjectStorageCIDRs   []string
		InClusterS3Namespace string
		InClusterS3PodLabels map[string]string
		InClusterS3Ports     []int32
	}
	of := func(c operator.Config) egress {
		return egress{c.DNSNamespace, c.DNSPodLabels, c.DNSCIDRs, c.NoPublicEgress, c.PublicEgressExcept,
			c.ObjectStorageCIDRs, c.InClusterS3Namespace, c.InClusterS3PodLabels, c.InClusterS3Ports}
	}
	for name, tc := range map[string]struct {
		values map[string]any
		want   egress
	}{
		"defaults: the operator's own (kube-dns, public egress with its except list)": {
			want: egress{InClusterS3Ports: []int32{9000}},
		},
		"NodeLocal DNSCache, MinIO, a VPC endpoint, public egress off": {
			values: map[string]any{
				"encoderEgress": map[string]any{
					"dns":    map[string]any{"namespace": "dns", "podLabels": map[string]any{"app": "coredns"}, "cidrs": []any{"169.254.20.10/32"}},
					"public": map[string]any{"enabled": false, "except": []any{"10.0.0.0/8", "fc00::/7"}},
				},
				"s3": map[string]any{
					"cidrs":     []any{"10.20.0.0/16"},
					"inCluster": map[string]any{"namespace": "minio", "podLabels": map[string]any{"app.kubernetes.io/name": "minio"}, "ports": []any{9000, 9443}},
				},
			},
			want: egress{
				DNSNamespace: "dns", DNSPodLabels: map[string]string{"app": "coredns"}, DNSCIDRs: []string{"169.254.20.10/32"},
				NoPublicEgress: true, PublicEgressExcept: []string{"10.0.0.0/8", "fc00::/7"}, ObjectStorageCIDRs: []string{"10.20.0.0/16"},
				InClusterS3Namespace: "minio", InClusterS3PodLabels: map[string]string{"app.kubernetes.io/name": "minio"}, InClusterS3Ports: []int32{9000, 9443},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, of(load(t, tc.values))); diff != "" {
				t.Errorf("operator egress settings (-want +got):\n%s", diff)
			}
		})
	}
	_, err := render(t, map[string]any{"s3": map[string]any{"inCluster": map[string]any{"namespace": "minio"}}})
	require.ErrorContains(t, err, "podLabels", "an in-cluster S3 needs its pod labels")
	_, err = render(t, map[string]any{"encoderEgress": map[string]any{"dns": map[string]any{"cidrs": []any{"169.254.20.10"}}}})
	require.ErrorContains(t, err, "cidrs", "a resolver address needs its prefix length")
}
