// Package encoder is the encode pod's program (`mpegflow encode`): it claims
// exactly one job from the coordinator, reads the input through its
// presigned URL, encodes every rendition with one FFmpeg process
// (encoder/ffmpeg), verifies the outputs, uploads them through presigned
// PUTs, completes and exits. Workers never hold storage credentials.
package encoder
