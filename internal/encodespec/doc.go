// Package encodespec defines the encode spec a workflow holds: which video
// renditions to make, which audio track to add, how to package the result and
// which thumbnails and storyboard to make. It is the only shape of user input that reaches
// the encoder, so it is deliberately closed: every string is checked against
// an allowlist and every number against a range before anything is turned
// into FFmpeg arguments. User input never reaches FFmpeg as raw arguments;
// the encoder builds its command line from a validated Spec alone.
//
// # Lifecycle
//
// The API server calls [Parse] on the request body: a strict decode that
// rejects unknown fields, duplicate fields, wrong JSON types and trailing
// data, followed by [Spec.Normalize] (defaults) and [Spec.Validate]. Every
// failure is a [validation.Errors] whose field paths (for example
// "renditions[1].codec") point at the offending input and whose details say
// what is allowed, so the API can answer with an RFC 9457 problem that names
// each field. Specs built in code (the [Builtin] workflows, tests) go through
// Normalize and Validate directly.
//
// When the encoder has probed its input it calls [Spec.ForSource] to fit the
// spec to the actual source, then [Rendition.OutputSize] for each rendition's
// exact frame size.
//
// # Sizes and orientation
//
// A rendition's Height is the target for the frame's shorter side and Width
// the limit for its longer side. For a landscape source that is the ordinary
// meaning (720 lines high, at most 1280 wide); for a portrait source the box
// is turned with the source, so a "1080p" rung of a 1080x1920 phone video is
// 1080x1920, not 608x1080. With only one of the two set the other side
// follows the source's aspect ratio; with both set the frame fits inside the
// box; with neither the rendition keeps the source size. Output dimensions are
// always even (4:2:0 chroma needs that), so odd sources such as 1279x719 are
// scaled to the nearest even size, keeping the aspect ratio within one pixel.
//
// # Never upscaling
//
// [Spec.ForSource] drops renditions that would be larger than the source. So
// that a source between two rungs (1279x719 against a 1080/720/480/360
// ladder) still gets a top rung near its own size, the smallest dropped rung
// is kept at source size, with its bitrate scaled by the pixel ratio, when the
// source's shorter side is at least 10% larger than the best kept rung — and
// always when nothing else would be left. A spec therefore never produces an
// empty ladder and never upscales.
//
// # Rules worth knowing
//
//   - 1 to 8 renditions; none only for a spec of thumbnails and/or a
//     storyboard, which then has no packaging and no audio.
//   - Each rendition sets exactly one of bitrate_kbps (50..100000) and crf
//     (h264/hevc 0..51, av1/vp9 0..63). HLS and DASH ladders need
//     bitrate_kbps on every rendition: players choose rungs by declared
//     bandwidth, which a quality-only (CRF) encode cannot promise.
//   - packaging is "mp4", "hls", "dash", or ["hls", "dash"] ("cmaf" for
//     short): one set of fMP4 (CMAF) segments referenced by both an HLS
//     master playlist and a DASH MPD, encoded once (see [Packaging]).
//   - VP9 is not allowed with HLS packaging, CMAF's included: fMP4 HLS
//     players rarely decode it. Use dash packaging for VP9 or pick h264,
//     hevc or av1.
//   - Presets and profiles are per-codec allowlists; empty means the
//     encoder's default.
//   - Audio is optional. A spec with audio still works for inputs without an
//     audio stream: the encoder maps the source audio as optional and simply
//     writes no audio track. Loudness normalisation follows EBU R128 with the
//     ranges of FFmpeg's loudnorm filter.
//   - segment_seconds (1..30, default 4) applies to hls, dash and CMAF only.
//   - conditioning (optional) overrides how the input is prepared before
//     scaling: deinterlace auto|on|off, tone_map auto|off, frame_rate
//     auto|keep; "auto" (the default) decides from ffprobe (see
//     [Conditioning]) and the encoder records every decision on the video
//     outputs.
//   - ladder (optional): mode fixed (the default) or per_title, whose
//     target_psnr_db (30..80, default 42) the encoder reaches per input
//     at a quality factor it finds by probing, capped at the rendition's
//     own bitrate_kbps (see [Ladder]). per_title needs h264 renditions
//     with bitrate_kbps.
//   - A storyboard (interval_seconds 1..3600, default 5; tile_width even
//     32..640, default 160; columns and rows 1..20, default 10; columns x
//     tile_width at most 8192) makes ceil(duration / interval) tiles on as
//     many sheets as they need; [Storyboard.Layout] says where each goes.
//
// Rendition names are limited to [a-z0-9_-]{1,32} because the encoder uses
// them in output object names.
package encodespec
