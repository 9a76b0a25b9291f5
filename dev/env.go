package dev

import (
	"fmt"
	"io"
	"strings"

	"github.com/mpegflow/mpegflow/dev/stack"
)

// PrintEnv writes the export lines of `mpegflow dev env` for the stack
// whose data directory --data names (data, else DataDir's default).
func PrintEnv(out io.Writer, data string) error {
	dir, err := DataDir(data)
	if err != nil {
		return err
	}
	info, err := stack.ReadInfo(dir)
	if err != nil {
		return err
	}
	key, ok, err := stack.ReadOwnerKey(dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no owner key in %s: start `mpegflow dev --data %s` first", dir, dir)
	}
	fmt.Fprintf(out, "export MPEGFLOW_SERVER=%s\n", shellQuote(info.Server))
	fmt.Fprintf(out, "export MPEGFLOW_API_KEY=%s\n", shellQuote(key))
	return nil
}

// shellQuote quotes s for a POSIX shell when it holds anything unusual.
func shellQuote(s string) string {
	plain := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.,:/@%+=", r)
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plain(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
