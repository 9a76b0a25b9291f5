package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Job event types, as the server streams them and as WatchEvents
// synthesizes them when it polls.
const (
	EventQueued         = "job.queued"
	EventStarted        = "job.started"
	EventProgress       = "job.progress"
	EventCompleted      = "job.completed"
	EventFailed         = "job.failed"
	EventCancelled      = "job.cancelled"
	EventRetryScheduled = "job.retry_scheduled"
	EventRequeued       = "job.requeued"
)

// Event is one thing that happened to a watched job. Events from the
// WebSocket carry the server's ID; events WatchEvents derived from reading
// the job have none.
type Event struct {
	ID     string         `json:"id,omitempty"`
	Type   string         `json:"type"`
	OrgID  string         `json:"org_id,omitempty"`
	JobID  string         `json:"job_id"`
	PoolID string         `json:"pool_id,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
	At     time.Time      `json:"at"`
	// Job is the job as last read, when WatchEvents read it for this event:
	// always for derived events and for final ones (so a failure's error
	// is at hand), not for every streamed progress tick.
	Job *Job `json:"-"`
}

// Final reports whether the event ends its job.
func (e Event) Final() bool {
	return e.Type == EventCompleted || e.Type == EventFailed || e.Type == EventCancelled
}

// Progress is the encode progress (0 to 1) a job.progress event carries.
func (e Event) Progress() (float64, bool) {
	p, ok := e.Data["progress"].(float64)
	return p, ok
}

// Status is the job status the event moves its job to ("" when it does
// not change it, as for progress).
func (e Event) Status() string {
	switch e.Type {
	case EventQueued, EventRequeued:
		return JobQueued
	case EventStarted:
		return JobRunning
	case EventRetryScheduled:
		return JobRetryWait
	case EventCompleted:
		return JobCompleted
	case EventFailed:
		return JobFailed
	case EventCancelled:
		return JobCancelled
	}
	return ""
}

// ErrorMessage is why a job failed or will retry, from the event or the job.
func (e Event) ErrorMessage() string {
	if s, ok := e.Data["error"].(string); ok && s != "" {
		return s
	}
	if e.Job != nil && e.Job.Error != nil {
		return *e.Job.Error
	}
	return ""
}

// WatchEvents follows jobs until every one of them has finished, calling fn
// with each event in order, from one goroutine. It streams from the
// server's WebSocket (GET /ws?jobs=…); a server without one, or a stream
// that breaks, is followed by reading the jobs every PollInterval instead,
// so a watch works either way. It starts with each job's current state, so
// a job that finished before the watch began still reports its end.
//
// It returns nil when all jobs are final, fn's error if fn fails, and the
// context's error when ctx ends first. A job that does not exist fails the
// watch with its 404.
func (c *Client) WatchEvents(ctx context.Context, jobIDs []string, fn func(Event) error) error {
	ids := slices.Compact(slices.Sorted(slices.Values(jobIDs)))
	if len(ids) == 0 {
		return errors.New("watch: give at least one job id")
	}
	w := &watcher{c: c, fn: fn, state: map[string]*watchedJob{}}
	for _, id := range ids {
		w.state[id] = nil
	}
	conn, err := c.dialEvents(ctx, ids)
	if err != nil {
		return err
	}
	if conn == nil {
		return w.poll(ctx)
	}
	return w.stream(ctx, conn)
}

// dialEvents opens the event stream. It answers a nil connection and no
// error when the server has no usable /ws, and an error only for answers
// that polling would meet too (a rejected key, a forbidden role).
func (c *Client) dialEvents(ctx context.Context, ids []string) (*websocket.Conn, error) {
	u := *c.base
	u.Path += "/ws"
	u.RawQuery = url.Values{"jobs": {strings.Join(ids, ",")}}.Encode()
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	dialCtx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, u.String(), &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.key}, "User-Agent": {c.cfg.UserAgent}},
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, errorFrom(resp)
		}
		return nil, nil // no /ws (404, no upgrade, …): poll instead
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

// watchedJob is what the watcher last knew of a job.
type watchedJob struct {
	status   string
	progress float64
	attempts int
}

type watcher struct {
	c     *Client
	fn    func(Event) error
	state map[string]*watchedJob // nil until first seen
	// started is set by the first complete look at the jobs; from then on
	// transient failures are ridden out for WatchOutage from outageSince.
	started     bool
	outageSince time.Time
}

func (w *watcher) done() bool {
	for _, s := range w.state {
		if s == nil || !Terminal(s.status) {
			return false
		}
	}
	return true
}

// pending lists the jobs not yet final, in a stable order.
func (w *watcher) pending() []string {
	var out []string
	for id, s := range w.state {
		if s == nil || !Terminal(s.status) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// refresh reads every unfinished job and reports what changed since the
// last look as events. Once the watch has started, an unreachable server or
// a 5xx answer is retried at the next look until it has lasted WatchOutage.
func (w *watcher) refresh(ctx context.Context) error {
	// The look's time is read before it starts: the time it takes (or a
	// clock moving while it waits for an answer) does not stretch the outage.
	now := w.c.cfg.Clock.Now()
	err := w.look(ctx)
	switch {
	case err == nil:
		w.started, w.outageSince = true, time.Time{}
		return nil
	case !w.started || !transient(err) || ctx.Err() != nil:
		return err
	}
	if w.outageSince.IsZero() {
		w.outageSince = now
	}
	if now.Sub(w.outageSince) >= w.c.cfg.WatchOutage {
		return fmt.Errorf("%w (still failing after %s)", err, w.c.cfg.WatchOutage)
	}
	return nil
}

// transient reports whether a failed look is worth another try.
func transient(err error) bool {
	var ue *UnreachableError
	status := StatusOf(err)
	return errors.As(err, &ue) || status >= 500 || status == http.StatusTooManyRequests
}

// look reads every unfinished job, then reports what changed: one round
// is one snapshot, so no event of a round depends on how long reading the
// other jobs of that round took.
func (w *watcher) look(ctx context.Context) error {
	pending := w.pending()
	jobs := make([]Job, 0, len(pending))
	for _, id := range pending {
		j, err := w.c.GetJob(ctx, id)
		if err != nil {
			return fmt.Errorf("watch job %s: %w", id, err)
		}
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		for _, ev := range w.diff(j) {
			if err := w.fn(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// diff turns a freshly read job into the events that explain the change
// from the watcher's last knowledge, and records the new state.
func (w *watcher) diff(j Job) []Event {
	prev := w.state[j.ID]
	w.state[j.ID] = &watchedJob{status: j.Status, progress: j.Progress64(), attempts: j.Attempts}
	mk := func(typ string, data map[string]any) Event {
		jc := j
		return Event{Type: typ, JobID: j.ID, PoolID: j.PoolID, Data: data, At: j.UpdatedAt, Job: &jc}
	}
	withError := func(data map[string]any) map[string]any {
		if j.Error != nil {
			data["error"] = *j.Error
		}
		return data
	}
	var out []Event
	changed := prev == nil || prev.status != j.Status || (j.Status == JobRunning && j.Attempts != prev.attempts)
	if changed {
		switch j.Status {
		case JobQueued:
			typ := EventQueued
			if prev != nil && prev.status == JobRunning {
				typ = EventRequeued
			}
			out = append(out, mk(typ, map[string]any{}))
		case JobRunning:
			out = append(out, mk(EventStarted, map[string]any{"attempt": j.Attempts}))
		case JobRetryWait:
			data := withError(map[string]any{})
			if j.RunAfter != nil {
				data["retry_at"] = *j.RunAfter
			}
			out = append(out, mk(EventRetryScheduled, data))
		case JobCompleted:
			out = append(out, mk(EventCompleted, map[string]any{}))
		case JobFailed:
			out = append(out, mk(EventFailed, withError(map[string]any{})))
		case JobCancelled:
			out = append(out, mk(EventCancelled, map[string]any{}))
		}
	}
	if p := j.Progress64(); j.Status == JobRunning && p > 0 && (changed || p != prev.progress) {
		out = append(out, mk(EventProgress, map[string]any{"progress": p}))
	}
	return out
}

// poll reads the unfinished jobs every PollInterval until all are final.
func (w *watcher) poll(ctx context.Context) error {
	t := w.c.cfg.Clock.NewTicker(w.c.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := w.refresh(ctx); err != nil {
			return err
		}
		if w.done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		}
	}
}

type streamed struct {
	msg []byte
	err error
}

// stream follows the WebSocket, re-reading unfinished jobs every
// ResyncInterval so a lost event cannot stall the watch, and falls back to
// polling when the stream breaks.
func (w *watcher) stream(ctx context.Context, conn *websocket.Conn) error {
	readCtx, stopRead := context.WithCancel(ctx)
	msgs := make(chan streamed)
	var wg sync.WaitGroup
	defer func() {
		stopRead()
		_ = conn.CloseNow() // the stream is over either way
		wg.Wait()
	}()
	wg.Go(func() {
		for {
			_, b, err := conn.Read(readCtx)
			select {
			case msgs <- streamed{msg: b, err: err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	// The current state first: events from before the subscription are
	// not replayed.
	if err := w.refresh(ctx); err != nil {
		return err
	}
	if w.done() {
		return nil
	}
	t := w.c.cfg.Clock.NewTicker(w.c.cfg.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			if err := w.refresh(ctx); err != nil {
				return err
			}
		case m := <-msgs:
			if m.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return w.poll(ctx)
			}
			if err := w.handle(ctx, m.msg); err != nil {
				return err
			}
		}
		if w.done() {
			return nil
		}
	}
}

// handle delivers one streamed event of a watched, unfinished job.
func (w *watcher) handle(ctx context.Context, msg []byte) error {
	var ev Event
	if err := json.Unmarshal(msg, &ev); err != nil {
		return nil //nolint:nilerr // not an event this client understands; the resync covers it
	}
	s, watched := w.state[ev.JobID]
	if !watched || (s != nil && Terminal(s.status)) {
		return nil
	}
	if s == nil {
		s = &watchedJob{}
		w.state[ev.JobID] = s
	}
	if st := ev.Status(); st != "" {
		s.status = st
	}
	if p, ok := ev.Progress(); ok {
		s.progress = max(s.progress, p)
	}
	if a, ok := ev.Data["attempt"].(float64); ok {
		s.attempts = int(a)
	}
	if ev.Final() {
		// Attach the finished job (its error, outputs and usage); the event
		// still counts if this read fails.
		if j, err := w.c.GetJob(ctx, ev.JobID); err == nil {
			ev.Job = &j
		}
	}
	return w.fn(ev)
}
