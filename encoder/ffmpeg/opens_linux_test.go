package ffmpeg

import (
	"encoding/binary"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// watchOpens starts watching dir (its files, not subdirectories) with
// inotify and returns a function listing the names of the files in it that
// any process opened or read since. The kernel queues an event when the
// open happens, so once FFmpeg has exited every open it made is listed.
func watchOpens(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	_, err = syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN|syscall.IN_ACCESS)
	require.NoError(t, err)
	return func() []string {
		var names []string
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				return names
			}
			require.NoError(t, err)
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				start := off + syscall.SizeofInotifyEvent
				name := strings.TrimRight(string(buf[start:start+nameLen]), "\x00")
				if name == "" {
					name = "." // the directory itself
				}
				names = append(names, name)
				off = start + nameLen
			}
		}
	}
}
