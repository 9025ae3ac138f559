package omniproc

import _ "embed"

// TinyTokenizerJSON is a Qwen2-style byte-level BPE tokenizer.json (NFC, the Qwen2
// split regex, ByteLevel) of 500 tokens with Qwen2.5-Omni's special tokens at
// omni-tiny's ids 500-509 (<|AUDIO|>, <|IMAGE|>, <|VIDEO|>, <|audio_bos|>,
// <|audio_eos|>, <|vision_bos|>, <|vision_eos|>, <|im_start|>, <|im_end|>,
// <|endoftext|>). scripts/checks/check_processor.py trains it with HF tokenizers
// (--tokenizer-out); mose init-model --preset omni-tiny writes it.
//
//go:embed omni-tiny-tokenizer.json
var TinyTokenizerJSON []byte
