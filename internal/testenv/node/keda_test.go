//go:build cluster

package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// Variables `make test-cluster` sets for KEDA's image: the operator
// binary `make keda` builds (static, as KEDA's own image has it), packed
// alone into an image with /keda as its entrypoint.
const (
	kedaArchiveEnv = "MPEGFLOW_NODE_KEDA_ARCHIVE"
	kedaImageEnv   = "MPEGFLOW_NODE_KEDA_IMAGE"
)

// kedaNamespace is where KEDA's own manifests put it.
const kedaNamespace = "keda"

// installKEDA runs KEDA's operator as a pod, from KEDA's own manifests in
// its Go module (config/: namespace, service account, RBAC, Service,
// Deployment), changed only where this node requires: the locally built
// image (no registry), and certificates given as the Secret the
// Deployment already mounts instead of KEDA rotating its own (that also
// patches webhook and APIService objects this install has none of). It
// returns once the operator is Ready and holds its leader Lease, and
// deletes it when t ends.
func (r *rig) installKEDA(ctx context.Context, t *testing.T) {
	t.Helper()
	started := time.Now()
	archive, image := cluster.Need(t, kedaArchiveEnv), cluster.Need(t, kedaImageEnv)
	r.ImportImage(ctx, t, archive, image)
	mod, err := testenv.KEDAModuleDir(ctx)
	require.NoError(t, err)
	config := filepath.Join(mod, "config")

	r.Namespace(ctx, t, kedaNamespace)
	c, err := client.New(r.RESTConfig(), client.Options{})
	require.NoError(t, err)
	for _, f := range []string{"service_account/service_account.yaml", "rbac/role.yaml", "rbac/role_binding.yaml", "manager/service.yaml"} {
		for _, obj := range decodeManifests(t, filepath.Join(config, f)) {
			require.NoError(t, c.Create(ctx, obj), "create %s %s from KEDA's %s", obj.GetKind(), obj.GetName(), f)
			if obj.GetNamespace() == "" { // cluster-wide: not deleted with the namespace
				t.Cleanup(func() {
					if err := c.Delete(context.Background(), obj); err != nil {
						t.Errorf("delete %s %s: %v", obj.GetKind(), obj.GetName(), err)
					}
				})
			}
		}
	}

	certDir := t.TempDir()
	require.NoError(t, testenv.WriteSelfSignedCerts(certDir, "keda-operator", "keda-operator."+kedaNamespace+".svc"))
	data := map[string][]byte{}
	for _, name := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := os.ReadFile(filepath.Join(certDir, name))
		require.NoError(t, err)
		data[name] = b
	}

	raw, err := os.ReadFile(filepath.Join(config, "manager", "manager.yaml"))
	require.NoError(t, err)
	var d appsv1.Deployment
	require.NoError(t, yaml.UnmarshalStrict(bytes.TrimPrefix(raw, []byte("---\n")), &d))
	require.Len(t, d.Spec.Template.Spec.Containers, 1, "KEDA's Deployment runs one container")
	cert := d.Spec.Template.Spec.Volumes[slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })]
	_, err = r.Clientset().CoreV1().Secrets(kedaNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: cert.Secret.SecretName}, Data: data,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	op := &d.Spec.Template.Spec.Containers[0]
	op.Image, op.ImagePullPolicy = image, corev1.PullNever
	i := slices.Index(op.Args, "--enable-cert-rotation=true")
	require.NotEqual(t, -1, i, "KEDA's Deployment rotates its certificates: %v", op.Args)
	op.Args[i] = "--enable-cert-rotation=false"
	op.Args = append(op.Args, "--enable-webhook-patching=false", "--enable-apiservice-patching=false")
	// The image is one static file with no user in its configuration;
	// KEDA's own image runs as distroless' nonroot (65532).
	d.Spec.Template.Spec.SecurityContext.RunAsUser = ptr.To[int64](65532)
	// Two cores for the whole node.
	op.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	_, err = r.Clientset().AppsV1().Deployments(kedaNamespace).Create(ctx, &d, metav1.CreateOptions{})
	require.NoError(t, err)

	cluster.Eventually(t, podTimeout, func() bool {
		got, err := r.Clientset().AppsV1().Deployments(kedaNamespace).Get(ctx, d.Name, metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 1
	}, func() string {
		pods, _ := r.Clientset().CoreV1().Pods(kedaNamespace).List(ctx, metav1.ListOptions{})
		return "KEDA's operator Ready; pods: " + podSummary(pods) + "\ncontainer logs:\n" + r.podLogs(kedaNamespace)
	})
	t.Logf("KEDA's operator Ready as a pod %s after its Deployment was created", time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("KEDA's logs:\n%s", r.podLogs(kedaNamespace))
		}
	})
}

// decodeManifests reads every object of a multi-document YAML file.
func decodeManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, "decode %s", path)
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		require.False(t, strings.HasPrefix(u.GetKind(), "Kustomization"), "%s is not a kustomization", path)
		out = append(out, u)
	}
}
