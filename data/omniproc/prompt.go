package omniproc

import (
	"strings"
)

// The special tokens of Qwen2.5-Omni's tokenizer that the prompt uses.
const (
	TokAudio     = "<|AUDIO|>"
	TokImage     = "<|IMAGE|>"
	TokVideo     = "<|VIDEO|>"
	TokAudioBOS  = "<|audio_bos|>"
	TokAudioEOS  = "<|audio_eos|>"
	TokVisionBOS = "<|vision_bos|>"
	TokVisionEOS = "<|vision_eos|>"
	TokIMStart   = "<|im_start|>"
	TokIMEnd     = "<|im_end|>"
)

// SystemPrompt is Qwen2.5-Omni's default system prompt.
const SystemPrompt = "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual inputs, as well as generating text and speech."

// Prompt renders one user turn the way Qwen2.5-Omni's chat template renders a
// conversation of a system message and a user message holding, in this order, a
// video, an image, an audio and the text, with the generation prompt:
//
//	<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n
//	<|vision_bos|><|VIDEO|><|vision_eos|><|vision_bos|><|IMAGE|><|vision_eos|>
//	<|audio_bos|><|AUDIO|><|audio_eos|>{text}<|im_end|>\n<|im_start|>assistant\n
//
// (without the line breaks of the middle line). Each placeholder appears only when
// its medium is given; the video's own audio (use_audio_in_video) has no placeholder
// of its own: it is interleaved into the video's.
func Prompt(system string, video, image, audio bool, text string) string {
	var b strings.Builder
	b.WriteString(TokIMStart + "system\n" + system + TokIMEnd + "\n" + TokIMStart + "user\n")
	if video {
		b.WriteString(TokVisionBOS + TokVideo + TokVisionEOS)
	}
	if image {
		b.WriteString(TokVisionBOS + TokImage + TokVisionEOS)
	}
	if audio {
		b.WriteString(TokAudioBOS + TokAudio + TokAudioEOS)
	}
	b.WriteString(text + TokIMEnd + "\n" + TokIMStart + "assistant\n")
	return b.String()
}

// chunks splits monotonically increasing token times into runs whose values fall
// in successive windows of perChunk (the processor's get_chunked_index): the
// lengths of the runs.
func chunks(times []float64, perChunk int) []int {
	var out []int
	start, cur := 0, 1
	for i, v := range times {
		if v >= float64(cur*perChunk) {
			out = append(out, i-start)
			start = i
			cur++
		}
	}
	return append(out, len(times)-start)
}

// interleaved is the replacement of a video placeholder when its audio is used
// (replace_video_with_audio_token): <|audio_bos|>, then per time chunk of
// positionPerSec·secsPerChunk the chunk's video tokens then its audio tokens,
// then <|audio_eos|>. grid is the video's (t, h, w) in patches.
func interleaved(grid [3]int64, merge int, secondPerGrid float64, audioTokens int, positionPerSec, secsPerChunk float64) string {
	hw := int(grid[1]/int64(merge)) * int(grid[2]/int64(merge))
	var vt []float64
	for t := range int(grid[0]) {
		for range hw {
			vt = append(vt, float64(t)*secondPerGrid*positionPerSec)
		}
	}
	at := make([]float64, audioTokens)
	for i := range at {
		at[i] = float64(i)
	}
	per := int(positionPerSec * secsPerChunk)
	vc, ac := chunks(vt, per), chunks(at, per)
	var b strings.Builder
	b.WriteString(TokAudioBOS)
	for j := range max(len(vc), len(ac)) {
		if j < len(vc) {
			b.WriteString(strings.Repeat(TokVideo, vc[j]))
		}
		if j < len(ac) {
			b.WriteString(strings.Repeat(TokAudio, ac[j]))
		}
	}
	b.WriteString(TokAudioEOS)
	return b.String()
}
