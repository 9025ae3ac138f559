package omniproc

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// TinyTokenizerJSON is a Qwen2-style byte-level BPE tokenizer.json (NFC, the Qwen2
// split regex, ByteLevel) of 500 tokens with Qwen2.5-Omni's special tokens at
// omni-tiny's ids 500-509 (<|AUDIO|>, <|IMAGE|>, <|VIDEO|>, <|audio_bos|>,
// <|audio_eos|>, <|vision_bos|>, <|vision_eos|>, <|im_start|>, <|im_end|>,
// <|endoftext|>). scripts/checks/check_processor.py trains it with HF tokenizers
// (--tokenizer-out); mose init-model --preset omni-tiny writes it.
//
//go:embed omni-tiny-tokenizer.json
var TinyTokenizerJSON []byte

// qwenSpecialIDs are Qwen2.5-Omni's ids of the special tokens
// TinyTokenizerJSON has (omni.Presets' omni-small uses them); the ids between
// them belong to other special tokens in Qwen2.5-Omni.
var qwenSpecialIDs = map[string]int{
	"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|AUDIO|>": 151646,
	"<|audio_bos|>": 151647, "<|audio_eos|>": 151648, "<|vision_bos|>": 151652, "<|vision_eos|>": 151653,
	"<|IMAGE|>": 151655, "<|VIDEO|>": 151656,
}

// SmallTokenizerJSON is TinyTokenizerJSON with its special tokens at
// Qwen2.5-Omni's own ids (qwenSpecialIDs), for omni-small, whose config
// names those ids. HF tokenizers gives an added token the next id after the
// model's vocabulary, so the BPE vocabulary is padded with filler tokens up
// to 151643 (no merge makes them: no text encodes to them), and the ids
// between the special tokens hold special filler tokens. The text encodes
// to the same BPE ids as with TinyTokenizerJSON.
func SmallTokenizerJSON() ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(TinyTokenizerJSON, &top); err != nil {
		return nil, err
	}
	var model map[string]json.RawMessage
	if err := json.Unmarshal(top["model"], &model); err != nil {
		return nil, err
	}
	var vocab map[string]int
	if err := json.Unmarshal(model["vocab"], &vocab); err != nil {
		return nil, err
	}
	var added []map[string]any
	if err := json.Unmarshal(top["added_tokens"], &added); err != nil {
		return nil, err
	}
	first, last := qwenSpecialIDs["<|endoftext|>"], qwenSpecialIDs["<|VIDEO|>"]
	for id := len(vocab); id < first; id++ {
		vocab[fmt.Sprintf("<|filler_%d|>", id)] = id
	}
	byContent := map[int]map[string]any{}
	for _, t := range added {
		c, _ := t["content"].(string)
		id, ok := qwenSpecialIDs[c]
		if !ok {
			return nil, fmt.Errorf("omniproc: the tiny tokenizer's added token %q has no Qwen2.5-Omni id", c)
		}
		t["id"] = id
		byContent[id] = t
	}
	var out []map[string]any
	for id := first; id <= last; id++ {
		t, ok := byContent[id]
		if !ok {
			t = map[string]any{"id": id, "content": fmt.Sprintf("<|filler_%d|>", id), "single_word": false,
				"lstrip": false, "rstrip": false, "normalized": false, "special": true}
		}
		out = append(out, t)
	}
	var err error
	if model["vocab"], err = json.Marshal(vocab); err != nil {
		return nil, err
	}
	if top["model"], err = json.Marshal(model); err != nil {
		return nil, err
	}
	if top["added_tokens"], err = json.Marshal(out); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// PresetTokenizerJSON is the tokenizer.json of an omni preset (omni.Presets):
// TinyTokenizerJSON for omni-tiny, SmallTokenizerJSON for omni-small.
func PresetTokenizerJSON(preset string) ([]byte, error) {
	switch preset {
	case "omni-tiny":
		return TinyTokenizerJSON, nil
	case "omni-small":
		return SmallTokenizerJSON()
	}
	return nil, fmt.Errorf("omniproc: no tokenizer for preset %q", preset)
}
