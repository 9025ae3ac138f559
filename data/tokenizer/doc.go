// Package tokenizer encodes and decodes text with HuggingFace tokenizer.json files, in
// pure Go (no cgo), matching the ids of HF `tokenizers` exactly for the pipelines that
// LLaMA-family checkpoints use:
//
//   - LLaMA-2 / Mistral style: BPE with byte_fallback and fuse_unk, the normalizer
//     Sequence[Prepend("▁"), Replace(" ", "▁")] or the Metaspace pre-tokenizer, and the
//     decoder Sequence[Replace("▁", " ") | Metaspace, ByteFallback, Fuse, Strip];
//   - LLaMA-3 / GPT-2 style: byte-level BPE (ignore_merges), a Split pre-tokenizer with
//     the LLaMA-3 (or GPT-2) regex followed by ByteLevel, and the ByteLevel decoder;
//   - SmolLM / SmolLM2 (hub files): Sequence[Digits(individual_digits), ByteLevel];
//   - Qwen2 / Qwen2.5: the NFC normalizer, Split with the Qwen2 regex, ByteLevel;
//   - Gemma: the Replace(" ", "▁") normalizer, no pre-tokenizer, byte_fallback BPE;
//   - Phi-3: the LLaMA-2 pipeline;
//   - also the NFD, NFKC, NFKD, Strip, Lowercase and regex Replace normalizers; the
//     Punctuation, Whitespace and WhitespaceSplit pre-tokenizers and every Split
//     behaviour (with invert); BPE continuing_subword_prefix and end_of_word_suffix;
//   - added tokens (special or not, normalized or not, lstrip/rstrip/single_word) that
//     are split out of the text before the model runs;
//   - TemplateProcessing, ByteLevel, Bert and Roberta post-processors (the BOS that
//     LLaMA prepends).
//
// The split regexes of LLaMA-3 and GPT-2 use a look-ahead, `\s+(?!\S)`, that Go's regexp
// package cannot express: both are implemented by hand (see split.go). Any other regex
// is compiled with Go's regexp; one it cannot compile is reported as unsupported.
//
// Every component of a tokenizer.json that this package does not implement (a WordPiece,
// WordLevel or Unigram model; the Precompiled, BertNormalizer, StripAccents and Nmt
// normalizers; the BertPreTokenizer, UnicodeScripts and CharDelimiterSplit
// pre-tokenizers; the WordPiece, BPEDecoder and CTC decoders; BPE dropout; truncation;
// a Fixed padding ...) makes Load fail
// with an error wrapping ErrUnsupported that names the feature, rather than producing
// ids that differ silently from HF's.
//
// A Tokenizer is safe for concurrent use by multiple goroutines.
package tokenizer
