package ffmpeg

import (
	"errors"
	"strings"
)

// ErrInput is matched by every *InputError, for callers that only need to
// know whether retrying can help: errors.Is(err, ErrInput).
var ErrInput = errors.New("unusable input")

// InputError reports an input no retry can fix: an empty or corrupt file,
// something that is not a video, a file without a video stream, or one
// whose header claims more than its content holds. The job should fail
// permanently and show Msg to the user.
type InputError struct {
	// Msg is one line for the user; it names no local paths.
	Msg string
}

func (e *InputError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrInput) true for every InputError.
func (e *InputError) Is(target error) bool { return target == ErrInput }

// inputError builds an *InputError; msg is a fixed text the caller owns.
func inputError(msg string) *InputError { return &InputError{Msg: msg} }

// inputFailures are FFmpeg messages that, when FFmpeg fails, mean the input
// is at fault rather than the encoder or the machine. The messages are
// FFmpeg 5.1's; each maps to a user message.
var inputFailures = []struct {
	substr string
	msg    string
}{
	{"moov atom not found", "the file is incomplete: its MP4 index (moov atom) is missing, usually because the upload or recording was cut short"},
	{"Invalid data found when processing input", "the file is not a video FFmpeg can read: invalid data found when processing input"},
	{"could not find codec parameters", "the file's streams could not be read: FFmpeg could not find codec parameters"},
	{"Decoder (codec", "the video uses a codec this encoder cannot decode"},
	{"matches no streams", "the file has no usable video stream"},
	{"does not contain any stream", "the file contains no audio or video streams"},
	{"partial file", "the file is truncated: its content ends before its header says it does"},
}

// classifyInputFailure looks for an input-side failure in FFmpeg's stderr
// lines. input is the input argument as passed to FFmpeg; lines about other
// files (outputs) are ignored for the generic "invalid data" message, which
// FFmpeg also prints for encoder and muxer errors.
func classifyInputFailure(lines []string, input string) *InputError {
	for _, f := range inputFailures {
		for _, line := range lines {
			if !strings.Contains(strings.ToLower(line), strings.ToLower(f.substr)) {
				continue
			}
			if f.substr == "Invalid data found when processing input" && input != "" && !strings.HasPrefix(line, input) {
				continue
			}
			return inputError(f.msg)
		}
	}
	return nil
}
