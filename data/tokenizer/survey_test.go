package tokenizer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// The survey fixtures (scripts/fixtures/tokenizer_survey_fixtures.py) rebuild the pipelines
// of the families users bring: SmolLM's Digits, Qwen2's NFC, Gemma's Replace, and the
// character-class pre-tokenizers and BPE word affixes.
var surveyDirs = []string{"survey-smollm", "survey-qwen2", "survey-gemma", "survey-classes", "survey-words", "survey-nfkc", "survey-o200k", "survey-tekken", "survey-regex"}

func TestSurveyMatchesHF(t *testing.T) {
	for _, name := range surveyDirs {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			tok, err := Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			c := readCases(t, filepath.Join(dir, "cases.json"))
			if tok.VocabSize() != c.VocabSizeWithAdded {
				t.Errorf("VocabSize = %d, HF %d", tok.VocabSize(), c.VocabSizeWithAdded)
			}
			t.Run("cases", func(t *testing.T) { checkCases(t, tok, c.Cases) })
			t.Run("random", func(t *testing.T) { checkCases(t, tok, c.RandomCases) })
			t.Run("decode", func(t *testing.T) { checkDecodeCases(t, tok, c.DecodeCases) })
		})
	}
}

// Components of tokenizer.json that no surveyed family uses are refused, and the
// error names the component and its type.
func TestSurveyRefusedComponents(t *testing.T) {
	const model = `{"type":"BPE","vocab":{"a":0},"merges":[]}`
	for _, tc := range []struct {
		field, value string
	}{
		{"normalizer", `{"type":"Precompiled","precompiled_charsmap":"AAAA"}`},
		{"normalizer", `{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}`},
		{"normalizer", `{"type":"StripAccents"}`},
		{"normalizer", `{"type":"Nmt"}`},
		{"normalizer", `{"type":"ByteLevel"}`},
		{"pre_tokenizer", `{"type":"BertPreTokenizer"}`},
		{"pre_tokenizer", `{"type":"UnicodeScripts"}`},
		{"pre_tokenizer", `{"type":"CharDelimiterSplit","delimiter":"x"}`},
		{"decoder", `{"type":"WordPiece","prefix":"##","cleanup":true}`},
		{"decoder", `{"type":"CTC","pad_token":"<pad>","word_delimiter_token":"|","cleanup":true}`},
		{"decoder", `{"type":"BPEDecoder","suffix":"</w>"}`},
		{"model", `{"type":"Unigram","unk_id":0,"vocab":[["a",0.0]]}`},
		{"model", `{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0}}`},
		{"model", `{"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0}}`},
	} {
		typ := tc.value[strings.Index(tc.value, `"type":"`)+8:]
		typ = typ[:strings.Index(typ, `"`)]
		t.Run(tc.field+"/"+typ, func(t *testing.T) {
			parts := map[string]string{"normalizer": "null", "pre_tokenizer": "null", "decoder": "null", "model": model}
			parts[tc.field] = tc.value
			js := `{"version":"1.0","added_tokens":[],"normalizer":` + parts["normalizer"] + `,"pre_tokenizer":` + parts["pre_tokenizer"] +
				`,"post_processor":null,"decoder":` + parts["decoder"] + `,"model":` + parts["model"] + `}`
			_, err := Parse([]byte(js))
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), typ) || !strings.Contains(err.Error(), strings.TrimSuffix(tc.field, "_tokenizer")) {
				t.Errorf("error %q does not name %s %q", err, tc.field, typ)
			}
		})
	}
}

// Split/Replace regexes whose Oniguruma meaning Go's regexp cannot reproduce are
// refused, naming the construct; the translatable ones compile.
func TestOnigRegexTranslation(t *testing.T) {
	for _, tc := range []struct {
		pattern, want string // want "" means accepted
	}{
		{`\s+|\d+|\w+|\W`, ""},
		{`[^\s\p{L}\d]+`, ""},
		{`\u00e9+`, ""},
		{`'s|'t| ?\p{L}+|\s*[\r\n]+|\s+(?!\S)|\s+`, ""},
		{`^\w+`, "anchor ^"},
		{`\w+$`, "anchor $"},
		{`\bword\b`, `anchor \b`},
		{`[^\S\n]+`, `\S inside a character class`},
		{`[a-z[0-9]]`, "nested character class"},
		{`[a-z&&[^aeiou]]`, "class intersection"},
		{`\w+(?=\s)`, "look-around"},
		{`(?<=a)b`, "look-around"},
		{`(?>ab|a)c`, "look-around or atomic group"},
		{`\h+`, `Oniguruma's \h`},
		{`a*|\s+(?!\S)|\s+`, "can match the empty string"},
		{`[abc`, "unterminated character class"},
	} {
		_, err := compileRegex(tc.pattern, "pre_tokenizer Split")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.pattern, err)
		case tc.want != "" && !errors.Is(err, ErrUnsupported):
			t.Errorf("%q: err = %v, want ErrUnsupported", tc.pattern, err)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: error %q does not mention %q", tc.pattern, err, tc.want)
		}
	}
}

// FuzzOnigRegex: translating and running any pattern never panics, and an
// accepted one finds in-range, ordered, non-overlapping matches.
func FuzzOnigRegex(f *testing.F) {
	for _, s := range []string{`\s+|\d+|\w+|\W`, `[^\s\p{L}]+|\s+(?!\S)|\s+`, `[]a]`, `[^]a]`, `\u00e9`, `\`, `[\`} {
		f.Add(s, "a b  c\u00a0½ 12\n\n x")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		m, err := compileRegex(pattern, "fuzz")
		if err != nil || !utf8.ValidString(text) {
			return
		}
		prev := 0
		for _, p := range m.findAll(text) {
			if p[0] < prev || p[1] <= p[0] || p[1] > len(text) {
				t.Fatalf("%q on %q: bad match %v after %d", pattern, text, p, prev)
			}
			prev = p[1]
		}
	})
}
