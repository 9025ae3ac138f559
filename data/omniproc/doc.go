// Package omniproc is Qwen2.5-Omni's processor in Go, matching transformers 5.25's
// Qwen2_5OmniProcessor on the same decoded frames and waveform: Whisper's log-mel
// features (mel.go), Qwen2-VL's image and video preprocessing (vision.go, with Pillow's
// bicubic resampling in resize.go) and the prompt with its media placeholders expanded
// to the right number of tokens (prompt.go). Process puts them together into one
// sample's processor outputs under transformers' names (the names model/omni's
// ReadBatch reads).
package omniproc
