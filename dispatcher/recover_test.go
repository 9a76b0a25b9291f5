package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mpegflow/mpegflow/internal/events"
	"github.com/mpegflow/mpegflow/internal/telemetry"
)

const panicSecret = "s3cr3t-panic-value"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// panicLog returns the log line of the recovered panic.
func panicLog(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "log line %q", l)
		if m["panic"] != nil {
			return m
		}
	}
	require.Failf(t, "no panic logged", "logs: %s", buf.String())
	return nil
}

// panickingHealth is a service whose Check panics for service "boom", as a
// handler bug would, and answers SERVING otherwise.
type panickingHealth struct {
	healthpb.UnimplementedHealthServer
}

func (panickingHealth) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.GetService() == "boom" {
		panic(panicSecret)
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// Watch panics for service "boom" and ends at once otherwise.
func (panickingHealth) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if req.GetService() == "boom" {
		panic(panicSecret)
	}
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// watch makes a Watch call and answers how it ended.
func watch(ctx context.Context, client healthpb.HealthClient, service string) error {
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
	for err == nil {
		_, err = stream.Recv()
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// serve runs s on a loopback port until the test ends and returns a client
// connection to it.
func serve(t *testing.T, s *grpc.Server) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		require.NoError(t, <-done)
	})
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestRecover: a panicking handler, of a unary call (recoverUnary) or a
// streamed one (recoverStream), answers Internal with a generic message,
// the log has the method, the panic value and the stack, and the server
// keeps serving.
func TestRecover(t *testing.T) {
	t.Parallel()
	check := func(ctx context.Context, client healthpb.HealthClient, service string) error {
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return err
	}
	tests := []struct {
		name   string
		option func(*slog.Logger) grpc.ServerOption
		call   func(context.Context, healthpb.HealthClient, string) error
		method string
	}{
		{"unary", func(l *slog.Logger) grpc.ServerOption { return grpc.UnaryInterceptor(recoverUnary(l)) }, check, "/grpc.health.v1.Health/Check"},
		{"stream", func(l *slog.Logger) grpc.ServerOption { return grpc.StreamInterceptor(recoverStream(l)) }, watch, "/grpc.health.v1.Health/Watch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			s := grpc.NewServer(tt.option(slog.New(slog.NewJSONHandler(&buf, nil))))
			healthpb.RegisterHealthServer(s, panickingHealth{})
			client := healthpb.NewHealthClient(serve(t, s))

			err := tt.call(t.Context(), client, "boom")
			require.Error(t, err)
			st := status.Convert(err)
			assert.Equal(t, codes.Internal, st.Code())
			assert.Equal(t, "the coordinator failed to handle the call; it has been logged", st.Message())
			assert.NotContains(t, err.Error(), panicSecret)

			line := panicLog(t, &buf)
			assert.Equal(t, "ERROR", line["level"])
			assert.Equal(t, tt.method, line["method"])
			assert.Equal(t, panicSecret, line["panic"])
			assert.Contains(t, line["stack"], "recover_test.go", "the stack reaches the panicking handler")

			require.NoError(t, tt.call(t.Context(), client, ""), "the server answers after a panic")
		})
	}
}

// TestCoordinatorRecoversPanics: the coordinator's own server recovers a
// panic in any handler behind authentication (a test service registered on
// it), and a worker claims a job after it.
func TestCoordinatorRecoversPanics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf syncBuffer
	c, err := New(Config{Secret: testSecret, PollInterval: 20 * time.Millisecond}, e.store, e.queue, e.objects,
		events.NewBus(e.queue, time.Now), telemetry.New(), slog.New(slog.NewJSONHandler(&buf, nil)))
	require.NoError(t, err)
	s := c.NewGRPCServer()
	healthpb.RegisterHealthServer(s, panickingHealth{})
	conn := serve(t, s)
	w := e.worker(conn.Target(), "default")

	_, err = healthpb.NewHealthClient(conn).Check(w.ctx(t.Context(), ""), &healthpb.HealthCheckRequest{Service: "boom"})
	assert.Equal(t, codes.Internal, status.Code(err), "error: %v", err)
	assert.NotContains(t, err.Error(), panicSecret)
	line := panicLog(t, &buf)
	assert.Contains(t, line["stack"], "panickingHealth")
	// A streamed call's too, and only once authenticated.
	assert.Equal(t, codes.Unauthenticated, status.Code(watch(t.Context(), healthpb.NewHealthClient(conn), "boom")))
	err = watch(w.ctx(t.Context(), ""), healthpb.NewHealthClient(conn), "boom")
	assert.Equal(t, codes.Internal, status.Code(err), "error: %v", err)
	assert.NotContains(t, fmt.Sprint(err), panicSecret)

	ids := e.submit("default", 1)
	job, err := w.claim(t.Context(), "pod-1", 0)
	require.NoError(t, err, "the coordinator serves after a panic")
	require.NotNil(t, job)
	assert.Equal(t, ids[0].String(), job.GetId())
}
