package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// batchPoll is how often backfill and batches watch read a batch.
var batchPoll = time.Second

func backfillCmd() *cobra.Command {
	var (
		api                                   apiFlags
		workflow, pool, key, manifest, format string
		onError                               string
		include, exclude                      []string
		maxConcurrency, maxAttempts           int
		rate                                  float64
		detach                                bool
	)
	cmd := &cobra.Command{
		Use:   "backfill s3://BUCKET/PREFIX | --manifest ASSET_ID",
		Short: "Re-encode a whole library on the backfill lane, without touching live latency",
		Long: "backfill submits a batch: the workflow applied to every object under an s3:// prefix of your\n" +
			"organization's storage root (or to every line of a manifest asset), as backfill-lane jobs that\n" +
			"live workers never take. It shows a progress bar while the server creates the jobs and another\n" +
			"while they finish, and exits 0 when every job completed, 1 when some failed or the batch was\n" +
			"cancelled ('mpegflow batches retry-failed ID' queues the failed ones again).\n\n" +
			"Re-running the same command resumes the same batch instead of creating a second one: the server\n" +
			"identifies a batch by its request (or by --key). Ctrl-C stops following, not the batch.\n\n" +
			"--include and --exclude take globs: a pattern without '/' matches an object's base name\n" +
			"(*.mxf), one with '/' the key below the prefix (2019/*/*.mov). --max-concurrency caps the\n" +
			"batch's jobs in flight, --rate the jobs released per second.",
		Example: "  mpegflow backfill s3://media/orgs/$ORG/archive/ --workflow hls-ladder --include '*.mxf' --max-concurrency 50\n" +
			"  mpegflow backfill --manifest 0192... --format csv --on-error skip --workflow hls-ladder --detach",
		Args: args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (len(a) == 1) == (manifest != "") {
				return usagef("give exactly one of s3://BUCKET/PREFIX or --manifest ASSET_ID")
			}
			if workflow == "" {
				return usagef("--workflow is required")
			}
			req := client.BatchRequest{Key: key, Pool: pool, MaxAttempts: maxAttempts}
			if len(a) == 1 {
				if !strings.HasPrefix(a[0], "s3://") {
					return usagef("the source must be an s3://BUCKET/PREFIX URL, not %q", a[0])
				}
				req.Source = client.BatchSource{Prefix: a[0], Include: include, Exclude: exclude}
			} else {
				req.Source = client.BatchSource{ManifestAssetID: manifest, Format: format, OnError: onError}
			}
			if cmd.Flags().Changed("max-concurrency") {
				req.MaxConcurrency = &maxConcurrency
			}
			if cmd.Flags().Changed("rate") {
				req.SubmitRate = &rate
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var jr client.JobRequest
			if err := resolveWorkflow(ctx, c, workflow, &jr); err != nil {
				return err
			}
			req.Workflow, req.WorkflowID = jr.Workflow, jr.WorkflowID
			// The server reads the whole source before answering (it counts
			// the inputs and refuses bad ones whole), which can take minutes
			// for a million objects.
			slow, err := api.clientWith(client.Config{UserAgent: "mpegflow-cli", RequestTimeout: 30 * time.Minute})
			if err != nil {
				return err
			}
			errw := cmd.ErrOrStderr()
			fmt.Fprintln(errw, "reading the source (the server counts and checks every input)…")
			b, resumed, err := slow.CreateBatch(ctx, req)
			if err != nil {
				return fmt.Errorf("submit batch: %w", err)
			}
			if resumed {
				fmt.Fprintf(errw, "resuming batch %s (submitted %s): nothing is created twice\n", b.ID, b.CreatedAt.Local().Format(time.DateTime))
			} else {
				fmt.Fprintf(errw, "batch %s: %d inputs", b.ID, b.Expected)
				if b.SkippedLines > 0 {
					fmt.Fprintf(errw, ", %d malformed manifest lines skipped", b.SkippedLines)
				}
				fmt.Fprintln(errw)
			}
			out := outputFormat(cmd)
			if detach {
				return render(cmd.OutOrStdout(), out, b, func() *table { return batchTable(b) })
			}
			b, err = followBatch(ctx, c, b, errw)
			if err != nil {
				return err
			}
			if err := render(cmd.OutOrStdout(), out, b, func() *table { return batchTable(b) }); err != nil {
				return err
			}
			return batchResult(b)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&workflow, "workflow", "w", "", "built-in workflow ("+strings.Join(encodespec.BuiltinNames(), ", ")+"), your workflow's name, or a workflow id")
	f.StringArrayVar(&include, "include", nil, "only objects matching this glob (repeatable)")
	f.StringArrayVar(&exclude, "exclude", nil, "skip objects matching this glob (repeatable)")
	f.StringVar(&manifest, "manifest", "", "asset id of a manifest (one input per line) instead of a prefix")
	f.StringVar(&format, "format", "", "manifest format: jsonl (default) or csv")
	f.StringVar(&onError, "on-error", "", "malformed manifest lines: reject (default: refuse the batch, listing them) or skip")
	f.IntVar(&maxConcurrency, "max-concurrency", 0, "at most this many of the batch's jobs queued for workers or running at once")
	f.Float64Var(&rate, "rate", 0, "release at most this many jobs per second to workers")
	f.StringVar(&pool, "pool", "", "pool whose backfill lane runs the jobs (default: the shared default pool)")
	f.IntVar(&maxAttempts, "max-attempts", 0, "attempts per job before it fails for good, 1 to 20 (default: the server's)")
	f.StringVar(&key, "key", "", "name the batch: the same key resumes it even if other flags changed")
	f.BoolVar(&detach, "detach", false, "submit and print the batch without following it")
	outputFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("workflow", cobra.FixedCompletions(encodespec.BuiltinNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pool", completePools(&api))
	addAPIFlags(cmd, &api)
	return cmd
}

// clientWith builds an API client with cfg (for calls slower than usual).
func (f *apiFlags) clientWith(cfg client.Config) (*client.Client, error) {
	ctx, err := cliconfig.Resolve(os.Getenv, f.server, f.apiKey, f.context)
	if err != nil {
		return nil, err
	}
	return client.New(ctx.Server, ctx.APIKey, cfg)
}

// batchFailedError makes the command exit 1 when a batch did not complete.
type batchFailedError struct{ b client.Batch }

func (e *batchFailedError) Error() string {
	if e.b.Status == client.BatchCompleted {
		return fmt.Sprintf("batch %s: %d of %d jobs failed; 'mpegflow batches retry-failed %s' queues them again",
			e.b.ID, e.b.Counts.Failed, e.b.Counts.Total, e.b.ID)
	}
	return fmt.Sprintf("batch %s is %s", e.b.ID, e.b.Status)
}

func batchResult(b client.Batch) error {
	if b.Status != client.BatchCompleted || b.Counts.Failed > 0 {
		return &batchFailedError{b}
	}
	return nil
}

// followBatch polls a batch until it finishes: a progress bar for the
// expansion (jobs created of inputs) and one for completion (jobs finished
// of jobs) on a terminal, a line per change otherwise.
func followBatch(ctx context.Context, c *client.Client, b client.Batch, w io.Writer) (client.Batch, error) {
	term := isTerminal(w)
	var bar *progressbar.ProgressBar
	phase := ""
	lastLine := ""
	for {
		if b.Status != phase {
			if bar != nil {
				_ = bar.Finish()
			}
			bar, phase = nil, b.Status
			switch {
			case phase == client.BatchExpanding && term:
				bar = countBar(w, b.Expected, "creating jobs")
			case phase == client.BatchRunning && term:
				bar = countBar(w, b.Counts.Total, "encoding    ")
			}
		}
		finished := b.Counts.Completed + b.Counts.Failed + b.Counts.Cancelled
		switch {
		case bar != nil && phase == client.BatchExpanding:
			_ = bar.Set64(b.Counts.Total)
		case bar != nil:
			bar.ChangeMax64(b.Counts.Total)
			_ = bar.Set64(finished)
		default:
			line := fmt.Sprintf("batch %s %s: %d/%d jobs created, %d queued (%d held), %d running, %d completed, %d failed, %d cancelled",
				b.ID, b.Status, b.Counts.Total, b.Expected, b.Counts.Queued, b.Counts.Held, b.Counts.Running, b.Counts.Completed, b.Counts.Failed, b.Counts.Cancelled)
			if b.ETA != nil {
				line += ", ETA " + b.ETA.Local().Format(time.DateTime)
			}
			if line != lastLine {
				fmt.Fprintln(w, line)
				lastLine = line
			}
		}
		if b.Finished() {
			if bar != nil {
				_ = bar.Finish()
			}
			return b, nil
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("stopped following batch %s (it goes on; 'mpegflow batches get %s' shows it): %w", b.ID, b.ID, ctx.Err())
		case <-time.After(batchPoll):
		}
		next, err := c.GetBatch(ctx, b.ID)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				continue
			}
			return b, fmt.Errorf("read batch %s: %w", b.ID, err)
		}
		b = next
	}
}

// countBar is a progress bar of items on a terminal.
func countBar(w io.Writer, total int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max(total, 1),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetPredictTime(true),
	)
}

func batchTable(bs ...client.Batch) *table {
	t := &table{header: []string{"ID", "STATUS", "INPUTS", "JOBS", "QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "ETA"}}
	for _, b := range bs {
		eta := ""
		if b.ETA != nil {
			eta = b.ETA.Local().Format(time.DateTime)
		}
		t.add(b.ID, b.Status, fmt.Sprint(b.Expected), fmt.Sprint(b.Counts.Total), fmt.Sprint(b.Counts.Queued), fmt.Sprint(b.Counts.Running),
			fmt.Sprint(b.Counts.Completed), fmt.Sprint(b.Counts.Failed), fmt.Sprint(b.Counts.Cancelled), eta)
	}
	return t
}

func batchesTable(bs []client.BatchSummary) *table {
	t := &table{header: []string{"ID", "EXPANSION", "POOL", "WORKFLOW", "INPUTS", "EXPANDED", "AGE", "ERROR"}}
	now := time.Now()
	for _, b := range bs {
		wf := b.Workflow
		if wf == "" {
			wf = deref(b.WorkflowID)
		}
		t.add(b.ID, b.Expansion, b.PoolID, wf, fmt.Sprint(b.Expected), fmt.Sprint(b.Expanded), age(b.CreatedAt, now), deref(b.Error))
	}
	return t
}

func batchesCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("batches", "List, show, follow, cancel and retry batch backfills", &api)
	one := func(use, short string, fn func(*client.Client, context.Context, string) (client.Batch, error), follow bool) *cobra.Command {
		c := &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Args:  args(1, 1),
			RunE: func(cmd *cobra.Command, a []string) error {
				c, err := api.client()
				if err != nil {
					return err
				}
				b, err := fn(c, cmd.Context(), a[0])
				if err != nil {
					if client.IsNotFound(err) {
						return fmt.Errorf("batch %s not found", a[0])
					}
					return err
				}
				if follow {
					if b, err = followBatch(cmd.Context(), c, b, cmd.ErrOrStderr()); err != nil {
						return err
					}
				}
				if err := render(cmd.OutOrStdout(), outputFormat(cmd), b, func() *table { return batchTable(b) }); err != nil {
					return err
				}
				if follow {
					return batchResult(b)
				}
				return nil
			},
		}
		outputFlag(c)
		return c
	}
	cmd.AddCommand(
		pagedListCmd(&api, "List batches, newest first (their expansion; `batches get` shows job counters)", "batches", (*client.Client).ListBatches, batchesTable),
		one("get", "Show a batch: counters, status and ETA", (*client.Client).GetBatch, false),
		one("watch", "Follow a batch until it finishes (progress bars on a terminal)", (*client.Client).GetBatch, true),
		one("cancel", "Cancel a batch: stop creating jobs and cancel every job that has not started", (*client.Client).CancelBatch, false),
		one("retry-failed", "Queue a batch's failed jobs again", (*client.Client).RetryFailedBatch, false),
	)
	return cmd
}

// addAPIFlags gives a top-level client command the connection flags that
// command groups carry.
func addAPIFlags(cmd *cobra.Command, f *apiFlags) {
	cmd.Flags().StringVar(&f.server, "server", "", "MpegFlow server URL (default $MPEGFLOW_SERVER, then the current CLI context)")
	cmd.Flags().StringVar(&f.apiKey, "api-key", "", "API key (default $MPEGFLOW_API_KEY, then the current CLI context)")
	f.bindContext(cmd)
}
