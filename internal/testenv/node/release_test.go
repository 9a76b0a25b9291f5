//go:build cluster

package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/testenv"
	"github.com/mpegflow/mpegflow/internal/testenv/cluster"
	"github.com/mpegflow/mpegflow/operator"
)

// release is the chart installed by chartInstalled, and what its scenarios
// share: the API through its Service, a tenant's key, KEDA's objects.
type release struct {
	*rig
	ns, helm, chart string
	// installArgs are `helm install`'s arguments after the release name and
	// chart (namespace, kubeconfig, values, --set), for `helm upgrade`.
	installArgs []string
	// apiURL is the API Service's ClusterIP and port, which kube-proxy's
	// rules lead the host to as they lead pods.
	apiURL string
	// api is the SDK as the Owner of organization "broadcaster" (plan pro).
	api   *client.Client
	kube  ctrlclient.Client
	clips string
	// s3 and pg are object storage's and Postgres's addresses in the
	// managed services' network.
	s3, pg netip.AddrPort
	// dedicated is the pool dedicatedPool created ("" before it ran).
	dedicated string
}

var scaledJobKind = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledJob"}

// jobTimeout bounds how long one small encode takes end to end here: KEDA's
// polling interval, a pod start, the encode and the upload, on two cores.
const jobTimeout = 4 * time.Minute

// connect finds the API Service, bootstraps a platform SuperAdmin and a
// tenant with the mpegflow binary against the release's database (as a
// platform operator would), and moves the tenant to the pro plan through
// the admin API, so that it may own dedicated pools.
func (rel *release) connect(ctx context.Context, t *testing.T, mpegflow, dbURL string) {
	t.Helper()
	svc, err := rel.Clientset().CoreV1().Services(rel.ns).Get(ctx, "mf-mpegflow", metav1.GetOptions{})
	require.NoError(t, err)
	var port int32
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			port = p.Port
		}
	}
	require.NotZero(t, port, "Service mf-mpegflow has an http port: %+v", svc.Spec.Ports)
	rel.apiURL = fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, port)
	// Ready endpoints are not yet a path: until kube-proxy has written the
	// Service's rules a connection to its ClusterIP is refused (seen once:
	// the first request, right after both endpoints were ready).
	cluster.Eventually(t, podTimeout, func() bool { return cluster.ServiceProgrammed(svc.Spec.ClusterIP) },
		func() string { return "kube-proxy's rules for Service mf-mpegflow " + svc.Spec.ClusterIP })
	rel.kube, err = ctrlclient.New(rel.RESTConfig(), ctrlclient.Options{})
	require.NoError(t, err)
	rel.clips = t.TempDir()

	bootstrap := func(args ...string) (org, key string) {
		cmd := exec.CommandContext(ctx, mpegflow, append([]string{"admin", "bootstrap"}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + dbURL}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "mpegflow admin bootstrap %v: %s", args, out)
		o := regexp.MustCompile(`organization: .* \(([0-9a-f-]+)\)`).FindSubmatch(out)
		k := regexp.MustCompile(`api key \(shown once, store it now\): (\S+)`).FindSubmatch(out)
		require.True(t, o != nil && k != nil, "mpegflow admin bootstrap printed an organization and a key: %s", out)
		return string(o[1]), string(k[1])
	}
	_, adminKey := bootstrap("--org", "platform", "--email", "ops@platform.example", "--superadmin")
	org, ownerKey := bootstrap("--org", "broadcaster", "--email", "owner@broadcaster.example")
	code, body := rel.call(ctx, t, adminKey, http.MethodPatch, "/v1/admin/organizations/"+org, map[string]any{"plan": "pro"})
	require.Equal(t, http.StatusOK, code, "the SuperAdmin moves the tenant to pro: %s", body)
	rel.api, err = client.New(rel.apiURL, ownerKey, client.Config{})
	require.NoError(t, err)
}

// call sends one REST request with key through the API Service and
// returns the status and body.
func (rel *release) call(ctx context.Context, t *testing.T, key, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rel.apiURL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

// scaledJob reads the ScaledJob of pool's default lane.
func (rel *release) scaledJob(ctx context.Context, pool string) (*unstructured.Unstructured, error) {
	sj := &unstructured.Unstructured{}
	sj.SetGroupVersionKind(scaledJobKind)
	err := rel.kube.Get(ctx, ctrlclient.ObjectKey{Namespace: rel.ns, Name: operator.ScaledJobName(pool, "")}, sj)
	return sj, err
}

// waitScaledJobReady waits until the operator has rendered pool's
// ScaledJob and KEDA reports it Ready.
func (rel *release) waitScaledJobReady(ctx context.Context, t *testing.T, pool string) {
	t.Helper()
	var last string
	cluster.Eventually(t, podTimeout, func() bool {
		sj, err := rel.scaledJob(ctx, pool)
		if err != nil {
			last = err.Error()
			return false
		}
		conds, _, _ := unstructured.NestedSlice(sj.Object, "status", "conditions")
		last = fmt.Sprint(conds)
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, func() string {
		return "ScaledJob of pool " + pool + " Ready (KEDA took it up); last: " + last + "\nKEDA's logs:\n" + rel.podLogs(kedaNamespace)
	})
}

// waitPaused waits until the ScaledJob of pool carries KEDA's paused
// annotation (paused) or does not.
func (rel *release) waitPaused(ctx context.Context, t *testing.T, pool string, paused bool) {
	t.Helper()
	cluster.Eventually(t, podTimeout, func() bool {
		sj, err := rel.scaledJob(ctx, pool)
		return err == nil && (sj.GetAnnotations()["autoscaling.keda.sh/paused"] == "true") == paused
	}, func() string { return fmt.Sprintf("ScaledJob of pool %s paused=%v", pool, paused) })
}

// podTemplateLabels are the labels of pool's encode pods, as its ScaledJob
// gives them.
func (rel *release) podTemplateLabels(ctx context.Context, t *testing.T, pool string) map[string]string {
	t.Helper()
	sj, err := rel.scaledJob(ctx, pool)
	require.NoError(t, err)
	labels, found, err := unstructured.NestedStringMap(sj.Object, "spec", "jobTargetRef", "template", "metadata", "labels")
	require.NoError(t, err)
	require.True(t, found && labels[operator.LabelPool] == pool, "pool %s's pod template is labelled with it: %v", pool, labels)
	return labels
}

// kubeJobs lists the Jobs KEDA made for pool's ScaledJob.
func (rel *release) kubeJobs(ctx context.Context, t *testing.T, pool string) []batchv1.Job {
	t.Helper()
	list, err := rel.Clientset().BatchV1().Jobs(rel.ns).List(ctx, metav1.ListOptions{
		LabelSelector: "scaledjob.keda.sh/name=" + operator.ScaledJobName(pool, ""),
	})
	require.NoError(t, err)
	return list.Items
}

// clip makes a test clip of seconds at size with FFmpeg's lavfi sources
// and uploads it as an asset of the tenant, through the presigned URL the
// API gives (object storage at the bridge's address).
func (rel *release) clip(t *testing.T, name string, seconds int, size string) string {
	t.Helper()
	path := filepath.Join(rel.clips, name+".mp4")
	testenv.Clip(t, path, seconds, size)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	size64 := fi.Size()
	a, err := rel.api.CreateAsset(t.Context(), client.AssetRequest{Filename: name + ".mp4", ContentType: "video/mp4", SizeBytes: &size64})
	require.NoError(t, err, "create asset %s", name)
	require.NoError(t, rel.api.UploadFile(t.Context(), a.Upload.URL, "video/mp4", f, nil), "upload %s", name)
	return a.ID
}

// workflow is the built-in the scenarios encode with: one MP4 rendition.
const workflow = "mp4-720p"

func (rel *release) submit(t *testing.T, asset, pool string) client.Job {
	t.Helper()
	j, err := rel.api.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{AssetID: asset}, Workflow: workflow, Pool: pool})
	require.NoError(t, err, "submit a job to pool %s", pool)
	return j
}

// waitJobs waits until every job has completed; one that fails or is
// cancelled fails the test at once. It asks only about jobs not yet seen
// completed; when the API's rate limit answers 429 (the tenant's key
// allows 20 requests a second) the client waits out its Retry-After.
func (rel *release) waitJobs(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	var last []string
	completed := map[string]bool{}
	cluster.Eventually(t, timeout, func() bool {
		last = last[:0]
		done := true
		for _, id := range ids {
			if completed[id] {
				continue
			}
			// The client waits out the API's rate limit (429) itself.
			j, err := rel.api.GetJob(t.Context(), id)
			require.NoError(t, err, "get job %s", id)
			completed[id] = j.Status == client.JobCompleted
			if j.Status == client.JobFailed || j.Status == client.JobCancelled {
				msg := ""
				if j.Error != nil {
					msg = *j.Error
				}
				t.Fatalf("job %s ended %s: %s\n%s", id, j.Status, msg, rel.describe(t))
			}
			if j.Status != client.JobCompleted {
				done = false
				last = append(last, id+" "+j.Status)
			}
		}
		return done
	}, func() string { return fmt.Sprintf("jobs completed; not yet: %v\n%s", last, rel.describe(t)) })
}

// waitStatus waits until the job reaches status and returns it.
func (rel *release) waitStatus(t *testing.T, id, status string, timeout time.Duration) client.Job {
	t.Helper()
	var j client.Job
	cluster.Eventually(t, timeout, func() bool {
		var err error
		j, err = rel.api.GetJob(t.Context(), id)
		require.NoError(t, err, "get job %s", id)
		return j.Status == status
	}, func() string { return fmt.Sprintf("job %s %s (now %s)\n%s", id, status, j.Status, rel.describe(t)) })
	return j
}

// workers are the pods that claimed the job, one per attempt, from its
// job.started events.
func (rel *release) workers(t *testing.T, id string) []string {
	t.Helper()
	return testenv.Workers(t, rel.api, id)
}

// verifyOutputs downloads every output of the job through its presigned
// URL and checks each MP4 holds an H.264 video stream.
func (rel *release) verifyOutputs(t *testing.T, id string) {
	t.Helper()
	outs, err := rel.api.JobOutputs(t.Context(), id)
	require.NoError(t, err)
	require.NotEmpty(t, outs, "job %s has outputs", id)
	dir := t.TempDir()
	videos := 0
	for _, o := range outs {
		dst := filepath.Join(dir, filepath.Base(o.Name))
		n, err := rel.api.Download(t.Context(), o.Download.URL, dst)
		require.NoError(t, err, "download output %s of job %s", o.Name, id)
		require.Equal(t, o.SizeBytes, n, "output %s: bytes downloaded vs recorded", o.Name)
		if !strings.HasSuffix(o.Name, ".mp4") {
			continue
		}
		out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name", "-of", "csv=p=0", dst).Output()
		require.NoError(t, err, "ffprobe %s", o.Name)
		require.Equal(t, "h264", strings.TrimSpace(string(out)), "output %s's video codec", o.Name)
		videos++
	}
	require.Positive(t, videos, "job %s has an MP4 output", id)
}

// describe is the state of the release's pods, Jobs and logs, for failures.
func (rel *release) describe(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, _ := rel.Clientset().CoreV1().Pods(rel.ns).List(ctx, metav1.ListOptions{})
	jobs, _ := rel.Clientset().BatchV1().Jobs(rel.ns).List(ctx, metav1.ListOptions{})
	var b strings.Builder
	b.WriteString("pods: " + podSummary(pods) + "\nJobs:")
	if jobs != nil {
		for _, j := range jobs.Items {
			fmt.Fprintf(&b, " %s(active %d, succeeded %d, failed %d)", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed)
		}
	}
	b.WriteString("\ncontainer logs:\n" + rel.podLogs(rel.ns))
	return b.String()
}

// helmUpgrade runs `helm upgrade` of the release with its install's
// arguments and more --set flags.
func (rel *release) helmUpgrade(ctx context.Context, t *testing.T, set ...string) string {
	t.Helper()
	args := append([]string{"upgrade", "mf", rel.chart}, rel.installArgs...)
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := helmCommand(ctx, t, rel.helm, args...).CombinedOutput()
	require.NoError(t, err, "helm %s: %s\n%s", strings.Join(args, " "), out, rel.describe(t))
	return string(out)
}

// containerID is the CRI id of the pod's one container ("containerd://ID").
func containerID(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	require.Len(t, p.Status.ContainerStatuses, 1, "pod %s's containers", p.Name)
	id, ok := strings.CutPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	require.True(t, ok, "pod %s's container id %q", p.Name, p.Status.ContainerStatuses[0].ContainerID)
	return id
}

// portOf is the port of the Service port named name.
func (rel *release) portOf(ctx context.Context, t *testing.T, service, name string) int {
	t.Helper()
	svc, err := rel.Clientset().CoreV1().Services(rel.ns).Get(ctx, service, metav1.GetOptions{})
	require.NoError(t, err)
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return int(p.Port)
		}
	}
	t.Fatalf("Service %s has no port %s: %+v", service, name, svc.Spec.Ports)
	return 0
}
