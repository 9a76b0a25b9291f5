package ffmpeg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestStitchFromLedgers stitches chunked encodes whose parts kept none of
// their media segments, only their ledgers, as the chunk tasks leave them
// after uploading their segments to the final keys: the playlists, master
// and MPD come out byte for byte as when every segment is at hand, Verify
// and CheckSeams pass without reading a segment, Collect lists every
// segment, and a ledger that lies, or lacks a segment, is refused.
func TestStitchFromLedgers(t *testing.T) {
	t.Parallel()
	for _, packaging := range []encodespec.Packaging{encodespec.PackagingHLS, encodespec.PackagingCMAF} {
		t.Run(packaging.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ffmpegBin, ffprobeBin := binaries(t)
			input := makeClip(t, clip{width: 640, height: 360, seconds: 12, audio: true})
			in := probeClip(t, input)
			spec := chunkedSpec()
			spec.Packaging, spec.Thumbnails = packaging, nil
			chunks, err := PlanChunks(in.DurationSeconds, nil, ChunkGrid(spec), 4)
			require.NoError(t, err)
			require.Len(t, chunks, 3)
			parts, whole := encodeChunkParts(t, spec, input, chunks), wholePart(t, spec, input)

			// The reference: a copy of the parts stitched with every
			// segment at hand.
			refParts := make([]Command, len(parts))
			for i, p := range parts {
				refParts[i] = copyPart(t, p)
			}
			refOut := filepath.Join(t.TempDir(), "reference")
			ref, err := Stitch(ctx, ffmpegBin, refOut, in, chunks, refParts, copyPart(t, whole))
			require.NoError(t, err)
			refOutputs, err := Collect(ref)
			require.NoError(t, err)

			// Each part indexes its segments, writes its ledger and
			// drops the segments.
			segments := 0
			dropSegments := func(p *Command) {
				l, err := IndexSegments(*p)
				require.NoError(t, err)
				require.NoError(t, WriteLedger(p.OutDir, l))
				for name := range l {
					require.NoError(t, os.Remove(filepath.Join(p.OutDir, filepath.FromSlash(name))))
				}
				segments += len(l)
				p.Remote, err = ReadLedger(p.OutDir)
				require.NoError(t, err)
				require.Equal(t, l, p.Remote)
			}
			for i := range parts {
				dropSegments(&parts[i])
			}
			dropSegments(&whole)
			require.Positive(t, segments)

			// A part whose ledger lacks one of its segments is refused.
			lacking := copyPart(t, parts[1])
			lacking.Remote = Ledger{}
			_, err = Stitch(ctx, ffmpegBin, filepath.Join(t.TempDir(), "lacking"), in, chunks, []Command{parts[0], lacking, parts[2]}, whole)
			require.ErrorContains(t, err, "neither in the part nor in its ledger")

			out := filepath.Join(t.TempDir(), "stitched")
			cmd, err := Stitch(ctx, ffmpegBin, out, in, chunks, parts, whole)
			require.NoError(t, err)
			assert.Len(t, cmd.Remote, segments, "every part's segments, none read")
			outputs, err := Collect(cmd)
			require.NoError(t, err)
			assert.Equal(t, refOutputs, outputs, "the same outputs as a stitch with the segments at hand")
			require.NoError(t, Verify(ctx, ffprobeBin, cmd, outputs, in))
			require.NoError(t, CheckSeams(cmd, in))
			for _, o := range refOutputs {
				if _, remote := cmd.Remote[o.Name]; remote {
					assert.NoFileExists(t, filepath.Join(out, filepath.FromSlash(o.Name)))
					continue
				}
				assert.Equal(t, readFile(t, refOut, o.Name), readFile(t, out, o.Name), "%s", o.Name)
			}

			// A ledger that lies about where a video segment starts is a
			// seam: the last segment of the 360p rendition (its own
			// directory in HLS, representation 0 in the DASH layout).
			var name string
			for n := range cmd.Remote {
				if (strings.HasPrefix(n, "360p/") || strings.HasPrefix(n, "seg_0_")) && n > name {
					name = n
				}
			}
			require.NotEmpty(t, name, "a 360p segment among %d", len(cmd.Remote))
			lie := cmd
			lie.Remote = Ledger{}
			for n, f := range cmd.Remote {
				lie.Remote[n] = f
			}
			f := lie.Remote[name]
			f.Start++
			lie.Remote[name] = f
			require.ErrorContains(t, CheckSeams(lie, in), name)
		})
	}
}

// copyPart copies a part's directory, for a second stitch of the same
// files (Stitch moves them).
func copyPart(t *testing.T, p Command) Command {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "copy")
	b, err := exec.Command("cp", "-a", p.OutDir, dir).CombinedOutput()
	require.NoError(t, err, "%s", b)
	p.OutDir = dir
	return p
}

// TestReadLedgerRefusesWhatIsNotASegment: a part's ledger names only media
// segments inside the output directory, with facts a segment can have.
func TestReadLedgerRefusesWhatIsNotASegment(t *testing.T) {
	t.Parallel()
	good := `{"size": 10, "start": 0, "end": 50, "sync": true, "durations": {"1": 50}}`
	for _, tc := range []struct {
		name, ledger, err string
	}{
		{"a segment", `{"360p/seg_00001.m4s": ` + good + `, "seg_0_00002.m4s": ` + good + `}`, ""},
		{"outside the directory", `{"../other/seg_00001.m4s": ` + good + `}`, "not a media segment's"},
		{"absolute", `{"/tmp/seg_00001.m4s": ` + good + `}`, "not a media segment's"},
		{"an init segment", `{"init_0.m4s": ` + good + `}`, "not a media segment's"},
		{"no size", `{"360p/seg_00001.m4s": {"size": 0, "start": 0, "end": 50, "durations": {"1": 50}}}`, "not a media segment's"},
		{"ends before it starts", `{"360p/seg_00001.m4s": {"size": 10, "start": 60, "end": 50, "durations": {"1": 50}}}`, "not a media segment's"},
		{"no samples", `{"360p/seg_00001.m4s": {"size": 10, "start": 0, "end": 50, "durations": {}}}`, "not a media segment's"},
		{"not JSON", `[1, 2]`, "read segments.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, LedgerName), []byte(tc.ledger), 0o644))
			l, err := ReadLedger(dir)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, l, 2)
			assert.NoFileExists(t, filepath.Join(dir, LedgerName), "the ledger is not an output")
		})
	}
	l, err := ReadLedger(t.TempDir())
	require.NoError(t, err)
	assert.Nil(t, l, "a part without a ledger kept its segments")
}
