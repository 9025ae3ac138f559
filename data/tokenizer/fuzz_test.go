package tokenizer

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTokenizer loads a fixture for a fuzz target, and seeds the corpus with its cases.
func fuzzTokenizer(f *testing.F, name string) *Tokenizer {
	f.Helper()
	tok, err := Load(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	c := readCases(f, filepath.Join("testdata", name, "cases.json"))
	for _, cs := range c.Cases {
		f.Add(cs.Text)
	}
	return tok
}

// containsAdded reports whether s contains the text of an added token (which Encode
// cuts out, so the round trip need not hold).
func containsAdded(tok *Tokenizer, s string) bool {
	for content := range tok.added.byContent {
		if strings.Contains(s, content) {
			return true
		}
	}
	return false
}

// FuzzEncodeLlama2: Encode never panics, and for the LLaMA-2 pipeline (byte fallback,
// so no <unk>) Decode(Encode(s)) == s for valid UTF-8 without "▁" or added tokens.
func FuzzEncodeLlama2(f *testing.F) {
	tok := fuzzTokenizer(f, "llama2")
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("Encode(%q) accepted invalid UTF-8", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if strings.Contains(s, "▁") || containsAdded(tok, s) {
			return
		}
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
		withSp, err := tok.EncodeWithSpecial(s)
		if err != nil || len(withSp) != len(ids)+1 || withSp[0] != 1 {
			t.Fatalf("EncodeWithSpecial(%q) = %v, %v; want BOS + %v", s, withSp, err, ids)
		}
		if got := tok.Decode(withSp, SkipSpecialTokens()); got != s {
			t.Fatalf("Decode(EncodeWithSpecial(%q), skip) = %q", s, got)
		}
	})
}

// FuzzEncodeLlama3: byte-level BPE is lossless, so Decode(Encode(s)) == s for every
// valid UTF-8 string without special tokens.
func FuzzEncodeLlama3(f *testing.F) {
	tok := fuzzTokenizer(f, "llama3")
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("Encode(%q) accepted invalid UTF-8", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if containsAdded(tok, s) {
			return
		}
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
	})
}

// FuzzDecode: Decode of any ids (unknown, negative, specials, broken byte runs) never
// panics and returns valid UTF-8.
func FuzzDecode(f *testing.F) {
	toks := map[string]*Tokenizer{}
	for _, name := range []string{"llama2", "llama2-metaspace", "llama3"} {
		tok, err := Load(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		toks[name] = tok
	}
	f.Add([]byte{0xe4, 0, 0, 0, 0xb8, 0, 0, 0, 1, 0, 0, 0}, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, raw []byte, skip bool) {
		ids := make([]int32, len(raw)/4)
		for i := range ids {
			ids[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		for name, tok := range toks {
			var out string
			if skip {
				out = tok.Decode(ids, SkipSpecialTokens())
			} else {
				out = tok.Decode(ids)
			}
			if !utf8.ValidString(out) {
				t.Fatalf("%s: Decode(%v) = %q is not valid UTF-8", name, ids, out)
			}
		}
	})
}

// Small tokenizer.json seeds for FuzzParse (the fixtures are too large for the
// fuzzer's minimizer to shrink in reasonable time).
var parseSeeds = []string{
	`{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[{"id":0,"content":"<unk>","special":true,"normalized":false},{"id":1,"content":"<s>","special":true,"normalized":false}],
"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
"pre_tokenizer":null,
"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}},
"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},
"model":{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"byte_fallback":true,"vocab":{"<unk>":0,"<s>":1,"<0x41>":2,"<0xC3>":3,"▁":4,"a":5,"b":6,"▁a":7,"ab":8},"merges":["▁ a","a b"]}}`,
	`{"version":"1.0","added_tokens":[{"id":6,"content":"<|x|>","special":true,"normalized":false}],
"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"` + strings.ReplaceAll(strings.ReplaceAll(llama3Pattern, `\`, `\\`), `"`, `\"`) + `"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},
"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|x|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<|x|>":{"id":"<|x|>","ids":[6],"tokens":["<|x|>"]}}}]},
"decoder":{"type":"ByteLevel"},
"model":{"type":"BPE","ignore_merges":true,"vocab":{"a":0,"b":1,"Ġ":2,"Ġa":3,"ab":4,"Ġab":5},"merges":[["Ġ","a"],["a","b"],["Ġa","b"]]}}`,
	`{"normalizer":{"type":"Sequence","normalizers":[{"type":"Strip","strip_left":true,"strip_right":true},{"type":"Lowercase"},{"type":"Replace","pattern":{"Regex":"[0-9]+"},"content":"#"}]},
"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},{"type":"Split","pattern":{"String":"-"},"behavior":"MergedWithPrevious","invert":true}]},
"decoder":{"type":"Metaspace","replacement":"▁","add_prefix_space":true},
"post_processor":{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]},
"model":{"vocab":{"<s>":0,"<unk>":1,"</s>":2,"▁":3,"a":4},"merges":[],"unk_token":"<unk>"}}`,
}

// FuzzParse: Parse never panics on arbitrary input, and what it accepts encodes and
// decodes without panicking.
func FuzzParse(f *testing.F) {
	for i, s := range parseSeeds {
		if _, err := Parse([]byte(s)); err != nil {
			f.Fatalf("seed %d: %v", i, err)
		}
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		ids, err := tok.Encode("Hello wörld <s> 😀 12345 a-b ab")
		if err == nil {
			_ = tok.Decode(ids)
			_ = tok.Decode(ids, SkipSpecialTokens())
		}
	})
}
