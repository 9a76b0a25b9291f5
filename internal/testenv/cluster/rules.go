//go:build cluster

package cluster

import (
	"os/exec"
	"strings"
	"testing"
)

// SweepRules deletes what the node left in the host's iptables and
// ip6tables: every chain named KUBE-* (kube-proxy's and the kubelet's
// canaries) or CNI-*, and the rules of the built-in chains that jump to
// them. It returns what it found, for the test to assert on.
func SweepRules(t testing.TB) []string {
	t.Helper()
	var found []string
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(bin+"-save", "-t", table).Output()
			if err != nil {
				continue // no such table in this kernel
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if ours(line) {
					found = append(found, bin+" -t "+table+": "+line)
				}
				switch {
				case strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-"):
					chains = append(chains, strings.Fields(line[1:])[0])
				case strings.HasPrefix(line, "-A ") && ours(line) && !strings.HasPrefix(line, "-A KUBE-") && !strings.HasPrefix(line, "-A CNI-"):
					// A rule in a chain not ours that jumps to ours: delete
					// it by its specification.
					args := append([]string{"-t", table, "-D"}, splitRule(line[len("-A "):])...)
					if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
						t.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, out)
					}
				}
			}
			for _, op := range []string{"-F", "-X"} {
				for _, c := range chains {
					if out, err := exec.Command(bin, "-t", table, op, c).CombinedOutput(); err != nil {
						t.Errorf("%s -t %s %s %s: %v: %s", bin, table, op, c, err, out)
					}
				}
			}
		}
	}
	return found
}

func ours(line string) bool {
	return strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, podBridge)
}

// splitRule splits an iptables-save rule into arguments, keeping quoted
// strings (comments) whole.
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
