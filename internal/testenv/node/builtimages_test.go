//go:build cluster

package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
)

// Variables `make test-cluster` sets from `make cluster-images`: the
// project's images (make images) and their OCI archives.
const (
	imageEnv          = "MPEGFLOW_CLUSTER_IMAGE"
	imageArchiveEnv   = "MPEGFLOW_CLUSTER_IMAGE_ARCHIVE"
	encoderEnv        = "MPEGFLOW_CLUSTER_ENCODER_IMAGE"
	encoderArchiveEnv = "MPEGFLOW_CLUSTER_ENCODER_IMAGE_ARCHIVE"
)

// builtImages: the images `make images` built, imported into the node,
// run as the chart runs them: mpegflow's `version` as its own non-root user
// and the encoder's FFmpeg as uid 10001, both on a read-only root
// filesystem with every capability dropped.
func (r *rig) builtImages(t *testing.T) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*podTimeout)
	defer cancel()
	images := r.importBuiltImages(ctx, t)
	const ns = "images"
	r.Namespace(ctx, t, ns)

	// The mpegflow image: its entrypoint is the binary, so `version` is
	// the whole command; the image's user (65532) is non-root.
	exit, msg := r.runPod(ctx, t, ns, "version", corev1.Container{
		Image: images[imageEnv],
		Args:  []string{"version"},
	}, nil)
	require.Equal(t, int32(0), exit, "mpegflow version in the node: %s", msg)

	// The encoder image as the encode pod runs: uid/gid 10001, read-only
	// root. The shell proves the uid and that / is not writable, then
	// FFmpeg's first line goes to the termination message (a file the
	// kubelet mounts writable).
	script := `set -e
test "$(id -u):$(id -g)" = 10001:10001 || { echo "uid:gid $(id -u):$(id -g)" >/dev/termination-log; exit 3; }
if touch /probe 2>/dev/null; then echo "root filesystem writable" >/dev/termination-log; exit 4; fi
ffmpeg -hide_banner -version | head -n 1 >/dev/termination-log`
	exit, msg = r.runPod(ctx, t, ns, "ffmpeg", corev1.Container{
		Image:   images[encoderEnv],
		Command: []string{"sh", "-c", script},
	}, &corev1.SecurityContext{RunAsUser: ptr.To[int64](10001), RunAsGroup: ptr.To[int64](10001)})
	require.Equal(t, int32(0), exit, "ffmpeg -version as 10001 on a read-only root: %s", msg)
	require.True(t, strings.HasPrefix(msg, "ffmpeg version "), "FFmpeg's version line, got %q", msg)
	t.Logf("encoder image: %s", strings.TrimSpace(msg))
	t.Logf("scenario (import both images, run each) took %s", time.Since(started).Round(time.Millisecond))
}

// runPod runs one container of image in a pod (restartPolicy Never, no
// service account token, non-root, read-only root filesystem, no
// capabilities, no privilege escalation, sc's user and group when given)
// until it terminates, and returns its exit code and termination message.
func (r *rig) runPod(ctx context.Context, t *testing.T, ns, name string, c corev1.Container, sc *corev1.SecurityContext) (int32, string) {
	t.Helper()
	c.Name = name
	c.ImagePullPolicy = corev1.PullNever
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	c.SecurityContext = &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if sc != nil {
		c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
	}
	pods := r.Clientset().CoreV1().Pods(ns)
	_, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{c},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	var pod *corev1.Pod
	cluster.Eventually(t, podTimeout, func() bool {
		pod, err = pods.Get(ctx, name, metav1.GetOptions{})
		return err == nil && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed)
	}, func() string {
		list, _ := pods.List(ctx, metav1.ListOptions{})
		return fmt.Sprintf("pod %s terminated; pods: %s", name, podSummary(list))
	})
	require.Len(t, pod.Status.ContainerStatuses, 1)
	term := pod.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term)
	t.Logf("pod %s (%s): exit %d after %s", name, c.Image, term.ExitCode, term.FinishedAt.Sub(pod.CreationTimestamp.Time))
	return term.ExitCode, term.Message
}

// importBuiltImages imports the images `make images` built into the node,
// once per rig (BuiltImages and Chart both need them, and either may run
// alone), and returns their names by variable.
func (r *rig) importBuiltImages(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	if r.imported != nil {
		return r.imported
	}
	images := map[string]string{}
	for _, e := range [][2]string{{imageEnv, imageArchiveEnv}, {encoderEnv, encoderArchiveEnv}} {
		image, archive := cluster.Need(t, e[0]), cluster.Need(t, e[1])
		t0 := time.Now()
		r.ImportImage(ctx, t, archive, image)
		t.Logf("imported %s (%s) in %s", image, archive, time.Since(t0).Round(time.Millisecond))
		images[e[0]] = image
	}
	r.imported = images
	return images
}
