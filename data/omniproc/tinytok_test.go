package omniproc

import (
	"slices"
	"testing"

	"github.com/mose-llm/mose/data/tokenizer"
)

// omni-small's tokenizer has the special tokens at Qwen2.5-Omni's ids and
// encodes text to omni-tiny's ids (the specials aside); the python side
// (transformers' PreTrainedTokenizerFast) gives the same ids, checked by
// hand when it was written: the filler tokens are what HF's id assignment
// needs.
func TestSmallTokenizer(t *testing.T) {
	b, err := SmallTokenizerJSON()
	if err != nil {
		t.Fatal(err)
	}
	small, err := tokenizer.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := tokenizer.Parse(TinyTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range qwenSpecialIDs {
		if id, ok := small.TokenID(tok); !ok || int(id) != want {
			t.Errorf("%s: id %d (%v), want %d", tok, id, ok, want)
		}
		if !small.IsSpecial(int32(want)) {
			t.Errorf("%s is not special", tok)
		}
	}
	text := "How does the speaker feel? happy sad angry neutral worried"
	a, err := small.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	w, err := tiny.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, w) || len(a) == 0 {
		t.Errorf("text ids %v, omni-tiny's %v", a, w)
	}
	ids, err := small.EncodeWithSpecial("<|im_start|>user<|vision_bos|><|VIDEO|><|vision_eos|><|im_end|>")
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != 151644 || !slices.Contains(ids, 151656) || ids[len(ids)-1] != 151645 {
		t.Errorf("special ids %v", ids)
	}
	if got := small.Decode(a); got != text {
		t.Errorf("decode: %q", got)
	}
}
