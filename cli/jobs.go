package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/encodespec"
	"github.com/mpegflow/mpegflow/internal/validation"
)

func jobsCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("jobs", "Submit, list, follow, cancel and download encode jobs", &api)
	cmd.AddCommand(jobsSubmitCmd(&api), jobsGetCmd(&api), jobsListCmd(&api), jobsCancelCmd(&api),
		jobsWatchCmd(&api), jobsDownloadCmd(&api))
	return cmd
}

func jobsSubmitCmd(api *apiFlags) *cobra.Command {
	var (
		workflow, specFile, pool, lane, idemKey string
		priority, maxAttempts                   int
		metadata                                map[string]string
		captions                                []string
		wait                                    bool
	)
	cmd := &cobra.Command{
		Use:   "submit FILE|URL",
		Short: "Submit a job: upload a local file (or give an https:// or s3:// URL) and encode it",
		Long: "submit encodes one input with a workflow. A local FILE is uploaded first through a presigned URL\n" +
			"(with a progress bar when stderr is a terminal); an http(s):// or s3:// URL is read by the encoder.\n\n" +
			"--workflow takes a built-in (" + strings.Join(encodespec.BuiltinNames(), ", ") + "), the name of one of\n" +
			"your workflows, or a workflow id; --spec-file takes an inline encode spec (JSON) instead.\n\n" +
			"The job is printed per -o. With --wait the command follows the job, prints it when it finishes,\n" +
			"and exits 0 if it completed, 1 if it failed or was cancelled.\n\n" +
			"An --idempotency-key makes a retried submission of the same URL return the first job; a local file is\n" +
			"uploaded again on every run, so the server refuses the key's reuse with 409.\n\n" +
			"--caption LANGUAGE=URL adds a caption file (SubRip .srt or WebVTT .vtt, by the URL's extension), published\n" +
			"as a subtitle track; repeat it for more languages.",
		Example: "  mpegflow jobs submit clip.mov --workflow hls-ladder --wait\n" +
			"  mpegflow jobs submit https://media.example.com/in.mp4 --workflow mp4-720p -o json\n" +
			"  mpegflow jobs submit s3://media/in.mxf -w hls-ladder --caption fr=s3://media/in.fr.srt --caption de=s3://media/in.de.vtt",
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (workflow == "") == (specFile == "") {
				return usagef("give exactly one of --workflow NAME|ID or --spec-file FILE")
			}
			if lane != "" && !slices.Contains(apiv1.Lanes, lane) {
				return usagef("--lane must be %s, not %q", strings.Join(apiv1.Lanes, " or "), lane)
			}
			jobCaptions, err := parseCaptions(captions)
			if err != nil {
				return err
			}
			out := outputFormat(cmd)
			c, err := api.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			req := client.JobRequest{Pool: pool, Lane: lane, Priority: priority, MaxAttempts: maxAttempts,
				Metadata: metadata, IdempotencyKey: idemKey, Captions: jobCaptions}
			var file *os.File
			if isRemote(a[0]) {
				req.Input.URL = a[0]
			} else {
				if file, err = openInput(a[0]); err != nil {
					return err
				}
				defer file.Close() //nolint:errcheck // opened read-only: closing loses nothing
			}
			if specFile != "" {
				if req.Spec, err = readJSONFile(cmd, specFile, "spec file"); err != nil {
					return err
				}
			} else if err := resolveWorkflow(ctx, c, workflow, &req); err != nil {
				return err
			}
			if file != nil {
				if req.Input.AssetID, err = uploadResumable(ctx, c, file, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			job, err := c.CreateJob(ctx, req)
			if err != nil {
				return fmt.Errorf("submit job: %w", err)
			}
			if !wait {
				return render(cmd.OutOrStdout(), out, job, func() *table { return jobsTable([]client.Job{job}) })
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "job %s submitted; following it (Ctrl-C stops following, not the job)\n", job.ID)
			result := follow(cmd, c, []string{job.ID}, cmd.ErrOrStderr(), formatTable)
			var failed *jobsFailedError
			if result != nil && !errors.As(result, &failed) {
				return result
			}
			if job, err = c.GetJob(ctx, job.ID); err != nil {
				return err
			}
			if err := render(cmd.OutOrStdout(), out, job, func() *table { return jobsTable([]client.Job{job}) }); err != nil {
				return err
			}
			return result
		},
	}
	f := cmd.Flags()
	f.StringVarP(&workflow, "workflow", "w", "", "built-in workflow ("+strings.Join(encodespec.BuiltinNames(), ", ")+"), your workflow's name, or a workflow id")
	f.StringVar(&specFile, "spec-file", "", "JSON file with an inline encode spec, instead of --workflow ('-' reads stdin)")
	f.StringVar(&pool, "pool", "", "pool to run on (default: the shared default pool)")
	f.StringVar(&lane, "lane", "", "live (default) or backfill")
	f.IntVar(&priority, "priority", 0, "priority from -100 to 100; higher runs first")
	f.IntVar(&maxAttempts, "max-attempts", 0, "attempts before the job fails for good, 1 to 20 (default: the server's)")
	f.StringToStringVar(&metadata, "metadata", nil, "key=value pairs stored with the job (repeatable)")
	f.StringVar(&idemKey, "idempotency-key", "", "makes retrying this submission safe: the same key returns the first job")
	f.BoolVar(&wait, "wait", false, "follow the job until it finishes; exit 1 if it fails or is cancelled")
	f.StringArrayVar(&captions, "caption", nil, "LANGUAGE=URL of a caption file (.srt or .vtt) to publish as subtitles (repeatable)")
	outputFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("workflow", cobra.FixedCompletions(encodespec.BuiltinNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("lane", cobra.FixedCompletions(apiv1.Lanes, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pool", completePools(api))
	return cmd
}

// parseCaptions turns --caption LANGUAGE=URL values into the job's caption
// files, the format from the URL path's extension. The server checks the
// language, the URL and the count.
func parseCaptions(values []string) ([]client.JobCaption, error) {
	var out []client.JobCaption
	for _, v := range values {
		lang, u, ok := strings.Cut(v, "=")
		if !ok || lang == "" || !isRemote(u) {
			return nil, usagef("--caption takes LANGUAGE=URL (an https:// or s3:// URL), not %q", v)
		}
		path := u
		if parsed, err := url.Parse(u); err == nil {
			path = parsed.Path
		}
		format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
		if format != "srt" && format != "vtt" {
			return nil, usagef("--caption %s: the URL must end in .srt (SubRip) or .vtt (WebVTT)", v)
		}
		out = append(out, client.JobCaption{URL: u, Language: lang, Format: format})
	}
	return out, nil
}

// outputFormat is the command's -o value.
func outputFormat(cmd *cobra.Command) format {
	if f, ok := cmd.Flags().Lookup("output").Value.(*format); ok {
		return *f
	}
	return formatTable
}

// isRemote reports whether a job input names a URL rather than a local file.
func isRemote(in string) bool {
	lower := strings.ToLower(in)
	return strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "s3://")
}

// openInput opens a local input file, saying plainly what is wrong with it.
func openInput(name string) (*os.File, error) {
	f, err := os.Open(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("input file %s does not exist (give a local file or an https:// or s3:// URL)", name)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("input file %s is not readable: permission denied", name)
	case err != nil:
		return nil, fmt.Errorf("open input file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open input file: %w", err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("input %s is not a regular file", name)
	}
	return f, nil
}

// readJSONFile reads a JSON document from a file or, for "-", stdin.
func readJSONFile(cmd *cobra.Command, name, what string) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(cmd.InOrStdin())
		name = "stdin"
	} else {
		b, err = os.ReadFile(name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s %s does not exist", what, name)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s %s is not valid JSON: %s", what, name, err.Error())
	}
	return json.RawMessage(b), nil
}

// resolveWorkflow fills the request's encode from --workflow: a workflow id
// (checked to exist before anything is uploaded), a built-in name, or the
// name of one of the organization's workflows.
func resolveWorkflow(ctx context.Context, c *client.Client, name string, req *client.JobRequest) error {
	if _, err := uuid.Parse(name); err == nil {
		if _, err := c.GetWorkflow(ctx, name); err != nil {
			if client.IsNotFound(err) {
				return fmt.Errorf("workflow %s not found ('mpegflow workflows list' shows yours)", name)
			}
			return fmt.Errorf("look up workflow %s: %w", name, err)
		}
		req.WorkflowID = name
		return nil
	}
	if slices.Contains(encodespec.BuiltinNames(), name) {
		req.Workflow = name
		return nil
	}
	w, err := workflowByName(ctx, c, name)
	if err != nil {
		return err
	}
	req.WorkflowID = w.ID
	return nil
}

// workflowByName finds one of the organization's workflows by exact name.
func workflowByName(ctx context.Context, c *client.Client, name string) (client.Workflow, error) {
	var found []client.Workflow
	cursor := ""
	for {
		p, err := c.ListWorkflows(ctx, 200, cursor)
		if err != nil {
			return client.Workflow{}, fmt.Errorf("look up workflow %q: %w", name, err)
		}
		for _, w := range p.Items {
			if w.Name == name {
				found = append(found, w)
			}
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	switch len(found) {
	case 0:
		return client.Workflow{}, fmt.Errorf("unknown workflow %q: want a built-in (%s), the name of one of your workflows, or a workflow id",
			name, strings.Join(encodespec.BuiltinNames(), ", "))
	case 1:
		return found[0], nil
	}
	return client.Workflow{}, fmt.Errorf("%d workflows are named %q; give the id of the one you mean ('mpegflow workflows list')", len(found), name)
}

// videoTypes are media types of common sources, where the system's MIME
// table may know nothing of video.
var videoTypes = map[string]string{
	".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
	".webm": "video/webm", ".avi": "video/x-msvideo", ".ts": "video/mp2t", ".mts": "video/mp2t",
	".m2ts": "video/mp2t", ".mxf": "application/mxf", ".flv": "video/x-flv", ".wmv": "video/x-ms-wmv",
	".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".y4m": "video/x-yuv4mpeg",
	".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".flac": "audio/flac",
}

func contentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := videoTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// byteBar is a transfer progress bar on a terminal.
func byteBar(w io.Writer, size int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetPredictTime(true),
	)
}

func jobsTable(jobs []client.Job) *table {
	t := &table{header: []string{"ID", "STATUS", "PROGRESS", "POOL", "LANE", "PRIORITY", "ATTEMPTS", "AGE"}}
	withErr := slices.ContainsFunc(jobs, func(j client.Job) bool { return j.Error != nil })
	if withErr {
		t.header = append(t.header, "ERROR")
	}
	now := time.Now()
	for _, j := range jobs {
		row := []string{j.ID, j.Status, percent(j.Progress64()), j.PoolID, j.Lane, fmt.Sprint(j.Priority),
			fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts), age(j.CreatedAt, now)}
		if withErr {
			row = append(row, deref(j.Error))
		}
		t.add(row...)
	}
	return t
}

func jobsGetCmd(api *apiFlags) *cobra.Command {
	return jobCmd(api, "get ID", "Show a job", func(c *client.Client, ctx context.Context, id string) (client.Job, error) {
		return c.GetJob(ctx, id)
	})
}

// jobCmd is a command that does one thing to one job and shows the result.
func jobCmd(api *apiFlags, use, short string, do func(c *client.Client, ctx context.Context, id string) (client.Job, error)) *cobra.Command {
	return actionCmd(use, short, "job", completeJobs(api), api.client, do, jobsTable)
}

func jobsListCmd(api *apiFlags) *cobra.Command {
	var (
		f      client.JobFilter
		cursor string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Status != "" && !slices.Contains(client.JobStatuses, f.Status) {
				return usagef("--status must be one of %s, not %q", strings.Join(client.JobStatuses, ", "), f.Status)
			}
			if f.Limit < 0 || f.Limit > 200 {
				return usagef("--limit must be from 1 to 200")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			page, err := collect(cmd.Context(), all, cursor, func(ctx context.Context, cur string) (client.Page[client.Job], error) {
				return c.ListJobs(ctx, f, cur)
			})
			if err != nil {
				return fmt.Errorf("list jobs: %w", err)
			}
			return renderPage(cmd, page, func() *table { return jobsTable(page.Items) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Status, "status", "", "only jobs with this status ("+strings.Join(client.JobStatuses, ", ")+")")
	fl.StringVar(&f.Pool, "pool", "", "only jobs of this pool")
	fl.IntVar(&f.Limit, "limit", 0, "jobs per page, 1 to 200 (default 50)")
	fl.StringVar(&cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	fl.BoolVar(&all, "all", false, "follow every page to the end")
	outputFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(client.JobStatuses, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("pool", completePools(api))
	return cmd
}

// collect reads one page, or with all every page from cursor on, into one.
func collect[T any](ctx context.Context, all bool, cursor string, next func(context.Context, string) (client.Page[T], error)) (client.Page[T], error) {
	out := client.Page[T]{Items: []T{}}
	for {
		p, err := next(ctx, cursor)
		if err != nil {
			return out, err
		}
		out.Items = append(out.Items, p.Items...)
		out.NextCursor = p.NextCursor
		if !all || p.NextCursor == "" {
			return out, nil
		}
		cursor = p.NextCursor
	}
}

// renderPage prints a page; under a table it says how to see more.
func renderPage[T any](cmd *cobra.Command, page client.Page[T], tab func() *table) error {
	out := outputFormat(cmd)
	if err := render(cmd.OutOrStdout(), out, page, tab); err != nil {
		return err
	}
	if out == formatTable && page.NextCursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: add --cursor %s, or --all\n", page.NextCursor)
	}
	return nil
}

func jobsCancelCmd(api *apiFlags) *cobra.Command {
	return jobCmd(api, "cancel ID", "Cancel a job that has not finished", func(c *client.Client, ctx context.Context, id string) (client.Job, error) {
		return c.CancelJob(ctx, id)
	})
}

func jobsWatchCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch ID...",
		Short: "Follow jobs until they finish: a progress bar per job on a terminal, a line per event otherwise",
		Long: "watch streams the jobs' events (over the server's WebSocket, or by polling when it has none) and\n" +
			"exits when every job has finished: 0 if all completed, 1 if any failed or was cancelled.\n" +
			"-o json prints one JSON event per line; -o yaml one YAML document per event.",
		Args:              args(1, -1),
		ValidArgsFunction: completeJobs(api),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			return follow(cmd, c, a, cmd.OutOrStdout(), outputFormat(cmd))
		},
	}
	outputFlag(cmd)
	return cmd
}

func jobsDownloadCmd(api *apiFlags) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "download ID",
		Short: "Download a completed job's outputs, keeping their relative paths",
		Long: "download saves every output of a completed job under --dir (default ./<job id>), keeping the\n" +
			"outputs' relative paths (hls/720p/index.m3u8). It prints each saved path. Names that would land\n" +
			"outside --dir are refused before anything is written.",
		Args:              args(1, 1),
		ValidArgsFunction: completeJobs(api),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			return downloadOutputs(cmd, c, a[0], cmp.Or(dir, a[0]))
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to save into (default ./<job id>)")
	return cmd
}

// downloadOutputs saves a job's outputs under dir through an os.Root, so
// neither a hostile name nor a symlink can write outside it.
func downloadOutputs(cmd *cobra.Command, c *client.Client, id, dir string) error {
	ctx := cmd.Context()
	j, err := c.GetJob(ctx, id)
	if err != nil {
		return fmt.Errorf("download job %s: %w", id, err)
	}
	if j.Status != client.JobCompleted {
		return fmt.Errorf("job %s is %s: only a completed job has outputs ('mpegflow jobs watch %s' follows it)", id, j.Status, id)
	}
	outs, err := c.JobOutputs(ctx, id)
	if err != nil {
		return fmt.Errorf("list outputs of job %s: %w", id, err)
	}
	if len(outs) == 0 {
		return fmt.Errorf("job %s completed with no outputs", id)
	}
	var total int64
	for _, o := range outs {
		if !localName(o.Name) {
			return fmt.Errorf("refusing output %q of job %s: its name would land outside %s", o.Name, id, dir)
		}
		for _, elem := range strings.Split(o.Name, "/") {
			if problem := validation.FilenameProblem(elem); problem != "" {
				return fmt.Errorf("refusing output %q of job %s: %q in its path %s", o.Name, id, elem, problem)
			}
		}
		total += o.SizeBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close() //nolint:errcheck // a directory handle; saveTo checks the close of every file written through it
	errw := cmd.ErrOrStderr()
	progress := io.Discard
	if isTerminal(errw) {
		bar := byteBar(errw, total, fmt.Sprintf("downloading %d files", len(outs)))
		defer bar.Close()
		progress = bar
	}
	var got int64
	for _, o := range outs {
		n, err := saveTo(ctx, c, root, filepath.FromSlash(o.Name), o.Download.URL, progress)
		if err != nil {
			return fmt.Errorf("download %s of job %s: %w", o.Name, id, err)
		}
		got += n
		fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(dir, filepath.FromSlash(o.Name)))
	}
	fmt.Fprintf(errw, "%d files, %s, saved to %s\n", len(outs), bytesize(got), dir)
	return nil
}

// localName reports whether an output name stays inside the download
// directory: relative, no "..", no drive or backslash tricks.
func localName(name string) bool {
	return name != "" && !strings.Contains(name, `\`) && !strings.HasPrefix(name, "/") && filepath.IsLocal(filepath.FromSlash(name))
}

// saveTo downloads into root/name through a temporary file renamed into
// place, so a file is there complete or not at all.
func saveTo(ctx context.Context, c *client.Client, root *os.Root, name, url string, progress io.Writer) (int64, error) {
	if d := filepath.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return 0, err
		}
	}
	tmp := name + ".part"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := c.Fetch(ctx, url, io.MultiWriter(f, progress))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return n, err
	}
	return n, nil
}

// completeJobs offers recent job ids for shell completion, when the API
// answers quickly.
func completeJobs(api *apiFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		c, err := api.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		p, err := c.ListJobs(ctx, client.JobFilter{Limit: 50}, "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, j := range p.Items {
			out = append(out, cobra.CompletionWithDesc(j.ID, j.Status))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
