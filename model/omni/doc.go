// Package omni is Qwen2.5-Omni's thinker as a frozen backbone: its
// config.json (a full model's thinker_config or a thinker-only save, every
// field either read, declared inert, or refused by name), streamed and
// validated loading of the thinker's weights (talker.* and token2wav.*
// never read), and the text decoder with TMRoPE: the 3-axis position ids
// of transformers' get_rope_index (text, image, video, audio, and audio
// interleaved with video) and the mrope_section split of the rotary
// dimensions. The decoder itself is model's; encoder outputs are given at
// the <|AUDIO|>, <|IMAGE|> and <|VIDEO|> positions (the towers' forwards
// are not implemented yet).
package omni
