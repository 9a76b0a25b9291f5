//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestProcessNode checks the node on its own, with the scheduler placing
// pods: an exec readiness probe on an emptyDir file flips Ready, the real
// exit code is reported, and deleting a running pod finishes as soon as
// its process has exited, not after the whole grace period.
func TestProcessNode(t *testing.T) {
	t.Parallel()
	binDir := buildBinaries(t)
	cp := startControlPlane(t)
	cs, err := kubernetes.NewForConfig(cp.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, work := startProcessNode(t, cs, cp.kubeconfig, filepath.Join(binDir, "processnode"), binDir)

	pod := func(name, script string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: new(int64(60)),
				Containers: []corev1.Container{{
					Name: "main", Image: "none", Command: []string{"/bin/sh", "-c", script},
					Env: []corev1.EnvVar{
						{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						// A mount path at the start of a value is the pod's own directory.
						{Name: "SCRATCH", Value: "/scratch"},
					},
					VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/scratch/ready"}}},
						PeriodSeconds: 1, FailureThreshold: 1,
					},
				}},
				Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pods := cs.CoreV1().Pods(namespace)

	// Ready from the probe, then Failed with exit code 3. The pod becomes
	// ready only once it wrote the file, and exits once told to.
	if _, err := pods.Create(ctx, pod("exits", `test "$POD" = exits || exit 9; sleep 1; touch "$SCRATCH/ready"; while [ ! -f "$SCRATCH/go" ]; do sleep 0.2; done; exit 3`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var p *corev1.Pod
	if err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		p, err = pods.Get(ctx, "exits", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, errTerminal(p)
		}
		return podReady(p), nil
	}, "wait for pod exits to be Ready"); err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != nodeName {
		t.Fatalf("pod scheduled to %q, want %q", p.Spec.NodeName, nodeName)
	}
	if err := os.WriteFile(filepath.Join(podScratch(work, p), "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		p, err = pods.Get(ctx, "exits", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodFailed, err
	}, "wait for pod exits to fail"); err != nil {
		t.Fatal(err)
	}
	if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 3 {
		t.Fatalf("container status %+v, want terminated with exit code 3", p.Status.ContainerStatuses)
	}
	if podReady(p) {
		t.Fatal("a failed pod is still Ready")
	}

	// Delete a running pod whose process exits on SIGTERM: gone in
	// seconds although the grace period is 60 s.
	if _, err := pods.Create(ctx, pod("sleeper", `trap 'exit 0' TERM; touch "$SCRATCH/ready"; while true; do sleep 0.2; done`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		p, err = pods.Get(ctx, "sleeper", metav1.GetOptions{})
		return err == nil && podReady(p), err
	}, "wait for pod sleeper to be Ready"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := pods.Delete(ctx, "sleeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 200*time.Millisecond, func() (bool, error) {
		_, err := pods.Get(ctx, "sleeper", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "wait for pod sleeper to be deleted"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(deleted); d > 20*time.Second {
		t.Fatalf("deleting a pod whose process exits on SIGTERM took %s; the node should finish the delete once the process exits", d)
	}
}
