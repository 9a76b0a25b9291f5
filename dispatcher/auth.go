package dispatcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/api/coordinatorv1"
	"github.com/mpegflow/mpegflow/internal/auth"
)

var poolIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

type poolKey struct{}

// poolOf returns the pool the call authenticated as.
func poolOf(ctx context.Context) string {
	p, _ := ctx.Value(poolKey{}).(string) // set by the auth interceptor on every call
	return p
}

func firstMD(ctx context.Context, key string) string {
	// ValueFromIncomingContext reads the one key; FromIncomingContext
	// would copy every header of the call.
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// authenticate checks the pool's worker token on every call and puts the
// pool into the context. Health checks and reflection are not served.
func (c *Coordinator) authenticate(ctx context.Context) (context.Context, error) {
	pool := firstMD(ctx, coordinatorv1.MetadataPool)
	token, ok := strings.CutPrefix(firstMD(ctx, coordinatorv1.MetadataAuthorization), "Bearer ")
	if pool == "" || !ok || token == "" {
		return nil, status.Error(codes.Unauthenticated, "send metadata mpegflow-pool and authorization: Bearer <worker token>")
	}
	if !poolIDPattern.MatchString(pool) || !c.workerTokenValid(pool, token) {
		return nil, status.Error(codes.PermissionDenied, "the worker token is not valid for this pool")
	}
	return context.WithValue(ctx, poolKey{}, pool), nil
}

// workerTokenValid checks token against pool's worker token in constant
// time, computing that token once per pool (see Coordinator.poolTokens).
func (c *Coordinator) workerTokenValid(pool, token string) bool {
	if want, ok := c.poolTokens.Load(pool); ok {
		return subtle.ConstantTimeCompare(want.([]byte), []byte(token)) == 1
	}
	if !auth.WorkerTokenValid(c.cfg.Secret, pool, token) {
		return false
	}
	c.poolTokens.Store(pool, []byte(token))
	return true
}

// UnaryInterceptor authenticates, counts and times every call.
func (c *Coordinator) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	defer c.timeCall(info.FullMethod)()
	ctx, err := c.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor is UnaryInterceptor for streamed calls: the handler's
// stream carries the authenticated context. A Reports stream is
// authenticated once, and counts and times each report, not the stream.
func (c *Coordinator) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != coordinatorv1.Coordinator_Reports_FullMethodName {
		defer c.timeCall(info.FullMethod)()
	}
	ctx, err := c.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// authedStream is a call's stream with its authenticated context.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authedStream) Context() context.Context { return s.ctx }

// timeCall counts a call of fullMethod and returns what observes its
// duration when it ends.
func (c *Coordinator) timeCall(fullMethod string) func() {
	m, ok := c.callMetrics[fullMethod]
	if !ok {
		m = c.newCallMetric(fullMethod)
	}
	m.calls.Inc()
	start := c.cfg.Clock.Now()
	return func() { m.duration.Observe(c.cfg.Clock.Since(start).Seconds()) }
}

// callMetric is one method's series of GRPCRequests and GRPCDuration.
type callMetric struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// newCallMetric looks up fullMethod's series by its method name.
func (c *Coordinator) newCallMetric(fullMethod string) callMetric {
	method := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	return callMetric{calls: c.metrics.GRPCRequests.WithLabelValues(method), duration: c.metrics.GRPCDuration.WithLabelValues(method)}
}

// callMetricsOf is every method of the Coordinator service's series, by
// full method name: looked up once, not at every call (the vectors'
// label hashing and lookups were about 1 % of a job's CPU at 1,000
// jobs/s). Only read after New.
func (c *Coordinator) callMetricsOf(sd *grpc.ServiceDesc) map[string]callMetric {
	out := make(map[string]callMetric, len(sd.Methods)+len(sd.Streams))
	for _, m := range sd.Methods {
		full := "/" + sd.ServiceName + "/" + m.MethodName
		out[full] = c.newCallMetric(full)
	}
	for _, s := range sd.Streams {
		full := "/" + sd.ServiceName + "/" + s.StreamName
		out[full] = c.newCallMetric(full)
	}
	return out
}

// claimTokenKey is the context key of the claim token a report carries
// in its message (Reports); a call's comes as metadata.
type claimTokenKey struct{}

// withClaimToken is ctx for a report whose message carries tok: its
// claim token is tok, whatever the stream's metadata says.
func withClaimToken(ctx context.Context, tok string) context.Context {
	return context.WithValue(ctx, claimTokenKey{}, tok)
}

// claimTokenHash reads the claim token (a report's, else the call's
// metadata) and hashes it.
func claimTokenHash(ctx context.Context) ([]byte, error) {
	if tok, inMessage := ctx.Value(claimTokenKey{}).(string); inMessage {
		if tok == "" {
			return nil, status.Error(codes.Unauthenticated, "send the job's claim token in the report's claim_token")
		}
		return hashToken(tok), nil
	}
	tok := firstMD(ctx, coordinatorv1.MetadataClaimToken)
	if tok == "" {
		return nil, status.Error(codes.Unauthenticated, "send the job's claim token as metadata mpegflow-claim-token")
	}
	return hashToken(tok), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func newClaimToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
