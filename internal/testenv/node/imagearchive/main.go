// Command imagearchive packs one static executable into a one-layer OCI
// image archive for `ctr images import`: the cluster tier's pause image
// (`make pause-image`), since no registry is reachable to pull one from.
//
//	imagearchive -name localhost/mpegflow/pause:TAG -path /pause -exe bin/pause -o pause.oci.tar
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/mpegflow/mpegflow/internal/testenv/node"
)

func main() {
	name := flag.String("name", "", "image reference with a tag, e.g. localhost/mpegflow/pause:TAG")
	path := flag.String("path", "/pause", "the executable's absolute path in the image (its entrypoint)")
	exe := flag.String("exe", "", "the static executable to pack")
	out := flag.String("o", "", "archive to write")
	flag.Parse()
	if *name == "" || *exe == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "imagearchive: -name, -exe and -o are required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*name, *path, *exe, *out); err != nil {
		fmt.Fprintln(os.Stderr, "imagearchive:", err)
		os.Exit(1)
	}
}

func run(name, path, exe, out string) error {
	data, err := os.ReadFile(exe)
	if err != nil {
		return fmt.Errorf("read executable: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	w := bufio.NewWriter(f)
	if err := (node.Image{Name: name, Path: path, Executable: data}).WriteArchive(w); err != nil {
		_ = f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write archive %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close archive %s: %w", out, err)
	}
	return nil
}
