// Package ffmpeg turns a validated encode spec into one FFmpeg process, runs
// it and checks what it produced. It is the encoder's only contact with the
// FFmpeg and FFprobe binaries.
//
// A job goes through five steps:
//
//  1. [Probe] reads the input with ffprobe. Inputs no retry can fix (empty,
//     not a video, truncated, no video stream, a container outside the
//     allowlist) come back as an *[InputError] with a one-line message for
//     the user.
//  2. [ChooseEncoders] picks an encoder per codec: NVENC on GPU pools when a
//     one-frame probe encode succeeds, otherwise a CPU encoder, recording why
//     it fell back.
//  3. [Plan] builds the arguments of a single FFmpeg process that decodes the
//     input once, splits and scales it for every rendition, encodes audio
//     once, places keyframes on segment boundaries in every rendition (so
//     HLS and DASH players can switch rungs) and writes thumbnails, the
//     poster and the storyboard's sprite sheets from the same decode.
//     Arguments come from the validated spec alone; no user string reaches
//     FFmpeg.
//  4. [Run] runs it, streaming progress from FFmpeg's -progress output and
//     stopping FFmpeg gracefully (SIGINT, then SIGKILL) when the context
//     ends. For HLS it then writes the master playlist in Go, with BANDWIDTH
//     measured from the segments (the HLS peak-segment rule) and CODECS read
//     from each init segment, which FFmpeg 5.1 cannot do for every codec,
//     and for a storyboard it writes the WebVTT index.
//  5. [Collect] lists every file produced and [Verify] probes them all
//     (duration, size, codec per rendition) and checks that every playlist
//     and manifest reference resolves, before anything is uploaded.
//
// # Chunked encodes
//
// A long input can be encoded in pieces by separate processes (see
// docs/design/0028-chunked-encoding.md): [PlanChunks] cuts it on the
// segment grid, near the input's [Keyframes]; each chunk is planned
// [WithChunk] (video only, on the whole input's timeline, segments
// numbered as in the whole encode), the audio and images once
// [WithWholeInput]; [Stitch] checks that the pieces join and writes the
// HLS playlists, the master and the DASH MPD (or joins MP4 files by
// stream copy) without re-encoding anything, and [CheckSeams] reads every
// segment's boxes to prove the joins. Every packaging; not encryption
// yet ([Chunkable]).
//
// # Output layout
//
// All names are relative to the output directory, with forward slashes:
//
//   - mp4:  <rendition>.mp4 (faststart, audio muxed in; one audio encode is
//     shared by all files through FFmpeg's tee muxer)
//   - hls:  master.m3u8, <rendition>/index.m3u8, <rendition>/init.mp4,
//     <rendition>/seg_NNNNN.m4s, and the same under audio/ for the shared
//     audio rendition group
//   - dash: manifest.mpd, init_<i>.m4s and seg_<i>_NNNNN.m4s where i is the
//     stream index (renditions in spec order, then audio); [Collect] maps
//     each file back to its rendition
//   - thumbnails: thumbs/thumb_NNNNN.jpg and poster.jpg
//   - storyboard: storyboard/sheet-N.jpg (N from 1) and storyboard/storyboard.vtt,
//     whose cues reference the sheets next to it ("sheet-1.jpg#xywh=0,0,160,90")
//
// FFmpeg runs with the output directory as its working directory, so every
// output argument is a short relative name made of validated rendition
// names; the input is passed as an absolute "file:" URL so no protocol or
// option can be smuggled in through its name.
//
// # Inputs are media, not instructions
//
// Some formats FFmpeg reads are lists of other files or URLs: HLS and DASH
// playlists, concat lists, image sequences, SDP descriptions. FFmpeg
// follows them, so an uploaded "video" could make the encode read another
// tenant's file. Probe first lets FFmpeg only name the demuxer it would use
// and refuses anything outside a short allowlist of single-file containers
// (MP4/MOV, Matroska/WebM, MPEG-TS, MXF, AVI, FLV, ...). Every later read,
// by ffprobe and by the encode, forces that one demuxer (-f and
// -format_whitelist) and the local file protocol alone
// (-protocol_whitelist file), with QuickTime external data references off.
package ffmpeg
