package operator

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"path"
	"strconv"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/api/encodepod"
	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/queue"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Labels every object and pod of a pool carries. LabelManagedBy plus
// LabelPool is how the reconciler finds what it owns, and so what to prune.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelPool      = "mpegflow.io/pool"
	LabelLane      = "mpegflow.io/lane"

	// AnnotationPauseWindows lists a pool's pause windows (JSON, as the API
	// spells them) on its ScaledJobs, and AnnotationPausedBy says what
	// paused it (schedule or manual), so that the plan and kubectl show why
	// a ScaledJob is paused. They inform only: the schedule is applied by
	// the coordinator's Schedule Evaluator, and reaches KEDA as the pool's
	// status, that is KEDA's paused annotation.
	AnnotationPauseWindows = "mpegflow.io/pause-windows"
	AnnotationPausedBy     = "mpegflow.io/paused-by"

	// ManagedBy is the value of LabelManagedBy and the server-side apply
	// field manager: exactly one writer for every field the operator sets.
	ManagedBy = "mpegflow-operator"

	// GPUResource is what GPU pools request, one per encode pod.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"

	// RedisTLSCAKey is the key of the CA bundle in Config.RedisTLSSecret,
	// beside tls.crt and tls.key (cert-manager's layout).
	RedisTLSCAKey = "ca.crt"

	// WorkerTokenKey is the key of the worker token in the pool's Secret.
	WorkerTokenKey = "token"

	// ScratchDir is where the encode pod's emptyDir is mounted; the encoder
	// writes its readiness file there once it holds a claim.
	ScratchDir = "/scratch"

	// tmpSizeLimit caps the encode pod's /tmp emptyDir; with
	// Config.ScratchSizeLimit it sizes the default ephemeral-storage request.
	tmpSizeLimit = "1Gi"

	// encoderUID matches the image's non-root user (encoder-image/Dockerfile).
	encoderUID = 10001
)

// Objects are everything the operator keeps for one pool.
type Objects struct {
	// ScaledJobs has the live lane first, then the backfill lane when the
	// pool's backfill cap is above zero.
	ScaledJobs            []*kedav1alpha1.ScaledJob
	TriggerAuthentication *kedav1alpha1.TriggerAuthentication
	NetworkPolicy         *networkingv1.NetworkPolicy
	Secret                *corev1.Secret
}

// ScaledJobName is the ScaledJob of a pool's lane: mpegflow-pool-{id} for
// live, mpegflow-pool-{id}-backfill for backfill.
func ScaledJobName(pool, lane string) string {
	if lane == apiv1.LaneBackfill {
		return "mpegflow-pool-" + pool + "-backfill"
	}
	return "mpegflow-pool-" + pool
}

// SecretName is the pool's worker-token Secret.
func SecretName(pool string) string { return "mpegflow-pool-" + pool + "-worker" }

// TriggerAuthName is the pool's TriggerAuthentication for Redis.
func TriggerAuthName(pool string) string { return "mpegflow-pool-" + pool + "-redis" }

// NetworkPolicyName is the pool's NetworkPolicy.
func NetworkPolicyName(pool string) string { return "mpegflow-pool-" + pool }

// Render returns the objects the operator applies for pool p. It is pure:
// no clock, no I/O, so a plan printed today is what the operator applies.
func Render(cfg Config, p store.Pool) (Objects, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Objects{}, err
	}
	if p.ID == store.DefaultPoolID && cfg.DefaultPool != nil {
		// Pause windows are the row's: the coordinator applies them from
		// Postgres, which the configuration does not reach.
		windows := p.PauseWindows
		p.PoolSettings = *cfg.DefaultPool
		p.PauseWindows = windows
	}
	if err := p.Validate(); err != nil {
		return Objects{}, fmt.Errorf("pool %s: %w", p.ID, err)
	}
	objs := Objects{
		TriggerAuthentication: triggerAuth(cfg, p),
		NetworkPolicy:         networkPolicy(cfg, p),
		Secret:                workerSecret(cfg, p),
	}
	objs.ScaledJobs = append(objs.ScaledJobs, scaledJob(cfg, p, apiv1.LaneLive))
	if p.BackfillMaxReplicas > 0 {
		objs.ScaledJobs = append(objs.ScaledJobs, scaledJob(cfg, p, apiv1.LaneBackfill))
	}
	return objs, nil
}

// poolLabels are the labels of every object of pool p.
func poolLabels(cfg Config, p store.Pool, component string) map[string]string {
	l := maps.Clone(cfg.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, map[string]string{
		LabelName:      "mpegflow",
		LabelComponent: component,
		LabelPartOf:    "mpegflow",
		LabelManagedBy: ManagedBy,
		LabelInstance:  "mpegflow-pool-" + p.ID,
		LabelPool:      p.ID,
	})
	return l
}

// podSelector selects every encode pod of a pool, whatever its lane.
func podSelector(p store.Pool) map[string]string {
	return map[string]string{LabelComponent: "encoder", LabelPool: p.ID}
}

func meta(cfg Config, p store.Pool, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: cfg.Namespace, Labels: poolLabels(cfg, p, component)}
}

func scaledJob(cfg Config, p store.Pool, lane string) *kedav1alpha1.ScaledJob {
	m := meta(cfg, p, ScaledJobName(p.ID, lane), "scaler")
	m.Labels[LabelLane] = lane
	if p.Status == "paused" {
		// KEDA rejects maxReplicaCount 0; the annotation stops its scale
		// loop without touching running Jobs or bumping the generation.
		m.Annotations = map[string]string{kedav1alpha1.PausedAnnotation: "true"}
		if p.PausedBy != nil {
			m.Annotations[AnnotationPausedBy] = *p.PausedBy
		}
	}
	if len(p.PauseWindows) > 0 {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		b, _ := json.Marshal(p.Wire().PauseWindows) // strings only: cannot fail
		m.Annotations[AnnotationPauseWindows] = string(b)
	}
	minReplicas, maxReplicas := int32(p.MinReplicas), int32(p.MaxReplicas)
	if lane == apiv1.LaneBackfill {
		// Backfill never pre-warms: it soaks up spare capacity on demand.
		minReplicas, maxReplicas = 0, int32(p.BackfillMaxReplicas)
	}
	redisMeta := map[string]string{
		"address":              cfg.RedisAddress,
		"databaseIndex":        strconv.Itoa(cfg.RedisDatabase),
		"listName":             queue.NewKeys(cfg.RedisKeyPrefix).Queue(p.ID, lane),
		"listLength":           strconv.Itoa(p.TargetQueueLength),
		"activationListLength": strconv.Itoa(cfg.ActivationListLength),
	}
	if cfg.RedisTLS {
		// Metadata, not the TriggerAuthentication's "tls": KEDA refuses
		// both at once, and whether TLS is on is no secret.
		redisMeta["enableTLS"] = "true"
		if cfg.RedisTLSInsecureSkipVerify {
			redisMeta["unsafeSsl"] = "true"
		}
	}
	triggers := []kedav1alpha1.ScaleTriggers{{
		Type:              "redis",
		Name:              "queue",
		Metadata:          redisMeta,
		AuthenticationRef: &kedav1alpha1.AuthenticationRef{Name: TriggerAuthName(p.ID), Kind: "TriggerAuthentication"},
	}}
	if lane == apiv1.LaneLive {
		for i, w := range p.CronWindows {
			triggers = append(triggers, kedav1alpha1.ScaleTriggers{
				Type: "cron",
				Name: fmt.Sprintf("prescale-%d", i),
				Metadata: map[string]string{
					"timezone":        w.Timezone,
					"start":           w.Start,
					"end":             w.End,
					"desiredReplicas": strconv.Itoa(w.DesiredReplicas),
				},
			})
		}
	}
	return &kedav1alpha1.ScaledJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: kedav1alpha1.GroupVersion.String(), Kind: "ScaledJob"},
		ObjectMeta: m,
		Spec: kedav1alpha1.ScaledJobSpec{
			JobTargetRef:               jobSpec(cfg, p, lane),
			PollingInterval:            ptr.To(int32(p.PollingIntervalSeconds)),
			SuccessfulJobsHistoryLimit: ptr.To(cfg.SuccessfulJobsHistoryLimit),
			FailedJobsHistoryLimit:     ptr.To(cfg.FailedJobsHistoryLimit),
			// gradual: a spec change must never delete running Jobs, whose
			// job ids were already popped from the list.
			Rollout:         kedav1alpha1.Rollout{Strategy: "gradual"},
			MinReplicaCount: ptr.To(minReplicas),
			MaxReplicaCount: ptr.To(maxReplicas),
			ScalingStrategy: kedav1alpha1.ScalingStrategy{
				// accurate: the list holds unclaimed ids only, so KEDA
				// must not subtract running Jobs from its length.
				Strategy: "accurate",
				// A pod is pending until Ready, which the encoder turns on
				// only once it holds a claim (readiness probe below).
				PendingPodConditions: []string{"Ready"},
			},
			Triggers: triggers,
		},
	}
}

// idleWait is how long an idle pod keeps waiting for work: a pre-warmed
// pool's live pods (min_replicas above 0, or cron pre-scale windows) wait
// warm_idle_seconds, so KEDA does not replace them every claim wait; every
// other pod waits one claim wait (zero: the encoder's default).
func idleWait(p store.Pool, lane string) time.Duration {
	if lane != apiv1.LaneLive || (p.MinReplicas == 0 && len(p.CronWindows) == 0) {
		return 0
	}
	return time.Duration(p.WarmIdleSeconds) * time.Second
}

func jobSpec(cfg Config, p store.Pool, lane string) *batchv1.JobSpec {
	podLabels := poolLabels(cfg, p, "encoder")
	podLabels[LabelLane] = lane
	env := podEnv(encodepod.Env{
		Coordinator: cfg.Coordinator,
		Pool:        p.ID,
		Lane:        lane,
		Accelerator: p.Accelerator,
		ScratchDir:  ScratchDir,
		ClaimWait:   cfg.ClaimWait,
		IdleWait:    idleWait(p, lane),
		JobsPerPod:  p.PodJobs(),
		AllowHTTP:   cfg.EncoderAllowHTTP,
		EgressAllow: cfg.EncoderEgressAllow,
	}, SecretName(p.ID))
	res := corev1.ResourceRequirements{}
	setQ := func(rl *corev1.ResourceList, name corev1.ResourceName, q string) {
		if q == "" {
			return
		}
		if *rl == nil {
			*rl = corev1.ResourceList{}
		}
		(*rl)[name] = resource.MustParse(q) // validated by PoolSettings.Validate
	}
	setQ(&res.Requests, corev1.ResourceCPU, p.Resources.CPURequest)
	setQ(&res.Requests, corev1.ResourceMemory, p.Resources.MemoryRequest)
	setQ(&res.Limits, corev1.ResourceCPU, p.Resources.CPULimit)
	setQ(&res.Limits, corev1.ResourceMemory, p.Resources.MemoryLimit)
	// Defaults for what the pool leaves open: a resource the pool sets a
	// request or a limit of is the pool's (Kubernetes copies a lone limit
	// into the request).
	setDefault := func(name corev1.ResourceName, q string) {
		_, req := res.Requests[name]
		_, lim := res.Limits[name]
		if req || lim {
			return
		}
		if d := resource.MustParse(q); d.IsZero() { // validated by Config.withDefaults
			return
		}
		setQ(&res.Requests, name, q)
	}
	setDefault(corev1.ResourceCPU, cfg.DefaultCPURequest)
	setDefault(corev1.ResourceMemory, cfg.DefaultMemoryRequest)
	setDefault(corev1.ResourceEphemeralStorage, cfg.DefaultEphemeralStorageRequest)
	if p.Accelerator == apiv1.AcceleratorNVIDIA {
		setQ(&res.Requests, GPUResource, "1")
		setQ(&res.Limits, GPUResource, "1")
	}
	var tolerations []corev1.Toleration
	for _, t := range p.Tolerations {
		tolerations = append(tolerations, corev1.Toleration{
			Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value, Effect: corev1.TaintEffect(t.Effect),
		})
	}
	var nodeSelector map[string]string
	if len(p.NodeSelector) > 0 {
		nodeSelector = maps.Clone(p.NodeSelector)
	}
	return &batchv1.JobSpec{
		// One attempt: a failed encode is retried by the coordinator (with
		// backoff, through the delayed set), never by a Job restart.
		BackoffLimit:            ptr.To(int32(0)),
		ActiveDeadlineSeconds:   ptr.To(int64(cfg.ActiveDeadline.Seconds())),
		TTLSecondsAfterFinished: ptr.To(int32(cfg.TTLAfterFinished.Seconds())),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
			Spec: corev1.PodSpec{
				RestartPolicy:                 corev1.RestartPolicyNever,
				ServiceAccountName:            cfg.ServiceAccountName,
				AutomountServiceAccountToken:  ptr.To(false),
				TerminationGracePeriodSeconds: ptr.To(int64(cfg.TerminationGrace.Seconds())),
				NodeSelector:                  nodeSelector,
				Tolerations:                   tolerations,
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot:   ptr.To(true),
					RunAsUser:      ptr.To(int64(encoderUID)),
					RunAsGroup:     ptr.To(int64(encoderUID)),
					FSGroup:        ptr.To(int64(encoderUID)),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name:            "encode",
					Image:           cfg.Image,
					ImagePullPolicy: corev1.PullPolicy(cfg.ImagePullPolicy),
					Command:         []string{"/usr/local/bin/mpegflow", "encode"},
					Env:             env,
					Resources:       res,
					// Ready = holds a claim: the encoder writes the file once
					// Claim answered a job. KEDA counts the pod as pending
					// until then (pendingPodConditions), so a pod that is
					// still long-polling is not mistaken for work in hand.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
							Command: []string{"test", "-f", path.Join(ScratchDir, encodepod.ReadyFile)},
						}},
						PeriodSeconds:    2,
						FailureThreshold: 1,
					},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false),
						ReadOnlyRootFilesystem:   ptr.To(true),
						RunAsNonRoot:             ptr.To(true),
						Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "scratch", MountPath: ScratchDir},
						{Name: "tmp", MountPath: "/tmp"},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
						SizeLimit: ptr.To(resource.MustParse(cfg.ScratchSizeLimit)),
					}}},
					{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
						SizeLimit: ptr.To(resource.MustParse(tmpSizeLimit)),
					}}},
				},
			},
		},
	}
}

// podEnv renders the encode pod's environment (encodepod.Vars) into a
// container's: values as they are, the worker token from the pool's Secret,
// the pod's and node's names from the downward API.
func podEnv(e encodepod.Env, secret string) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, s := range e.Render() {
		v := corev1.EnvVar{Name: s.Name}
		switch s.Source {
		case encodepod.FromValue:
			v.Value = s.Value
		case encodepod.FromWorkerTokenSecret:
			v.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: WorkerTokenKey,
			}}
		case encodepod.FromPodName:
			v.ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}
		case encodepod.FromNodeName:
			v.ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}
		default:
			// A Source added to encodepod without a rendering here: a
			// programming error the render tests meet first.
			panic(fmt.Sprintf("operator: encode pod variable %s has a source (%d) a pod template cannot render", s.Name, s.Source))
		}
		env = append(env, v)
	}
	return env
}

func triggerAuth(cfg Config, p store.Pool) *kedav1alpha1.TriggerAuthentication {
	return &kedav1alpha1.TriggerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: kedav1alpha1.GroupVersion.String(), Kind: "TriggerAuthentication"},
		ObjectMeta: meta(cfg, p, TriggerAuthName(p.ID), "scaler"),
		Spec:       kedav1alpha1.TriggerAuthenticationSpec{SecretTargetRef: redisAuthRefs(cfg)},
	}
}

// redisAuthRefs are the TriggerAuthentication's references into Secrets
// the installation keeps (the chart's redis block names them): KEDA reads
// the values, and no secret value is in the ScaledJob, the
// TriggerAuthentication or a plan.
func redisAuthRefs(cfg Config) []kedav1alpha1.AuthSecretTargetRef {
	var refs []kedav1alpha1.AuthSecretTargetRef
	if !cfg.RedisPasswordOnly {
		refs = append(refs, kedav1alpha1.AuthSecretTargetRef{Parameter: "username", Name: cfg.RedisAuthSecret, Key: "username"})
	}
	refs = append(refs, kedav1alpha1.AuthSecretTargetRef{Parameter: "password", Name: cfg.RedisAuthSecret, Key: "password"})
	if cfg.RedisTLS && cfg.RedisTLSSecret != "" {
		refs = append(refs, kedav1alpha1.AuthSecretTargetRef{Parameter: "ca", Name: cfg.RedisTLSSecret, Key: RedisTLSCAKey})
		if cfg.RedisTLSClientCert {
			refs = append(refs,
				kedav1alpha1.AuthSecretTargetRef{Parameter: "cert", Name: cfg.RedisTLSSecret, Key: corev1.TLSCertKey},
				kedav1alpha1.AuthSecretTargetRef{Parameter: "key", Name: cfg.RedisTLSSecret, Key: corev1.TLSPrivateKeyKey})
		}
	}
	return refs
}

func workerSecret(cfg Config, p store.Pool) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(cfg, p, SecretName(p.ID), "encoder"),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{WorkerTokenKey: []byte(auth.WorkerToken(cfg.ServerSecret, p.ID))},
	}
}

// port returns the port of a host:port that withDefaults validated.
func port(hostport string) int32 {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.ParseInt(p, 10, 32)
	return int32(n)
}
