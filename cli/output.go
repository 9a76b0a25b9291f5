package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
)

// This file holds what the API verbs (jobs, pools, workflows, assets)
// share: connection flags, the -o output formats, usage errors and exit
// codes.

// usageError is a command line that cannot be run as typed. It exits 2,
// like cobra's own argument and flag errors.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// ExitCode is the process exit status for an error Execute returned: 0 for
// none, 2 for a usage error, 1 for everything else (an API refusal, an
// unreachable server, a waited-for job that failed).
func ExitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// apiFlags are the connection flags of an API command group. Unset, they
// come from MPEGFLOW_SERVER and MPEGFLOW_API_KEY, then from the current CLI
// context (which `mpegflow dev` writes).
type apiFlags struct {
	server string
	apiKey string
	// context is the global --context flag, read before the command runs
	// (see bindContext).
	context string
}

// bindContext makes f.context the value of the root's --context flag by the
// time the command runs. (A persistent pre-run: cobra runs the nearest one,
// and no command below a group has its own.)
func (f *apiFlags) bindContext(cmd *cobra.Command) {
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if fl := c.Flag("context"); fl != nil {
			f.context = fl.Value.String()
		}
		return nil
	}
}

// apiGroup is a command group (jobs, pools…) with the connection flags.
// Run with an unknown subcommand it says so instead of printing help.
func apiGroup(use, short string, f *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE:  unknownCommand,
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.PersistentFlags().StringVar(&f.server, "server", "", "MpegFlow server URL (default $MPEGFLOW_SERVER, then the current CLI context)")
	cmd.PersistentFlags().StringVar(&f.apiKey, "api-key", "", "API key (default $MPEGFLOW_API_KEY, then the current CLI context)")
	f.bindContext(cmd)
	return cmd
}

// unknownCommand is the RunE of a command that only groups others: with no
// arguments it prints help, with any it refuses the first as an unknown
// command (a usage error, exit 2), suggesting a near name.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usagef("%s (see '%s --help')", msg, cmd.CommandPath())
}

// client resolves the server and key and builds an API client.
func (f *apiFlags) client() (*client.Client, error) {
	ctx, err := cliconfig.Resolve(os.Getenv, f.server, f.apiKey, f.context)
	if err != nil {
		return nil, err
	}
	return client.New(ctx.Server, ctx.APIKey, client.Config{UserAgent: "mpegflow-cli"})
}

// args checks the positional arguments: between lo and hi of them (hi < 0
// means no limit), as the command's Use line shows.
func args(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) >= lo && (hi < 0 || len(a) <= hi) {
			return nil
		}
		return usagef("usage: %s %s", cmd.Parent().CommandPath(), cmd.Use)
	}
}

// format is an -o value: table (for people), json or yaml (for programs).
type format string

const (
	formatTable format = "table"
	formatJSON  format = "json"
	formatYAML  format = "yaml"
)

var formats = []string{string(formatTable), string(formatJSON), string(formatYAML)}

func (f *format) String() string { return string(*f) }
func (f *format) Type() string   { return "table|json|yaml" }
func (f *format) Set(v string) error {
	switch format(v) {
	case formatTable, formatJSON, formatYAML:
		*f = format(v)
		return nil
	}
	return fmt.Errorf("want table, json or yaml, not %q", v)
}

// outputFlag adds -o/--output to a command that prints API objects.
func outputFlag(cmd *cobra.Command) *format {
	f := formatTable
	cmd.Flags().VarP(&f, "output", "o", "output format: table, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return &f
}

// table is rows under upper-case headers, for the table format.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		for i := range r {
			r[i] = cell(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cell keeps a value on one line and out of the column separator.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// render writes v as JSON or YAML, or the table tab builds.
func render(w io.Writer, f format, v any, tab func() *table) error {
	switch f {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON output: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case formatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode YAML output: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return tab().write(w)
}

// isTerminal reports whether w is a terminal, where progress bars and
// redrawn lines make sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is w's width in columns, 80 when unknown.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return 80
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// age is how long ago t was, coarsely: 12s, 5m, 3h, 2d.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// bytesize is n in B, kB, MB, GB (powers of 1000, as file browsers show).
func bytesize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func percent(p float64) string { return fmt.Sprintf("%d%%", int(min(max(p, 0), 1)*100)) }

// jobsFailedError is a followed job (or several) that did not complete.
type jobsFailedError struct {
	total   int
	reasons []string // "job <id> failed: <error>"
}

func (e *jobsFailedError) Error() string {
	if len(e.reasons) == 1 {
		return e.reasons[0]
	}
	return fmt.Sprintf("%d of %d jobs did not complete: %s", len(e.reasons), e.total, strings.Join(e.reasons, "; "))
}

// outcome turns the final event of every followed job into nil (all
// completed) or a *jobsFailedError.
func outcome(finals map[string]client.Event) error {
	e := &jobsFailedError{total: len(finals)}
	ids := make([]string, 0, len(finals))
	for id := range finals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ev := finals[id]
		switch ev.Type {
		case client.EventCompleted:
			continue
		case client.EventFailed:
			msg := ev.ErrorMessage()
			if msg == "" {
				msg = "no error recorded"
			}
			e.reasons = append(e.reasons, fmt.Sprintf("job %s failed: %s", id, msg))
		default:
			e.reasons = append(e.reasons, fmt.Sprintf("job %s was cancelled", id))
		}
	}
	if len(e.reasons) == 0 {
		return nil
	}
	return e
}

// follow watches jobs until all are final, showing their events on w:
// redrawn progress bars on a terminal, a line (or a JSON/YAML document) per
// event otherwise. It returns the outcome (see outcome).
func follow(cmd *cobra.Command, c *client.Client, ids []string, w io.Writer, f format) error {
	var view interface {
		show(client.Event) error
	}
	if f == formatTable && isTerminal(w) {
		view = newBarView(w, ids)
	} else {
		view = &lineView{w: w, f: f}
	}
	finals := map[string]client.Event{}
	err := c.WatchEvents(cmd.Context(), ids, func(ev client.Event) error {
		if ev.Final() {
			finals[ev.JobID] = ev
		}
		return view.show(ev)
	})
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("stopped following; the jobs go on ('mpegflow jobs watch %s' follows them again)", strings.Join(ids, " "))
	}
	if err != nil {
		return err
	}
	return outcome(finals)
}

// lineView writes one line (or one JSON/YAML document) per event.
type lineView struct {
	w io.Writer
	f format
}

func (v *lineView) show(ev client.Event) error {
	switch v.f {
	case formatJSON:
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		_, err = v.w.Write(append(b, '\n'))
		return err
	case formatYAML:
		b, err := yaml.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		_, err = fmt.Fprintf(v.w, "---\n%s", b)
		return err
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	line := fmt.Sprintf("%s  %s  %s", at.Local().Format("15:04:05"), ev.JobID, ev.Type)
	if p, ok := ev.Progress(); ok {
		line += "  " + percent(p)
	}
	if msg := ev.ErrorMessage(); msg != "" && (ev.Type == client.EventFailed || ev.Type == client.EventRetryScheduled || ev.Type == client.EventRequeued) {
		line += "  error: " + cell(msg)
	}
	_, err := fmt.Fprintln(v.w, line)
	return err
}

// barView redraws one progress line per job in place, on a terminal.
type barView struct {
	w     io.Writer
	ids   []string
	jobs  map[string]*barLine
	drawn int
}

type barLine struct {
	status   string
	progress float64
	note     string
}

func newBarView(w io.Writer, ids []string) *barView {
	v := &barView{w: w, ids: slices.Clone(ids), jobs: map[string]*barLine{}}
	for _, id := range ids {
		v.jobs[id] = &barLine{status: "waiting"}
	}
	return v
}

func (v *barView) show(ev client.Event) error {
	l, ok := v.jobs[ev.JobID]
	if !ok {
		return nil
	}
	if st := ev.Status(); st != "" {
		l.status = st
		l.note = ""
	}
	if p, ok := ev.Progress(); ok {
		l.progress = p
	}
	if ev.Job != nil {
		l.progress = max(l.progress, ev.Job.Progress64())
	}
	switch ev.Type {
	case client.EventCompleted:
		l.progress = 1
	case client.EventFailed, client.EventRetryScheduled, client.EventRequeued:
		l.note = ev.ErrorMessage()
	}
	return v.draw()
}

func (v *barView) draw() error {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	width := max(terminalWidth(v.w), 20)
	for _, id := range v.ids {
		l := v.jobs[id]
		// id, status, bar, percent, note: the bar takes what is left.
		barWidth := min(max(width-len(id)-len(" retry_wait ")-len(" [] 100% ")-1, 10), 50)
		filled := int(min(max(l.progress, 0), 1) * float64(barWidth))
		line := fmt.Sprintf("%s %-10s [%s%s] %4s", id, l.status, strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), percent(l.progress))
		if l.note != "" {
			line += " " + cell(l.note)
		}
		if r := []rune(line); len(r) > width-1 {
			line = string(r[:width-2]) + "…"
		}
		b.WriteString("\r\x1b[2K" + line + "\n")
	}
	v.drawn = len(v.ids)
	_, err := io.WriteString(v.w, b.String())
	return err
}
