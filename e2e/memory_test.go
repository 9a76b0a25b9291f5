//go:build e2e

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memorySampler keeps the peak of the summed resident memory of this test
// process and all its descendants: the whole rig (etcd, apiserver,
// controllers, KEDA, the node, serve, operator, encoders, FFmpeg).
// Postgres, Redis and the S3 server are started by with-services.sh, not
// here, and are not counted.
type memorySampler struct {
	mu   sync.Mutex
	peak int64 // bytes
	stop chan struct{}
	done chan struct{}
}

func startMemorySampler(every time.Duration) *memorySampler {
	m := &memorySampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// Peak is the highest sum seen so far, in bytes.
func (m *memorySampler) Peak() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// ResetPeak starts a new measurement (one per scenario) and returns the
// previous peak.
func (m *memorySampler) ResetPeak() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peak
	m.peak = 0
	return p
}

func (m *memorySampler) Stop() {
	close(m.stop)
	<-m.done
}

func (m *memorySampler) sample() {
	total := treeRSS(os.Getpid())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peak = max(m.peak, total)
}

// treeRSS sums VmRSS of root and every descendant.
func treeRSS(root int) int64 {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := statusField(pid, "PPid:"); ppid >= 0 {
			children[int(ppid)] = append(children[int(ppid)], pid)
		}
	}
	var total int64
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if kb := statusField(pid, "VmRSS:"); kb > 0 {
			total += kb * 1024
		}
		stack = append(stack, children[pid]...)
	}
	return total
}

// statusField reads a numeric field of /proc/PID/status, or -1.
func statusField(pid int, name string) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return -1
			}
			v, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}
