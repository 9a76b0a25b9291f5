package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/apiserver/apiservertest"
	"github.com/mpegflow/mpegflow/cli/clitest"
	"github.com/mpegflow/mpegflow/client"
)

// rootCmd is the client's command tree, as the binary builds it but without
// the server roles (cmd/mpegflow tests the whole binary).
func rootCmd() *cobra.Command { return NewRoot("test", Extensions{}) }

// runCLI runs the CLI with args and stdin as its input.
func runCLI(t *testing.T, stdin io.Reader, args ...string) clitest.Result {
	t.Helper()
	return clitest.Run(t, rootCmd(), ExitCode, stdin, args...)
}

// useServer points the CLI at srv with key through the environment, with
// no CLI configuration file. (It sets the process environment: callers are
// not parallel.)
func useServer(t *testing.T, url, key string) {
	t.Helper()
	t.Setenv("MPEGFLOW_SERVER", url)
	t.Setenv("MPEGFLOW_API_KEY", key)
	t.Setenv("MPEGFLOW_CONFIG", filepath.Join(t.TempDir(), "absent.json"))
}

// apiClient is a client of srv for arranging what a test needs.
func apiClient(t *testing.T, srv *apiservertest.Server) *client.Client {
	t.Helper()
	c, err := client.New(srv.URL, srv.OwnerKey, client.Config{})
	require.NoError(t, err)
	return c
}

func submitURLJob(t *testing.T, c *client.Client) client.Job {
	t.Helper()
	j, err := c.CreateJob(t.Context(), client.JobRequest{Input: client.JobInput{URL: "https://media.example.com/in.mp4"}, Workflow: "mp4-720p"})
	require.NoError(t, err)
	return j
}

// syncBuffer is output a test reads while the command still writes it.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a CLI run in the background.
type running struct {
	stdout, stderr *syncBuffer
	done           chan error
	args           []string
}

// background runs the CLI in a goroutine.
func background(t *testing.T, args ...string) *running {
	t.Helper()
	r := &running{stdout: newSyncBuffer(), stderr: newSyncBuffer(), done: make(chan error, 1), args: args}
	cmd := rootCmd()
	cmd.SetOut(r.stdout)
	cmd.SetErr(r.stderr)
	cmd.SetArgs(args)
	go func() { r.done <- cmd.ExecuteContext(t.Context()) }()
	return r
}

// waitFor blocks until the output shows want, so the test acts only once
// the command has reached that point.
func (r *running) waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.changed:
		case <-timeout:
			t.Fatalf("mpegflow %s never printed %q; it printed %q", strings.Join(r.args, " "), want, out.String())
		}
	}
}

// wait returns the run's result once it finishes.
func (r *running) wait(t *testing.T) clitest.Result {
	t.Helper()
	select {
	case err := <-r.done:
		return clitest.Completed(r.stdout.String(), r.stderr.String(), err, ExitCode)
	case <-time.After(30 * time.Second):
		t.Fatalf("mpegflow %s did not finish", strings.Join(r.args, " "))
		return clitest.Result{}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"ok":            {nil, 0},
		"usage":         {usagef("give -f"), 2},
		"wrapped usage": {errors.Join(errors.New("x"), usagef("y")), 2},
		"api":           {&client.Error{Status: 422}, 1},
		"job failed":    {&jobsFailedError{total: 1, reasons: []string{"job x failed: y"}}, 1},
		"cancelled":     {context.Canceled, 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, ExitCode(tc.err))
		})
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	msg := "ffmpeg exited 1"
	finals := map[string]client.Event{
		"a": {Type: client.EventCompleted, JobID: "a"},
		"b": {Type: client.EventFailed, JobID: "b", Job: &client.Job{Error: &msg}},
		"c": {Type: client.EventCancelled, JobID: "c"},
	}
	err := outcome(finals)
	require.Error(t, err)
	assert.Equal(t, "2 of 3 jobs did not complete: job b failed: ffmpeg exited 1; job c was cancelled", err.Error())
	assert.NoError(t, outcome(map[string]client.Event{"a": finals["a"]}))
	assert.Equal(t, "job b failed: ffmpeg exited 1", outcome(map[string]client.Event{"b": finals["b"]}).Error())
}

func TestBarViewRedrawsInPlace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := newBarView(&buf, []string{"job-a", "job-b"})
	require.NoError(t, v.show(client.Event{Type: client.EventStarted, JobID: "job-a"}))
	require.NoError(t, v.show(client.Event{Type: client.EventProgress, JobID: "job-a", Data: map[string]any{"progress": 0.5}}))
	require.NoError(t, v.show(client.Event{Type: client.EventFailed, JobID: "job-b", Data: map[string]any{"error": "boom"}}))
	frames := strings.Split(buf.String(), "\x1b[2A")
	require.Len(t, frames, 3, "the first frame draws, the next two move up two lines and redraw")
	last := frames[2]
	assert.Contains(t, last, "job-a running")
	assert.Contains(t, last, " 50%")
	assert.Contains(t, last, "job-b failed")
	assert.Contains(t, last, "boom")
	assert.Equal(t, 2, strings.Count(last, "\n"))
}

func TestLineView(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, tc := range map[string]struct {
		f    format
		ev   client.Event
		want string
	}{
		"progress": {formatTable, client.Event{Type: client.EventProgress, JobID: "j1", At: at, Data: map[string]any{"progress": 0.426}}, "  j1  job.progress  42%\n"},
		"failure":  {formatTable, client.Event{Type: client.EventFailed, JobID: "j1", At: at, Data: map[string]any{"error": "bad\ninput"}}, "  j1  job.failed  error: bad input\n"},
		"json":     {formatJSON, client.Event{Type: client.EventCompleted, JobID: "j1", At: at}, `{"type":"job.completed","job_id":"j1","at":"2026-01-02T03:04:05Z"}` + "\n"},
		"yaml":     {formatYAML, client.Event{Type: client.EventCompleted, JobID: "j1", At: at}, "---\nat: \"2026-01-02T03:04:05Z\"\njob_id: j1\ntype: job.completed\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			require.NoError(t, (&lineView{w: &buf, f: tc.f}).show(tc.ev))
			if tc.f == formatTable {
				assert.True(t, strings.HasSuffix(buf.String(), tc.want), buf.String())
				return
			}
			assert.Equal(t, tc.want, buf.String())
		})
	}
}

func TestHumanUnits(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "999 B", bytesize(999))
	assert.Equal(t, "1.5 kB", bytesize(1500))
	assert.Equal(t, "2.0 GB", bytesize(2e9))
	now := time.Now()
	assert.Equal(t, "5s", age(now.Add(-5*time.Second), now))
	assert.Equal(t, "3h", age(now.Add(-3*time.Hour), now))
	assert.Equal(t, "4d", age(now.Add(-96*time.Hour), now))
	assert.Equal(t, "", age(time.Time{}, now))
	assert.Equal(t, "99%", percent(0.999))
	assert.Equal(t, "100%", percent(1))
}

func TestTableCells(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	tab := &table{header: []string{"ID", "NOTE"}}
	tab.add("a", "two\nlines")
	tab.add("b", "")
	require.NoError(t, tab.write(&buf))
	assert.Equal(t, "ID  NOTE\na   two lines\nb   -\n", buf.String())
}
