package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// probe runs an exec readiness probe as a local command in the pod's
// directory, with the pod's environment and mount paths replaced, and sets
// the Ready condition from it (success and failure thresholds as a
// kubelet counts them). Other probe kinds cannot run here: the pod stays
// not Ready, and the log says why.
func (pp *podProcess) probe(p *corev1.Probe) {
	if p.Exec == nil || len(p.Exec.Command) == 0 {
		pp.log.Warn("readiness probe is not exec: the process node cannot run it, so the pod never becomes Ready; use an exec probe")
		return
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	successNeeded, failureNeeded := max(p.SuccessThreshold, 1), max(p.FailureThreshold, 1)
	pp.mu.Lock()
	argv := make([]string, len(p.Exec.Command))
	for i, a := range p.Exec.Command {
		argv[i] = pp.mounts.rewrite(a)
	}
	env := pp.env
	pp.mu.Unlock()

	select {
	case <-pp.done:
		return
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	var successes, failures int32
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		ok := pp.runProbe(argv, env, timeout)
		if ok {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		switch {
		case ok && successes >= successNeeded:
			pp.setReady(true)
		case !ok && failures >= failureNeeded:
			pp.setReady(false)
		}
		select {
		case <-pp.done:
			return
		case <-tick.C:
		}
	}
}

// runProbe reports whether the probe command exited 0 within timeout.
func (pp *podProcess) runProbe(argv, env []string, timeout time.Duration) bool {
	bin, err := exec.LookPath(filepath.Base(argv[0]))
	if err != nil {
		pp.log.Warn("readiness probe command is not on PATH; install it or change the probe", "command", argv[0], "error", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	cmd.Dir = pp.dir
	cmd.Env = env
	return cmd.Run() == nil
}

// setReady publishes a change of the Ready condition of a running pod.
func (pp *podProcess) setReady(ready bool) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.exited || pp.ready == ready {
		return
	}
	pp.ready = ready
	started := metav1.Now()
	if cs := pp.pod.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Running != nil {
		started = cs[0].State.Running.StartedAt
	}
	pp.setRunningLocked(started)
	now := metav1.Now()
	for i := range pp.pod.Status.Conditions {
		if t := pp.pod.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			pp.pod.Status.Conditions[i].LastTransitionTime = now
		}
	}
	pp.log.Info("readiness changed", "ready", ready)
	pp.publishLocked()
}
