// Package media decodes video, audio and image files for Qwen2.5-Omni's processor by
// running FFmpeg as a subprocess: video frames sampled at a rate (ffmpeg's fps filter)
// as raw RGB24, audio as 16 kHz mono float32, both read from ffmpeg's stdout with
// every size bounded before it is allocated and every run under a deadline.
//
// FFmpeg is found by Locate: $MOSE_FFMPEG, the ffmpeg on PATH, or the static build
// that scripts/setup/ffmpeg.sh unpacks into ${MOSE_CACHE:-~/.cache/mose}/ffmpeg/.
// Only ffmpeg is needed (no ffprobe): a file is probed by reading the stream lines
// that `ffmpeg -i` prints.
//
// Every bad file (zero length, not media, truncated, no video stream, no audio where
// audio is needed, beyond the Limits) gives an error wrapping inputerr.ErrInput that
// names the file; ffmpeg's stderr is summarised to its last lines, never dumped.
package media
