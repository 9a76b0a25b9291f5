package operator

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
	"github.com/mpegflow/mpegflow/internal/testenv"
)

// These tests run KEDA's own operator (v2.21, $KEDA_OPERATOR) against the
// package's envtest apiserver and the test Redis, on the ScaledJobs the real
// reconciler applies from pools in Postgres. Nothing runs pods here: there
// is no Job controller and no kubelet, so a Job has no pod until the test
// creates one, and a pod is Ready only when the test says so, as the
// encoder's readiness probe would once it holds a claim. KEDA (accurate
// strategy, pendingPodConditions [Ready]) counts a Job as pending until one
// of its pods (label job-name) has every listed condition; unfinished Jobs
// are running; it creates ceil(LLEN/listLength) − pending Jobs, capped at
// max − running.

// kedaPollSeconds is the pools' pollingInterval: short, to keep the tests
// quick; deadlines below are counted in it.
const kedaPollSeconds = 1

// kedaDeadline bounds "within a couple of polling intervals" on a loaded
// two-core machine: KEDA's first poll follows its informer sync, and one
// loop does a Redis round trip and a few API calls per Job.
const kedaDeadline = 20 * time.Second

// kedaHarness is a harness whose pools KEDA scales: its reconciler renders
// triggers at the test Redis under a private key prefix, through a Redis
// user that may only run what KEDA's redis scaler runs.
type kedaHarness struct {
	*harness
	rdb  *redis.Client
	keys queue.Keys
	keda *testenv.KEDA
}

func newKEDAHarness(t *testing.T) *kedaHarness {
	t.Helper()
	h := newHarness(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()

	// The Redis user KEDA polls with: exactly what its redis scaler runs
	// (PING when it connects, then EVAL of TYPE + LLEN), on this test's
	// keys only. Without +ping KEDA fails with NOPERM before any poll.
	user, password := "keda-"+h.ns, "pw-"+randHex()
	require.NoError(t, rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+password,
		"~"+prefix+":*", "-@all", "+ping", "+eval", "+type", "+llen").Err())
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })

	cfg := h.cfg
	cfg.RedisAddress = rdb.Options().Addr
	cfg.RedisDatabase = rdb.Options().DB
	cfg.RedisKeyPrefix = prefix
	rec, err := NewReconciler(cfg, h.rec.pools, h.dyn, h.rec.log)
	require.NoError(t, err)
	h.cfg, h.rec = cfg, rec
	_, err = h.cs.CoreV1().Secrets(h.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "mpegflow-keda-redis"},
		StringData: map[string]string{"username": user, "password": password},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	k := testenv.StartKEDA(t, testREST, testenv.KEDAOptions{Namespace: h.ns, WatchNamespace: h.ns})
	return &kedaHarness{harness: h, rdb: rdb, keys: queue.NewKeys(prefix), keda: k}
}

// kedaPool creates a CPU pool KEDA polls every second, one Job per id.
func (h *kedaHarness) kedaPool(name string, maxReplicas int) store.Pool {
	set := store.DefaultPoolSettings()
	set.Name, set.MinReplicas, set.MaxReplicas, set.BackfillMaxReplicas = name, 0, maxReplicas, 0
	set.PollingIntervalSeconds, set.TargetQueueLength = kedaPollSeconds, 1
	return h.createPool(set)
}

// push queues n fresh job ids on the pool's live list, as the apiserver does.
func (h *kedaHarness) push(p store.Pool, n int) {
	h.t.Helper()
	ids := make([]any, n)
	for i := range ids {
		ids[i] = "job-" + randHex()
	}
	require.NoError(h.t, h.rdb.LPush(context.Background(), h.keys.Queue(p.ID, apiv1.LaneLive), ids...).Err())
}

// jobs lists the Jobs KEDA created for the pool's live lane, oldest first.
func (h *kedaHarness) jobs(p store.Pool) []batchv1.Job {
	h.t.Helper()
	l, err := h.cs.BatchV1().Jobs(h.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "scaledjob.keda.sh/name=" + ScaledJobName(p.ID, apiv1.LaneLive),
	})
	require.NoError(h.t, err)
	slices.SortFunc(l.Items, func(a, b batchv1.Job) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return l.Items
}

// waitJobs waits until the pool has exactly n Jobs (failing at once if it
// ever has more) and returns them.
func (h *kedaHarness) waitJobs(p store.Pool, n int) []batchv1.Job {
	h.t.Helper()
	deadline := time.Now().Add(kedaDeadline)
	for {
		jobs := h.jobs(p)
		require.LessOrEqual(h.t, len(jobs), n, "KEDA created more Jobs than ids waiting")
		if len(jobs) == n {
			return jobs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("pool %s has %d Jobs after %s, want %d", p.ID, len(jobs), kedaDeadline, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holdJobs checks that the pool keeps exactly n Jobs for polls polling
// intervals of KEDA: "no new Job" can only be observed over a window.
func (h *kedaHarness) holdJobs(p store.Pool, n, polls int) {
	h.t.Helper()
	end := time.Now().Add(time.Duration(polls*kedaPollSeconds)*time.Second + 500*time.Millisecond)
	for time.Now().Before(end) {
		require.Len(h.t, h.jobs(p), n, "Jobs of pool %s changed", p.ID)
		time.Sleep(100 * time.Millisecond)
	}
}

// claim does what an encode pod of job j does on claiming: pop one id
// from the list, then turn Ready (the encoder's readiness file). There is
// no Job controller, so the test creates the Job's pod itself, with the
// job-name label the Job controller sets and KEDA looks pods up by.
func (h *kedaHarness) claim(p store.Pool, j batchv1.Job) {
	h.t.Helper()
	ctx := context.Background()
	require.NoError(h.t, h.rdb.RPop(ctx, h.keys.Queue(p.ID, apiv1.LaneLive)).Err(), "pop a job id")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   j.Name + "-pod",
			Labels: map[string]string{"job-name": j.Name, "batch.kubernetes.io/job-name": j.Name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeName:      "process-node",
			Containers:    []corev1.Container{{Name: "encode", Image: h.cfg.Image}},
		},
	}
	pod, err := h.cs.CoreV1().Pods(h.ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(h.t, err)
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	_, err = h.cs.CoreV1().Pods(h.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(h.t, err)
}

// pausedCondition reports KEDA's Paused condition of the ScaledJob.
func (h *kedaHarness) pausedCondition(name string) metav1.ConditionStatus {
	h.t.Helper()
	return h.scaledJob(name).Status.Conditions.GetPausedCondition().Status
}

func (h *kedaHarness) waitPaused(name string, want metav1.ConditionStatus) {
	h.t.Helper()
	deadline := time.Now().Add(kedaDeadline)
	for h.pausedCondition(name) != want {
		if time.Now().After(deadline) {
			h.t.Fatalf("ScaledJob %s: KEDA's Paused condition is not %s after %s", name, want, kedaDeadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestKEDACreatesOneJobPerQueuedID(t *testing.T) {
	t.Parallel()
	h := newKEDAHarness(t)
	p := h.kedaPool("KEDA live", 10)
	h.reconcile()

	start := time.Now()
	h.push(p, 3)
	jobs := h.waitJobs(p, 3)
	t.Logf("push→Job latency: 3 Jobs %s after 3 ids were pushed (pollingInterval %ds)", time.Since(start).Round(10*time.Millisecond), kedaPollSeconds)
	for _, j := range jobs {
		require.Equal(t, strconv.FormatInt(h.scaledJob(ScaledJobName(p.ID, apiv1.LaneLive)).Generation, 10),
			j.Annotations["scaledjob.keda.sh/generation"])
		require.Equal(t, "encode", j.Spec.Template.Spec.Containers[0].Name, "the Job runs the rendered pod template")
	}
	// Unclaimed ids with Jobs pending for them: nothing more to create.
	h.holdJobs(p, 3, 2)

	// Two pods claim: two ids leave the list and two Jobs stop being
	// pending. One id waits, its Job still pending: still nothing to do.
	h.claim(p, jobs[0])
	h.claim(p, jobs[1])
	h.holdJobs(p, 3, 3)

	// Two new ids: exactly two new Jobs. KEDA does not subtract the two
	// running Jobs from the list (the default strategy would, and create
	// none), nor count their popped ids again.
	h.push(p, 2)
	h.waitJobs(p, 5)
	h.holdJobs(p, 5, 3)
}

func TestKEDAPauseHoldsJobsUntilResume(t *testing.T) {
	t.Parallel()
	h := newKEDAHarness(t)
	ctx := context.Background()
	paused := h.kedaPool("KEDA paused", 10)
	control := h.kedaPool("KEDA control", 10)
	h.reconcile()
	name := ScaledJobName(paused.ID, apiv1.LaneLive)

	_, err := h.admin.SetPoolStatus(ctx, h.scope(), paused.ID, "paused")
	require.NoError(t, err)
	h.reconcile()
	require.Equal(t, "true", h.scaledJob(name).Annotations[kedav1alpha1.PausedAnnotation])
	h.waitPaused(name, metav1.ConditionTrue)

	// Ids wait on both pools; KEDA serves the control pool (so it is
	// polling) and creates nothing for the paused one.
	h.push(paused, 2)
	h.push(control, 2)
	h.waitJobs(control, 2)
	h.holdJobs(paused, 0, 3)
	n, err := h.rdb.LLen(ctx, h.keys.Queue(paused.ID, apiv1.LaneLive)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "paused ids wait in Redis")

	_, err = h.admin.SetPoolStatus(ctx, h.scope(), paused.ID, "active")
	require.NoError(t, err)
	h.reconcile()
	require.NotContains(t, h.scaledJob(name).Annotations, kedav1alpha1.PausedAnnotation)
	h.waitJobs(paused, 2)
	h.holdJobs(paused, 2, 2)
}

func TestKEDASpecChangeKeepsRunningJobs(t *testing.T) {
	t.Parallel()
	h := newKEDAHarness(t)
	ctx := context.Background()
	p := h.kedaPool("KEDA tuned", 6)
	h.reconcile()
	name := ScaledJobName(p.ID, apiv1.LaneLive)

	h.push(p, 3)
	before := h.waitJobs(p, 3)
	h.claim(p, before[0])
	h.claim(p, before[1])
	gen := h.scaledJob(name).Generation

	_, err := h.admin.UpdatePool(ctx, h.scope(), p.ID, func(s *store.PoolSettings) error {
		s.MaxReplicas = 8
		return nil
	})
	require.NoError(t, err)
	h.reconcile()
	newGen := h.scaledJob(name).Generation
	require.Greater(t, newGen, gen, "a tuning change is a spec change")

	// A Job of the new generation proves KEDA has reconciled the change
	// (it deletes older Jobs, when it does, before it scales again).
	h.push(p, 1)
	after := h.waitJobs(p, 4)
	var newJobs []string
	for _, j := range after {
		if !slices.ContainsFunc(before, func(b batchv1.Job) bool { return b.UID == j.UID }) {
			newJobs = append(newJobs, j.Annotations["scaledjob.keda.sh/generation"])
		}
	}
	require.Equal(t, []string{strconv.FormatInt(newGen, 10)}, newJobs, "one new Job, of the new generation")
	for _, j := range before {
		got, err := h.cs.BatchV1().Jobs(h.ns).Get(ctx, j.Name, metav1.GetOptions{})
		require.NoError(t, err, "Job %s of generation %d must survive the spec change", j.Name, gen)
		require.Nil(t, got.DeletionTimestamp, "Job %s is being deleted", j.Name)
		require.Equal(t, j.UID, got.UID)
	}
}
