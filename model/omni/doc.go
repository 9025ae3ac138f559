// Package omni is Qwen2.5-Omni's thinker as a frozen backbone: its
// config.json (a full model's thinker_config or a thinker-only save, every
// field either read, declared inert, or refused by name), streamed and
// validated loading of the thinker's weights (talker.* and token2wav.*
// never read), the text decoder with TMRoPE (the 3-axis position ids of
// transformers' get_rope_index for text, image, video, audio and audio
// interleaved with video, the mrope_section split of the rotary
// dimensions, the rope delta for decoding through the KV cache), and the
// forwards of the frozen audio and vision towers. The decoder is model's
// (model.NewDecoder), so adapters attach to its Linears as to any decoder.
package omni
