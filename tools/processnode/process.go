package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podProcess is one pod: its first container run as a process group in
// the pod's scratch directory.
type podProcess struct {
	dir     string
	log     *slog.Logger
	publish func(*corev1.Pod)
	// deleted runs once the process of a pod being deleted has exited.
	deleted func(*corev1.Pod)

	// pubMu orders status sends (publishLatest).
	pubMu sync.Mutex

	mu       sync.Mutex
	pod      *corev1.Pod
	cmd      *exec.Cmd
	mounts   mounts
	env      []string
	ready    bool
	exited   bool
	deleting bool
	killer   *time.Timer
	done     chan struct{}
}

func newPodProcess(pod *corev1.Pod, dir string, log *slog.Logger, publish, deleted func(*corev1.Pod)) *podProcess {
	return &podProcess{pod: pod.DeepCopy(), dir: dir, log: log, publish: publish, deleted: deleted, done: make(chan struct{})}
}

func (pp *podProcess) logPath() string { return filepath.Join(pp.dir, "container.log") }

func (pp *podProcess) uid() types.UID {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.pod.UID
}

// snapshot is a copy of the pod with its current status.
func (pp *podProcess) snapshot() *corev1.Pod {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.pod.DeepCopy()
}

// updateSpec takes the new object and keeps the status the node owns.
func (pp *podProcess) updateSpec(pod *corev1.Pod) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	status := pp.pod.Status
	pp.pod = pod.DeepCopy()
	pp.pod.Status = status
}

// start prepares the scratch directory and runs the process; it reports
// Running, or Failed when the process cannot start.
func (pp *podProcess) start(ctx context.Context) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	now := metav1.Now()
	pp.pod.Status = corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     "127.0.0.1",
		PodIPs:    []corev1.PodIP{{IP: "127.0.0.1"}},
		StartTime: &now,
	}
	if len(pp.pod.Spec.Containers) == 0 {
		pp.failStartLocked(errors.New("the pod has no container"))
		return
	}
	cmd, err := pp.commandLocked()
	if err != nil {
		pp.failStartLocked(err)
		return
	}
	if err := cmd.Start(); err != nil {
		pp.failStartLocked(fmt.Errorf("start %s: %w", cmd.Path, err))
		return
	}
	pp.cmd = cmd
	pp.log.InfoContext(ctx, "pod process started", "pid", cmd.Process.Pid, "command", cmd.Args, "dir", pp.dir)
	c := pp.pod.Spec.Containers[0]
	pp.ready = c.ReadinessProbe == nil
	pp.setRunningLocked(now)
	pp.publishLocked()
	go pp.wait()
	if c.ReadinessProbe != nil {
		go pp.probe(c.ReadinessProbe)
	}
}

// commandLocked builds the process from the first container: its command's
// base name from PATH, mount paths replaced by directories of the pod's own.
func (pp *podProcess) commandLocked() (*exec.Cmd, error) {
	c := pp.pod.Spec.Containers[0]
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) == 0 {
		return nil, errors.New("container has no command: the process node runs command and args, it has no image entrypoint")
	}
	ms, err := newMounts(pp.dir, pp.pod.Spec.Volumes, c.VolumeMounts)
	if err != nil {
		return nil, err
	}
	pp.mounts = ms
	bin, err := exec.LookPath(filepath.Base(argv[0]))
	if err != nil {
		return nil, fmt.Errorf("find %s on PATH: %w", filepath.Base(argv[0]), err)
	}
	tmp := ms.rewrite("/tmp")
	if tmp == "/tmp" {
		tmp = filepath.Join(pp.dir, "tmp")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return nil, fmt.Errorf("create tmp dir: %w", err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + pp.dir, "TMPDIR=" + tmp}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+ms.rewrite(e.Value))
	}
	pp.env = env
	args := make([]string, 0, len(argv)-1)
	for _, a := range argv[1:] {
		args = append(args, ms.rewrite(a))
	}
	logf, err := os.OpenFile(pp.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Args[0] = argv[0]
	cmd.Dir = pp.dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

func (pp *podProcess) failStartLocked(err error) {
	pp.log.Warn("pod process did not start; the pod is Failed", "error", err)
	now := metav1.Now()
	pp.exited = true
	close(pp.done)
	pp.pod.Status.Phase = corev1.PodFailed
	pp.pod.Status.Reason = "StartError"
	pp.pod.Status.Message = err.Error()
	pp.pod.Status.Conditions = conditions(false, now)
	pp.pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:  pp.pod.Spec.Containers[0].Name,
		Image: pp.pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 128, Reason: "StartError", Message: err.Error(), FinishedAt: now,
		}},
	}}
	pp.publishLocked()
}

func (pp *podProcess) setRunningLocked(started metav1.Time) {
	c := pp.pod.Spec.Containers[0]
	pp.pod.Status.Phase = corev1.PodRunning
	pp.pod.Status.Conditions = conditions(pp.ready, started)
	pp.pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:        c.Name,
		Image:       c.Image,
		ImageID:     "process://" + c.Image,
		ContainerID: "process://" + strconv.Itoa(pp.cmd.Process.Pid),
		Ready:       pp.ready,
		Started:     new(true),
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
	}}
}

// conditions are the pod conditions of a scheduled, started pod.
func conditions(ready bool, at metav1.Time) []corev1.PodCondition {
	r := corev1.ConditionFalse
	if ready {
		r = corev1.ConditionTrue
	}
	return []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: at},
		{Type: corev1.ContainersReady, Status: r, LastTransitionTime: at},
		{Type: corev1.PodReady, Status: r, LastTransitionTime: at},
	}
}

// publishLocked hands the pod's status to the pod controller without
// blocking the caller (the callback may block).
func (pp *podProcess) publishLocked() {
	go pp.publishLatest()
}

// publishLatest sends the pod as it is when the send happens, one send at
// a time: whatever order the goroutines run in, the last status the pod
// controller receives is the current one (a Running sent late never
// overwrites Succeeded).
func (pp *podProcess) publishLatest() {
	pp.pubMu.Lock()
	defer pp.pubMu.Unlock()
	pp.publish(pp.snapshot())
}

// wait reaps the process and reports Succeeded or Failed with its exit
// code; a process killed by a signal exits 128+signal, as in a container.
func (pp *podProcess) wait() {
	err := pp.cmd.Wait()
	if f, ok := pp.cmd.Stdout.(*os.File); ok {
		_ = f.Close()
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			code = 128
		} else if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		} else {
			code = ee.ExitCode()
		}
	}
	now := metav1.Now()
	pp.mu.Lock()
	pp.exited = true
	pp.ready = false
	if pp.killer != nil {
		pp.killer.Stop()
	}
	close(pp.done)
	c := pp.pod.Spec.Containers[0]
	started := now
	if cs := pp.pod.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
		started = cs[0].State.Running.StartedAt
	}
	reason := "Completed"
	pp.pod.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		reason = "Error"
		pp.pod.Status.Phase = corev1.PodFailed
	}
	pp.pod.Status.Conditions = conditions(false, now)
	pp.pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:        c.Name,
		Image:       c.Image,
		ImageID:     "process://" + c.Image,
		ContainerID: "process://" + strconv.Itoa(pp.cmd.Process.Pid),
		Started:     new(false),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: int32(code), Reason: reason, StartedAt: started, FinishedAt: now,
			ContainerID: "process://" + strconv.Itoa(pp.cmd.Process.Pid),
		}},
	}}
	deleting := pp.deleting
	pod := pp.pod.DeepCopy()
	pp.mu.Unlock()
	pp.log.Info("pod process exited", "exit_code", code, "deleting", deleting)
	pp.publishLatest()
	if deleting {
		pp.deleted(pod)
	}
}

// terminate sends SIGTERM to the process group and SIGKILL after grace
// seconds. A pod whose process already exited is deleted at once.
func (pp *podProcess) terminate(_ context.Context, grace int64) {
	pp.mu.Lock()
	if pp.deleting {
		pp.mu.Unlock()
		return
	}
	pp.deleting = true
	if pp.exited {
		pod := pp.pod.DeepCopy()
		pp.mu.Unlock()
		pp.deleted(pod)
		return
	}
	pid := pp.cmd.Process.Pid
	pp.killer = time.AfterFunc(time.Duration(grace)*time.Second, pp.kill)
	pp.mu.Unlock()
	pp.log.Info("pod deleted: SIGTERM to its process group", "pid", pid, "grace_seconds", grace)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
}

// kill sends SIGKILL to the process group of a running pod.
func (pp *podProcess) kill() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.exited || pp.cmd == nil {
		return
	}
	_ = syscall.Kill(-pp.cmd.Process.Pid, syscall.SIGKILL)
}
