package operator

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/internal/auth"
	"github.com/mpegflow/mpegflow/internal/store"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func testConfig() Config {
	return Config{
		Namespace:            "encoders",
		Image:                "registry.example/mpegflow-encoder:1.2.3",
		Coordinator:          "mpegflow.mpegflow.svc:50051",
		CoordinatorNamespace: "mpegflow",
		RedisAddress:         "redis.mpegflow.svc:6379",
		ObjectStorageCIDRs:   []string{"10.20.0.0/16"},
		Labels:               map[string]string{"team": "video"},
		ServerSecret:         testSecret,
	}
}

func testPool(id string) store.Pool {
	set := store.DefaultPoolSettings()
	set.Name = "Pool " + id
	set.MinReplicas, set.MaxReplicas = 1, 8
	set.PollingIntervalSeconds, set.TargetQueueLength = 5, 2
	set.BackfillMaxReplicas = 3
	set.CronWindows = []store.CronWindow{{Timezone: "Europe/Paris", Start: "55 7 * * 1-5", End: "0 19 * * 1-5", DesiredReplicas: 4}}
	set.Resources = store.Resources{CPURequest: "2", MemoryRequest: "4Gi", CPULimit: "4", MemoryLimit: "8Gi"}
	return store.Pool{ID: id, PoolSettings: set, Status: "active"}
}

func wantLabels(pool, component string) map[string]string {
	return map[string]string{
		"team":                         "video",
		"app.kubernetes.io/name":       "mpegflow",
		"app.kubernetes.io/component":  component,
		"app.kubernetes.io/part-of":    "mpegflow",
		"app.kubernetes.io/managed-by": "mpegflow-operator",
		"app.kubernetes.io/instance":   "mpegflow-pool-" + pool,
		"mpegflow.io/pool":             pool,
	}
}

func with(m map[string]string, k, v string) map[string]string { m[k] = v; return m }

// wantLiveScaledJob spells out, field by field, the live ScaledJob of
// testPool("acme") under testConfig().
func wantLiveScaledJob() *kedav1alpha1.ScaledJob {
	return &kedav1alpha1.ScaledJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "mpegflow-pool-acme", Namespace: "encoders",
			Labels: with(wantLabels("acme", "scaler"), "mpegflow.io/lane", "live"),
		},
		Spec: kedav1alpha1.ScaledJobSpec{
			PollingInterval:            ptr.To(int32(5)),
			SuccessfulJobsHistoryLimit: ptr.To(int32(5)),
			FailedJobsHistoryLimit:     ptr.To(int32(20)),
			Rollout:                    kedav1alpha1.Rollout{Strategy: "gradual"},
			MinReplicaCount:            ptr.To(int32(1)),
			MaxReplicaCount:            ptr.To(int32(8)),
			ScalingStrategy:            kedav1alpha1.ScalingStrategy{Strategy: "accurate", PendingPodConditions: []string{"Ready"}},
			Triggers: []kedav1alpha1.ScaleTriggers{
				{
					Type: "redis", Name: "queue",
					Metadata: map[string]string{
						"address": "redis.mpegflow.svc:6379", "databaseIndex": "0",
						"listName": "mpegflow:queue:acme", "listLength": "2", "activationListLength": "0",
					},
					AuthenticationRef: &kedav1alpha1.AuthenticationRef{Name: "mpegflow-pool-acme-redis", Kind: "TriggerAuthentication"},
				},
				{
					Type: "cron", Name: "prescale-0",
					Metadata: map[string]string{"timezone": "Europe/Paris", "start": "55 7 * * 1-5", "end": "0 19 * * 1-5", "desiredReplicas": "4"},
				},
			},
			JobTargetRef: &batchv1.JobSpec{
				BackoffLimit:            ptr.To(int32(0)),
				ActiveDeadlineSeconds:   ptr.To(int64(6 * 3600)),
				TTLSecondsAfterFinished: ptr.To(int32(600)),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: with(wantLabels("acme", "encoder"), "mpegflow.io/lane", "live")},
					Spec: corev1.PodSpec{
						RestartPolicy:                 corev1.RestartPolicyNever,
						AutomountServiceAccountToken:  ptr.To(false),
						TerminationGracePeriodSeconds: ptr.To(int64(30)),
						SecurityContext: &corev1.PodSecurityContext{
							RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(10001)), RunAsGroup: ptr.To(int64(10001)), FSGroup: ptr.To(int64(10001)),
							SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						Containers: []corev1.Container{{
							Name: "encode", Image: "registry.example/mpegflow-encoder:1.2.3", ImagePullPolicy: corev1.PullIfNotPresent,
							Command: []string{"/usr/local/bin/mpegflow", "encode"},
							Env: []corev1.EnvVar{
								{Name: "MPEGFLOW_COORDINATOR", Value: "mpegflow.mpegflow.svc:50051"},
								{Name: "MPEGFLOW_POOL", Value: "acme"},
								{Name: "MPEGFLOW_LANE", Value: "live"},
								{Name: "MPEGFLOW_WORKER_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
									LocalObjectReference: corev1.LocalObjectReference{Name: "mpegflow-pool-acme-worker"}, Key: "token"}}},
								{Name: "MPEGFLOW_POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
								{Name: "MPEGFLOW_NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
								{Name: "MPEGFLOW_ACCELERATOR", Value: "cpu"},
								{Name: "MPEGFLOW_SCRATCH_DIR", Value: "/scratch"},
								{Name: "MPEGFLOW_CLAIM_WAIT", Value: "20s"},
								// min_replicas > 0: a pre-warmed pool's live pods wait.
								{Name: "MPEGFLOW_IDLE_WAIT", Value: "5m0s"},
							},
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"),
									corev1.ResourceEphemeralStorage: resource.MustParse("51Gi")},
								Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")},
							},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/scratch/claimed"}}},
								PeriodSeconds: 2, FailureThreshold: 1,
							},
							SecurityContext: &corev1.SecurityContext{
								AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
								Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							},
							VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "tmp", MountPath: "/tmp"}},
						}},
						Volumes: []corev1.Volume{
							{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("50Gi"))}}},
							{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Gi"))}}},
						},
					},
				},
			},
		},
	}
}

func TestRenderCPUPool(t *testing.T) {
	t.Parallel()
	got, err := Render(testConfig(), testPool("acme"))
	require.NoError(t, err)
	require.Len(t, got.ScaledJobs, 2)

	if diff := cmp.Diff(wantLiveScaledJob(), got.ScaledJobs[0]); diff != "" {
		t.Errorf("live ScaledJob (-want +got):\n%s", diff)
	}

	backfill := wantLiveScaledJob()
	backfill.Name = "mpegflow-pool-acme-backfill"
	backfill.Labels["mpegflow.io/lane"] = "backfill"
	backfill.Spec.MinReplicaCount, backfill.Spec.MaxReplicaCount = ptr.To(int32(0)), ptr.To(int32(3))
	backfill.Spec.Triggers = backfill.Spec.Triggers[:1]
	backfill.Spec.Triggers[0].Metadata["listName"] = "mpegflow:queue:acme:backfill"
	backfill.Spec.JobTargetRef.Template.Labels["mpegflow.io/lane"] = "backfill"
	backfill.Spec.JobTargetRef.Template.Spec.Containers[0].Env[2].Value = "backfill"
	env := backfill.Spec.JobTargetRef.Template.Spec.Containers[0].Env
	backfill.Spec.JobTargetRef.Template.Spec.Containers[0].Env = env[:len(env)-1] // backfill never pre-warms
	if diff := cmp.Diff(backfill, got.ScaledJobs[1]); diff != "" {
		t.Errorf("backfill ScaledJob (-want +got):\n%s", diff)
	}

	wantAuth := &kedav1alpha1.TriggerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "TriggerAuthentication"},
		ObjectMeta: metav1.ObjectMeta{Name: "mpegflow-pool-acme-redis", Namespace: "encoders", Labels: wantLabels("acme", "scaler")},
		Spec: kedav1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []kedav1alpha1.AuthSecretTargetRef{
			{Parameter: "username", Name: "mpegflow-keda-redis", Key: "username"},
			{Parameter: "password", Name: "mpegflow-keda-redis", Key: "password"},
		}},
	}
	if diff := cmp.Diff(wantAuth, got.TriggerAuthentication); diff != "" {
		t.Errorf("TriggerAuthentication (-want +got):\n%s", diff)
	}

	wantSecret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "mpegflow-pool-acme-worker", Namespace: "encoders", Labels: wantLabels("acme", "encoder")},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"token": []byte(auth.WorkerToken(testSecret, "acme"))},
	}
	if diff := cmp.Diff(wantSecret, got.Secret); diff != "" {
		t.Errorf("Secret (-want +got):\n%s", diff)
	}
	require.True(t, auth.WorkerTokenValid(testSecret, "acme", string(got.Secret.Data["token"])), "the coordinator accepts the token")

	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	wantNP := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "mpegflow-pool-acme", Namespace: "encoders", Labels: wantLabels("acme", "network-policy")},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "encoder", "mpegflow.io/pool": "acme"}},
			PolicyTypes: []networkingv1.PolicyType{"Ingress", "Egress"},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{
					To: []networkingv1.NetworkPolicyPeer{{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "mpegflow"}},
						PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "mpegflow", "app.kubernetes.io/component": "server"}},
					}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(50051))}},
				},
				{
					To: []networkingv1.NetworkPolicyPeer{{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
						PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
					}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: udp, Port: ptr.To(intstr.FromInt32(53))}, {Protocol: tcp, Port: ptr.To(intstr.FromInt32(53))}},
				},
				{
					To: []networkingv1.NetworkPolicyPeer{
						{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: wantExceptV4}},
						{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: wantExceptV6}},
					},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(443))}},
				},
				{
					To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(443))}},
				},
			},
		},
	}
	if diff := cmp.Diff(wantNP, got.NetworkPolicy); diff != "" {
		t.Errorf("NetworkPolicy (-want +got):\n%s", diff)
	}
}

func TestRenderGPUPool(t *testing.T) {
	t.Parallel()
	p := testPool("gpu1")
	p.Accelerator = "nvidia"
	p.NodeSelector = map[string]string{"cloud.example/gpu": "l4"}
	p.Tolerations = []store.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}
	got, err := Render(testConfig(), p)
	require.NoError(t, err)
	for _, sj := range got.ScaledJobs {
		spec := sj.Spec.JobTargetRef.Template.Spec
		c := spec.Containers[0]
		if diff := cmp.Diff(resource.MustParse("1"), c.Resources.Limits[GPUResource]); diff != "" {
			t.Errorf("%s: GPU limit (-want +got):\n%s", sj.Name, diff)
		}
		if diff := cmp.Diff(resource.MustParse("1"), c.Resources.Requests[GPUResource]); diff != "" {
			t.Errorf("%s: GPU request (-want +got):\n%s", sj.Name, diff)
		}
		if diff := cmp.Diff(map[string]string{"cloud.example/gpu": "l4"}, spec.NodeSelector); diff != "" {
			t.Errorf("%s: node selector (-want +got):\n%s", sj.Name, diff)
		}
		want := []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		if diff := cmp.Diff(want, spec.Tolerations); diff != "" {
			t.Errorf("%s: tolerations (-want +got):\n%s", sj.Name, diff)
		}
		require.Contains(t, c.Env, corev1.EnvVar{Name: "MPEGFLOW_ACCELERATOR", Value: "nvidia"})
	}

	cpu, err := Render(testConfig(), testPool("cpu1"))
	require.NoError(t, err)
	for _, sj := range cpu.ScaledJobs {
		spec := sj.Spec.JobTargetRef.Template.Spec
		_, limit := spec.Containers[0].Resources.Limits[GPUResource]
		_, request := spec.Containers[0].Resources.Requests[GPUResource]
		require.False(t, limit || request, "%s: a CPU pool requests no GPU", sj.Name)
		require.Empty(t, spec.NodeSelector, sj.Name)
		require.Empty(t, spec.Tolerations, sj.Name)
	}
}

func TestRenderVariants(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg   func(*Config)
		pool  func(*store.Pool)
		check func(t *testing.T, o Objects)
	}{
		"paused pool carries KEDA's paused annotation on every lane": {
			pool: func(p *store.Pool) { p.Status = "paused" },
			check: func(t *testing.T, o Objects) {
				require.Len(t, o.ScaledJobs, 2)
				for _, sj := range o.ScaledJobs {
					require.Equal(t, map[string]string{"autoscaling.keda.sh/paused": "true"}, sj.Annotations, sj.Name)
					require.Equal(t, int32(8), *o.ScaledJobs[0].Spec.MaxReplicaCount, "pausing never zeroes maxReplicaCount (KEDA rejects 0)")
				}
			},
		},
		"paused by its schedule: the paused annotation, who paused it and the windows": {
			pool: func(p *store.Pool) {
				by := "schedule"
				p.Status, p.PausedBy = "paused", &by
				p.PauseWindows = []store.PauseWindow{{Start: "0 22 * * *", End: "0 6 * * *", Timezone: "Europe/Paris"}}
			},
			check: func(t *testing.T, o Objects) {
				require.Len(t, o.ScaledJobs, 2)
				for _, sj := range o.ScaledJobs {
					require.Equal(t, map[string]string{
						"autoscaling.keda.sh/paused": "true",
						AnnotationPausedBy:           "schedule",
						AnnotationPauseWindows:       `[{"start":"0 22 * * *","end":"0 6 * * *","timezone":"Europe/Paris"}]`,
					}, sj.Annotations, sj.Name)
				}
			},
		},
		"running pool with pause windows: the windows only": {
			pool: func(p *store.Pool) {
				p.PauseWindows = []store.PauseWindow{{Start: "0 22 * * *", End: "0 6 * * *", Timezone: "UTC"}}
			},
			check: func(t *testing.T, o Objects) {
				for _, sj := range o.ScaledJobs {
					require.Equal(t, map[string]string{AnnotationPauseWindows: `[{"start":"0 22 * * *","end":"0 6 * * *","timezone":"UTC"}]`}, sj.Annotations, sj.Name)
				}
			},
		},
		"default pool keeps the pause windows of its row": {
			cfg: func(c *Config) {
				set := store.DefaultPoolSettings()
				set.Name = "Shared"
				c.DefaultPool = &set
			},
			pool: func(p *store.Pool) {
				p.ID = "default"
				p.PauseWindows = []store.PauseWindow{{Start: "0 1 * * *", End: "0 5 * * *", Timezone: "UTC"}}
			},
			check: func(t *testing.T, o Objects) {
				require.Contains(t, o.ScaledJobs[0].Annotations, AnnotationPauseWindows)
			},
		},
		"active pool has no annotation": {
			check: func(t *testing.T, o Objects) {
				for _, sj := range o.ScaledJobs {
					require.Nil(t, sj.Annotations, sj.Name)
				}
			},
		},
		"no backfill cap, no backfill ScaledJob": {
			pool: func(p *store.Pool) { p.BackfillMaxReplicas = 0 },
			check: func(t *testing.T, o Objects) {
				require.Len(t, o.ScaledJobs, 1)
				require.Equal(t, "mpegflow-pool-p1", o.ScaledJobs[0].Name)
			},
		},
		"default pool takes its settings from configuration": {
			cfg: func(c *Config) {
				set := store.DefaultPoolSettings()
				set.Name, set.MaxReplicas, set.BackfillMaxReplicas = "Shared", 40, 0
				c.DefaultPool = &set
			},
			pool: func(p *store.Pool) { p.ID = "default" },
			check: func(t *testing.T, o Objects) {
				require.Len(t, o.ScaledJobs, 1)
				require.Equal(t, int32(40), *o.ScaledJobs[0].Spec.MaxReplicaCount)
				require.Equal(t, "mpegflow:queue:default", o.ScaledJobs[0].Spec.Triggers[0].Metadata["listName"])
			},
		},
		"key prefix, redis database and timings from configuration": {
			cfg: func(c *Config) {
				c.RedisKeyPrefix, c.RedisDatabase = "staging", 3
				c.ActiveDeadline, c.TTLAfterFinished, c.TerminationGrace = time.Hour, time.Minute, 45*time.Second
			},
			check: func(t *testing.T, o Objects) {
				sj := o.ScaledJobs[0]
				require.Equal(t, "staging:queue:p1", sj.Spec.Triggers[0].Metadata["listName"])
				require.Equal(t, "3", sj.Spec.Triggers[0].Metadata["databaseIndex"])
				require.Equal(t, int64(3600), *sj.Spec.JobTargetRef.ActiveDeadlineSeconds)
				require.Equal(t, int32(60), *sj.Spec.JobTargetRef.TTLSecondsAfterFinished)
				require.Equal(t, int64(45), *sj.Spec.JobTargetRef.Template.Spec.TerminationGracePeriodSeconds)
			},
		},
		"no object storage CIDR, no rule of its own (public egress still reaches object storage by name)": {
			cfg: func(c *Config) { c.ObjectStorageCIDRs = nil },
			check: func(t *testing.T, o Objects) {
				require.Len(t, o.NetworkPolicy.Spec.Egress, 3, "coordinator, DNS, public")
				require.Empty(t, o.NetworkPolicy.Spec.Ingress)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, p := testConfig(), testPool("p1")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.pool != nil {
				tc.pool(&p)
			}
			o, err := Render(cfg, p)
			require.NoError(t, err)
			tc.check(t, o)
		})
	}
}

func TestRenderRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg  func(*Config)
		pool func(*store.Pool)
		want string
	}{
		"no namespace":          {cfg: func(c *Config) { c.Namespace = "" }, want: "Namespace is required"},
		"no image":              {cfg: func(c *Config) { c.Image = "" }, want: "Image"},
		"coordinator no port":   {cfg: func(c *Config) { c.Coordinator = "mpegflow" }, want: "Coordinator"},
		"short server secret":   {cfg: func(c *Config) { c.ServerSecret = []byte("short") }, want: "ServerSecret"},
		"bad storage CIDR":      {cfg: func(c *Config) { c.ObjectStorageCIDRs = []string{"10.0.0.0"} }, want: "CIDR"},
		"max replicas zero":     {pool: func(p *store.Pool) { p.MaxReplicas = 0 }, want: "max_replicas"},
		"bad resource quantity": {pool: func(p *store.Pool) { p.Resources.CPURequest = "lots" }, want: "cpu_request"},
		"bad default request":   {cfg: func(c *Config) { c.DefaultMemoryRequest = "2GB" }, want: "DefaultMemoryRequest"},
		"bad scratch limit":     {cfg: func(c *Config) { c.ScratchSizeLimit = "big" }, want: "ScratchSizeLimit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, p := testConfig(), testPool("p1")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.pool != nil {
				tc.pool(&p)
			}
			_, err := Render(cfg, p)
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), tc.want), "error %q should mention %q", err, tc.want)
		})
	}
}

// TestRenderDefaultRequests: an encode pod always requests what it needs
// to be scheduled honestly. A pool that leaves a resource open gets the
// operator's default request for it; a pool's own request or limit wins.
func TestRenderDefaultRequests(t *testing.T) {
	t.Parallel()
	q := resource.MustParse
	tests := map[string]struct {
		cfg  func(*Config)
		pool store.Resources
		want corev1.ResourceRequirements
	}{
		"pool sets none": {
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("2Gi"), corev1.ResourceEphemeralStorage: q("51Gi"),
			}},
		},
		"ephemeral storage follows the scratch limit": {
			cfg: func(c *Config) { c.ScratchSizeLimit = "100Gi" },
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("2Gi"), corev1.ResourceEphemeralStorage: q("101Gi"),
			}},
		},
		"configured defaults": {
			cfg: func(c *Config) {
				c.DefaultCPURequest, c.DefaultMemoryRequest, c.DefaultEphemeralStorageRequest = "250m", "512Mi", "10Gi"
			},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("512Mi"), corev1.ResourceEphemeralStorage: q("10Gi"),
			}},
		},
		"zero renders none": {
			cfg: func(c *Config) {
				c.DefaultCPURequest, c.DefaultMemoryRequest, c.DefaultEphemeralStorageRequest = "0", "0", "0"
			},
			want: corev1.ResourceRequirements{},
		},
		"pool requests win": {
			pool: store.Resources{CPURequest: "3", MemoryRequest: "6Gi"},
			want: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: q("3"), corev1.ResourceMemory: q("6Gi"), corev1.ResourceEphemeralStorage: q("51Gi"),
			}},
		},
		"a pool limit leaves the request to Kubernetes": {
			pool: store.Resources{MemoryLimit: "1Gi"},
			want: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceEphemeralStorage: q("51Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: q("1Gi")},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			p := testPool("acme")
			p.Resources = tc.pool
			got, err := Render(cfg, p)
			require.NoError(t, err)
			for _, sj := range got.ScaledJobs {
				res := sj.Spec.JobTargetRef.Template.Spec.Containers[0].Resources
				if diff := cmp.Diff(tc.want, res); diff != "" {
					t.Errorf("%s: resources (-want +got):\n%s", sj.Name, diff)
				}
			}
		})
	}
}

// TestIdleWaitOnlyForPreWarmedLiveLanes: the live pods of a pool that keeps
// workers (min_replicas, or a cron pre-scale window) are told to wait
// warm_idle_seconds for work; a cold pool's pods, and every backfill pod,
// wait one claim wait (the variable is not rendered).
func TestIdleWaitOnlyForPreWarmedLiveLanes(t *testing.T) {
	t.Parallel()
	idleWait := func(t *testing.T, p store.Pool, lane int) string {
		t.Helper()
		objs, err := Render(testConfig(), p)
		require.NoError(t, err)
		for _, v := range objs.ScaledJobs[lane].Spec.JobTargetRef.Template.Spec.Containers[0].Env {
			if v.Name == encodepod.EnvIdleWait {
				return v.Value
			}
		}
		return ""
	}
	pool := func(edit func(*store.PoolSettings)) store.Pool {
		set := store.DefaultPoolSettings()
		set.Name, set.MaxReplicas, set.BackfillMaxReplicas, set.WarmIdleSeconds = "p", 4, 2, 120
		edit(&set)
		return store.Pool{ID: "p1", PoolSettings: set, Status: "active"}
	}
	tests := map[string]struct {
		pool           store.Pool
		live, backfill string
	}{
		"cold":         {pool: pool(func(*store.PoolSettings) {})},
		"min replicas": {pool: pool(func(s *store.PoolSettings) { s.MinReplicas = 2 }), live: "2m0s"},
		"cron pre-scaled": {pool: pool(func(s *store.PoolSettings) {
			s.CronWindows = []store.CronWindow{{Timezone: "UTC", Start: "0 8 * * *", End: "0 9 * * *", DesiredReplicas: 1}}
		}), live: "2m0s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.live, idleWait(t, tc.pool, 0), "live lane")
			require.Equal(t, tc.backfill, idleWait(t, tc.pool, 1), "backfill lane")
		})
	}
}

// TestJobsPerPodOnlyForDedicatedPools: the pods of both lanes of a
// dedicated pool are told its jobs_per_pod; a pool that keeps the default
// renders no variable (pods keep the environment they had), and the shared
// pool none whatever its settings say, since its pods serve every
// organization.
func TestJobsPerPodOnlyForDedicatedPools(t *testing.T) {
	t.Parallel()
	org := uuid.New()
	pool := func(id string, orgID *uuid.UUID, jobs int) store.Pool {
		set := store.DefaultPoolSettings()
		set.Name, set.MaxReplicas, set.BackfillMaxReplicas, set.JobsPerPod = "p", 4, 2, jobs
		return store.Pool{ID: id, OrgID: orgID, PoolSettings: set, Status: "active"}
	}
	tests := map[string]struct {
		pool store.Pool
		want []string // the variable's values in the live and backfill lanes' pods
	}{
		"dedicated, four jobs": {pool: pool("p1", &org, 4), want: []string{"4", "4"}},
		"dedicated, default":   {pool: pool("p1", &org, 1), want: []string{"", ""}},
		// The API and Postgres refuse this row; the operator runs it with
		// one job per pod all the same.
		"shared, four jobs in memory": {pool: pool(store.DefaultPoolID, nil, 4), want: []string{"", ""}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(testConfig(), tc.pool)
			require.NoError(t, err)
			require.Len(t, objs.ScaledJobs, 2, "live and backfill")
			var got []string
			for _, sj := range objs.ScaledJobs {
				var v string
				for _, e := range sj.Spec.JobTargetRef.Template.Spec.Containers[0].Env {
					if e.Name == encodepod.EnvJobsPerPod {
						v = e.Value
					}
				}
				got = append(got, v)
			}
			require.Equal(t, tc.want, got)
		})
	}
}
