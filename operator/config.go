package operator

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/mpegflow/mpegflow/api/encodepod"
	"github.com/mpegflow/mpegflow/internal/store"
)

// Config is what the operator needs beyond the pool rows: where the objects
// go, what the pods run and what they may reach. Zero fields take the
// defaults documented on each; New and Render validate it.
type Config struct {
	// Namespace receives every object (required).
	Namespace string
	// Image is the encoder image, which runs `mpegflow encode` (required).
	Image string
	// ImagePullPolicy of the encode container (default IfNotPresent).
	ImagePullPolicy string
	// ServiceAccountName of encode pods (default: the namespace's default);
	// its token is never mounted.
	ServiceAccountName string

	// Coordinator is the coordinator Service's host:port the pods dial
	// (required), e.g. mpegflow.mpegflow.svc:50051.
	Coordinator string
	// CoordinatorPodLabels select the coordinator's pods in the
	// NetworkPolicy (default app.kubernetes.io/name=mpegflow,
	// app.kubernetes.io/component=server).
	CoordinatorPodLabels map[string]string
	// CoordinatorNamespace is where those pods run (default Namespace).
	CoordinatorNamespace string

	// RedisAddress is the host:port KEDA's redis scaler polls (required).
	RedisAddress string
	// RedisDatabase is the Redis database index (default 0).
	RedisDatabase int
	// RedisKeyPrefix is the queue key prefix (default "mpegflow").
	RedisKeyPrefix string
	// RedisAuthSecret names an existing Secret in Namespace with the keys
	// "username" and "password" of the Redis user KEDA polls with (it
	// needs +ping +eval +type +llen). Default "mpegflow-keda-redis".
	RedisAuthSecret string
	// RedisPasswordOnly makes the TriggerAuthentication pass only the
	// "password" key of RedisAuthSecret (AUTH password, the default user):
	// managed Redis services without ACL users.
	RedisPasswordOnly bool
	// RedisTLS turns on TLS in the redis trigger (enableTLS): the same
	// chart value that makes the server's REDIS_URL rediss://.
	RedisTLS bool
	// RedisTLSSecret names a Secret in Namespace whose "ca.crt" verifies
	// Redis's certificate; with RedisTLSClientCert, its "tls.crt" and
	// "tls.key" are KEDA's client certificate. Empty: the system roots of
	// KEDA's operator, and no client certificate.
	RedisTLSSecret     string
	RedisTLSClientCert bool
	// RedisTLSInsecureSkipVerify makes KEDA accept any certificate
	// (unsafeSsl; tests only). The three TLS settings above are ignored
	// without RedisTLS.
	RedisTLSInsecureSkipVerify bool
	// ActivationListLength is KEDA's activation threshold (default 0: one
	// queued id starts a Job).
	ActivationListLength int

	// ObjectStorageCIDRs are networks of object storage the pods may reach
	// (presigned GET/PUT) beyond the public internet: a VPC endpoint, an
	// on-premises S3 in a private range. Empty adds no rule.
	ObjectStorageCIDRs []string
	// ObjectStoragePorts are their TCP ports (default 443).
	ObjectStoragePorts []int32
	// InClusterS3Namespace, InClusterS3PodLabels and InClusterS3Ports
	// select an S3 server running in the cluster (MinIO); empty namespace
	// adds no rule. Ports default to 9000 (MinIO's).
	InClusterS3Namespace string
	InClusterS3PodLabels map[string]string
	InClusterS3Ports     []int32
	// NoPublicEgress drops the rule that lets pods reach the public
	// internet on TCP 443 (and 80 with EncoderAllowHTTP): for
	// installations whose inputs and object storage are all listed in
	// ObjectStorageCIDRs or in-cluster. The rule is on by default, because
	// presigned object storage URLs and customer https inputs are public
	// addresses that no static list covers.
	NoPublicEgress bool
	// PublicEgressExcept are the ranges cut out of the public rule
	// (default DefaultPublicEgressExcept): everything inside the cluster
	// and the node, so pool A never reaches pool B that way.
	PublicEgressExcept []string
	// DNSNamespace and DNSPodLabels select the cluster DNS pods (default
	// kube-system, k8s-app=kube-dns).
	DNSNamespace string
	DNSPodLabels map[string]string
	// DNSCIDRs are resolver addresses the pods may query on port 53 beside
	// those pods, e.g. 169.254.20.10/32 with NodeLocal DNSCache, whose
	// node-local address no pod selector matches.
	DNSCIDRs []string

	// Labels are added to every object and pod (e.g. team or cost labels).
	Labels map[string]string
	// ServerSecret signs the worker tokens (MPEGFLOW_SERVER_SECRET, required).
	ServerSecret []byte
	// DefaultPool, when set, replaces the settings of the shared "default"
	// pool (its row keeps only its status): platform configuration, not a
	// tenant's, decides the shared pool's size.
	DefaultPool *store.PoolSettings

	// ActiveDeadline bounds one encode pod (default 6 h).
	ActiveDeadline time.Duration
	// TTLAfterFinished is how long a finished Job stays (default 10 min).
	TTLAfterFinished time.Duration
	// TerminationGrace must cover the encoder's SIGTERM path: stop FFmpeg,
	// call Fail(retryable) (default 30 s; the encoder needs about 8 s).
	TerminationGrace time.Duration
	// ClaimWait is how long a pod long-polls Claim (default 20 s, at most 30 s).
	ClaimWait time.Duration
	// EncoderAllowHTTP and EncoderEgressAllow are handed to the pods as
	// MPEGFLOW_ALLOW_HTTP and MPEGFLOW_EGRESS_ALLOW: the SSRF guard the
	// encoder applies to customer input URLs. Unset (production) they are
	// not rendered and the encoder fetches public https only.
	EncoderAllowHTTP   bool
	EncoderEgressAllow string
	// ScratchSizeLimit caps the scratch emptyDir (default 50Gi).
	ScratchSizeLimit string
	// DefaultCPURequest and DefaultMemoryRequest are the encode container's
	// requests for a pool that sets neither a request nor a limit of that
	// resource (defaults 1 and 2Gi): a pod without requests is scheduled as
	// BestEffort, packed onto full nodes and evicted first. "0" renders none.
	DefaultCPURequest    string
	DefaultMemoryRequest string
	// DefaultEphemeralStorageRequest is the encode container's
	// ephemeral-storage request (pools have no setting for it). Default:
	// what the pod's emptyDirs may hold, ScratchSizeLimit plus the 1Gi of
	// /tmp, so the scheduler only places a pod where its scratch fits and
	// the kubelet does not evict it for using what it was allowed. "0"
	// renders none.
	DefaultEphemeralStorageRequest string
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit keep finished
	// Jobs for inspection (defaults 5 and 20).
	SuccessfulJobsHistoryLimit int32
	FailedJobsHistoryLimit     int32
}

// Validate reports every missing or invalid required field, as Render and
// NewReconciler would; a server that renders plans checks it at start.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with every zero field defaulted, or the first
// missing or invalid required field.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("operator: Namespace is required"))
	}
	if c.Image == "" {
		errs = append(errs, errors.New("operator: Image (the encoder image) is required"))
	}
	if _, p, err := net.SplitHostPort(c.Coordinator); err != nil {
		errs = append(errs, fmt.Errorf("operator: Coordinator must be host:port: %w", err))
	} else if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		errs = append(errs, fmt.Errorf("operator: Coordinator %q: the port must be a number from 1 to 65535", c.Coordinator))
	}
	if _, _, err := net.SplitHostPort(c.RedisAddress); err != nil {
		errs = append(errs, fmt.Errorf("operator: RedisAddress must be host:port: %w", err))
	}
	if c.RedisTLS && c.RedisTLSClientCert && c.RedisTLSSecret == "" {
		errs = append(errs, errors.New("operator: RedisTLSClientCert needs RedisTLSSecret, the Secret with tls.crt and tls.key"))
	}
	if len(c.ServerSecret) < 32 {
		errs = append(errs, errors.New("operator: ServerSecret must be at least 32 bytes (MPEGFLOW_SERVER_SECRET)"))
	}
	for _, list := range []struct {
		what  string
		cidrs []string
	}{{"object storage CIDR", c.ObjectStorageCIDRs}, {"public egress except CIDR", c.PublicEgressExcept}, {"DNS CIDR", c.DNSCIDRs}} {
		for _, cidr := range list.cidrs {
			if err := validCIDR(cidr); err != nil {
				errs = append(errs, fmt.Errorf("operator: %s %q: %w", list.what, cidr, err))
			}
		}
	}
	if c.InClusterS3Namespace != "" && len(c.InClusterS3PodLabels) == 0 {
		errs = append(errs, errors.New("operator: InClusterS3PodLabels are required with InClusterS3Namespace (an empty selector would open every pod of that namespace)"))
	}
	if c.ClaimWait > encodepod.MaxClaimWait {
		errs = append(errs, errors.New("operator: ClaimWait must be at most 30s (the encoder's limit)"))
	}
	if c.DefaultPool != nil {
		if err := c.DefaultPool.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("operator: default pool settings: %w", err))
		}
		if len(c.DefaultPool.PauseWindows) > 0 {
			errs = append(errs, errors.New("operator: default pool settings: pause_windows cannot be set here (the coordinator applies a pool's pause windows from its row); set them with PATCH /v1/pools/default as a SuperAdmin"))
		}
		if c.DefaultPool.JobsPerPod != 1 {
			errs = append(errs, errors.New("operator: default pool settings: jobs_per_pod must be 1 (the shared pool's pods serve every organization, so each runs one job); leave it out"))
		}
	}
	c.ImagePullPolicy = cmp.Or(c.ImagePullPolicy, "IfNotPresent")
	if c.CoordinatorPodLabels == nil {
		c.CoordinatorPodLabels = map[string]string{"app.kubernetes.io/name": "mpegflow", "app.kubernetes.io/component": "server"}
	}
	c.CoordinatorNamespace = cmp.Or(c.CoordinatorNamespace, c.Namespace)
	c.RedisKeyPrefix = cmp.Or(c.RedisKeyPrefix, "mpegflow")
	c.RedisAuthSecret = cmp.Or(c.RedisAuthSecret, "mpegflow-keda-redis")
	if len(c.ObjectStoragePorts) == 0 {
		c.ObjectStoragePorts = []int32{443}
	}
	if len(c.InClusterS3Ports) == 0 {
		c.InClusterS3Ports = []int32{9000}
	}
	if c.PublicEgressExcept == nil {
		c.PublicEgressExcept = slices.Clone(DefaultPublicEgressExcept)
	}
	c.DNSNamespace = cmp.Or(c.DNSNamespace, "kube-system")
	if c.DNSPodLabels == nil {
		c.DNSPodLabels = map[string]string{"k8s-app": "kube-dns"}
	}
	c.ActiveDeadline = cmp.Or(c.ActiveDeadline, 6*time.Hour)
	c.TTLAfterFinished = cmp.Or(c.TTLAfterFinished, 10*time.Minute)
	c.TerminationGrace = cmp.Or(c.TerminationGrace, 30*time.Second)
	c.ClaimWait = cmp.Or(c.ClaimWait, 20*time.Second)
	c.ScratchSizeLimit = cmp.Or(c.ScratchSizeLimit, "50Gi")
	c.DefaultCPURequest = cmp.Or(c.DefaultCPURequest, "1")
	c.DefaultMemoryRequest = cmp.Or(c.DefaultMemoryRequest, "2Gi")
	for name, q := range map[string]string{"ScratchSizeLimit": c.ScratchSizeLimit, "DefaultCPURequest": c.DefaultCPURequest,
		"DefaultMemoryRequest": c.DefaultMemoryRequest, "DefaultEphemeralStorageRequest": c.DefaultEphemeralStorageRequest} {
		if q == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q); err != nil {
			errs = append(errs, fmt.Errorf("operator: %s %q is not a Kubernetes quantity: %w", name, q, err))
		}
	}
	if q, err := resource.ParseQuantity(c.ScratchSizeLimit); err == nil && c.DefaultEphemeralStorageRequest == "" {
		q.Add(resource.MustParse(tmpSizeLimit))
		c.DefaultEphemeralStorageRequest = q.String()
	}
	c.SuccessfulJobsHistoryLimit = cmp.Or(c.SuccessfulJobsHistoryLimit, 5)
	c.FailedJobsHistoryLimit = cmp.Or(c.FailedJobsHistoryLimit, 20)
	return c, errors.Join(errs...)
}

// validCIDR accepts what the API server accepts in an ipBlock: a network
// address with its prefix length and no host bits (10.0.0.0/8, not
// 10.1.2.3/8).
func validCIDR(s string) error {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("not a CIDR: %w", err)
	}
	if pfx.Addr().Is4In6() {
		return fmt.Errorf("an IPv4-mapped IPv6 range, which the API server refuses: write it as IPv4")
	}
	if pfx.Masked() != pfx {
		return fmt.Errorf("host bits set: write %s", pfx.Masked())
	}
	return nil
}
