package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/tiny/{tokenizer,words}.json from BuildTinySpec")

// tinyWords are the golden tiny tokenizer's words: the nine labels and prompt words.
var tinyWords = []string{
	"angry", "disgusted", "doubtful", "fearful", "happy", "neutral", "sad", "surprised", "worried",
	"The", "person", "in", "the", "video", "says:", "I", "am", "fine.", "audio", "text",
	"[emotion]", "Please", "determine", "which", "emotion", "label", "represents", "<VideoHere>",
	"happiness", "sadness", "émotion", "情绪",
}

var tinySpecial = []string{"<pad>"}

// TestTinyGolden pins BuildTinySpec's output. scripts/fixtures/make_fixtures.py runs it with
// -update, then loads the file with HF tokenizers and records HF's ids in
// testdata/tiny/cases.json, which TestMatchesHF/tiny compares with this package.
func TestTinyGolden(t *testing.T) {
	got, err := BuildTinySpec(TinySpec{Words: tinyWords, Special: tinySpecial})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "tiny", "tokenizer.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		words, _ := json.Marshal(tinyWords)
		if err := os.WriteFile(filepath.Join("testdata", "tiny", "words.json"), append(words, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("BuildTinySpec output differs from %s (rerun scripts/fixtures/make_fixtures.py --only tokenizers)", path)
	}
	again, err := BuildTinySpec(TinySpec{Words: tinyWords, Special: tinySpecial})
	if err != nil || !bytes.Equal(got, again) {
		t.Fatal("BuildTinySpec is not deterministic")
	}
}

func TestBuildTinyWordsAreSingleTokens(t *testing.T) {
	data, err := BuildTinySpec(TinySpec{Words: tinyWords, Special: tinySpecial})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range tinyWords {
		ids, err := tok.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := tok.TokenID("▁" + w)
		if !ok || !slices.Equal(ids, []int32{want}) {
			t.Errorf("Encode(%q) = %v, want the single token ▁%s (%d, %v)", w, ids, w, want, ok)
		}
	}
	// A sentence of words is one id per word, and decodes back.
	text := strings.Join(tinyWords, " ")
	ids, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(tinyWords) {
		t.Errorf("Encode(sentence) gave %d ids for %d words", len(ids), len(tinyWords))
	}
	if got := tok.Decode(ids); got != text {
		t.Errorf("Decode = %q, want %q", got, text)
	}
	for name, get := range map[string]func() (int32, bool){"BOS": tok.BOS, "EOS": tok.EOS, "Pad": tok.Pad, "Unk": tok.Unk} {
		if _, ok := get(); !ok {
			t.Errorf("%s unknown", name)
		}
	}
	if pad, _ := tok.Pad(); pad != int32(tok.VocabSize()-1) {
		t.Errorf("Pad = %d, want the last id %d", pad, tok.VocabSize()-1)
	}
}

func TestBuildTinyErrors(t *testing.T) {
	tests := []struct {
		name string
		spec TinySpec
	}{
		{"empty word", TinySpec{Words: []string{"ok", ""}}},
		{"space", TinySpec{Words: []string{"two words"}}},
		{"tab", TinySpec{Words: []string{"a\tb"}}},
		{"metaspace", TinySpec{Words: []string{"a▁b"}}},
		{"invalid utf8", TinySpec{Words: []string{"a\xffb"}}},
		{"special inside", TinySpec{Words: []string{"x</s>"}}},
		{"extra special inside", TinySpec{Words: []string{"a<pad>"}, Special: []string{"<pad>"}}},
		{"empty special", TinySpec{Words: []string{"a"}, Special: []string{""}}},
		{"duplicate base special", TinySpec{Words: []string{"a"}, Special: []string{"<s>"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := BuildTinySpec(tt.spec); !errors.Is(err, ErrBuild) {
				t.Fatalf("err = %v, want ErrBuild", err)
			}
		})
	}
	if _, err := BuildTiny(nil); err != nil {
		t.Fatalf("no words: %v", err)
	}
}
