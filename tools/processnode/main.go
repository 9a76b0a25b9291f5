package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "processnode:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		kubeconfig = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the control plane")
		name       = flag.String("node-name", "process-node", "name of the Node object")
		workDir    = flag.String("work-dir", "", "directory of the pods' scratch directories and logs (required)")
		cpu        = flag.String("cpu", "8", "cpu capacity the node reports")
		memory     = flag.String("memory", "16Gi", "memory capacity the node reports")
		pods       = flag.String("pods", "110", "pod capacity the node reports")
		// Encode pods request ephemeral-storage (their scratch), which a
		// node without this capacity could never fit.
		ephemeral = flag.String("ephemeral-storage", "1Ti", "ephemeral-storage capacity the node reports")
		gpus      = flag.String("gpus", "0", "nvidia.com/gpu capacity the node reports")
		labels    = flag.String("labels", "", "extra node labels, k=v,k=v")
		logLevel  = flag.String("log-level", "info", "debug, info, warn or error")
	)
	flag.Parse()
	if *workDir == "" {
		return errors.New("--work-dir is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	vklog.L = vkslog.FromSlog(logger)

	capacity := corev1.ResourceList{}
	for res, q := range map[corev1.ResourceName]string{
		corev1.ResourceCPU: *cpu, corev1.ResourceMemory: *memory, corev1.ResourcePods: *pods, "nvidia.com/gpu": *gpus,
		corev1.ResourceEphemeralStorage: *ephemeral,
	} {
		v, err := resource.ParseQuantity(q)
		if err != nil {
			return fmt.Errorf("capacity %s=%q: %w", res, q, err)
		}
		capacity[res] = v
	}
	extra, err := parseLabels(*labels)
	if err != nil {
		return err
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %q: %w", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var provider *Provider
	n, err := nodeutil.NewNode(*name, func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		provider, err = NewProvider(client, *workDir, logger)
		if err != nil {
			return nil, nil, err
		}
		return provider, nil, nil
	},
		nodeutil.WithClient(client),
		func(c *nodeutil.NodeConfig) error {
			c.NodeSpec = nodeSpec(*name, capacity, extra)
			c.NumWorkers = 4
			c.InformerResyncPeriod = 30 * time.Second
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	go func() {
		if err := n.WaitReady(ctx, 0); err == nil {
			logger.InfoContext(ctx, "node ready", "node", *name)
		}
	}()
	err = n.Run(ctx)
	provider.StopAll(*name)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run node: %w", err)
	}
	return nil
}

// nodeSpec is the Node the controller registers: schedulable, healthy, with
// the capacity given on the command line.
func nodeSpec(name string, capacity corev1.ResourceList, extra map[string]string) corev1.Node {
	labels := map[string]string{
		"type":                   "virtual-kubelet",
		"kubernetes.io/role":     "agent",
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
	}
	for k, v := range extra {
		labels[k] = v
	}
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodePending,
			Capacity:    capacity,
			Allocatable: capacity,
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionFalse, "Starting"),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "NoPressure"),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "NoPressure"),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "NoPressure"),
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "HostNetwork"),
			},
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "processnode"},
		},
	}
}

// parseLabels reads k=v,k=v.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not k=v", kv)
		}
		out[k] = v
	}
	return out, nil
}
