package tokenizer

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadRawFixture returns a fixture tokenizer.json as a generic JSON object, for tests
// that break one part of it.
func loadRawFixture(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		edit    func(m map[string]any)
		want    error
		mention string // the error must name the feature
	}{
		{"unigram model", "llama2", func(m map[string]any) { m["model"] = map[string]any{"type": "Unigram", "vocab": []any{}} }, ErrUnsupported, "Unigram"},
		{"wordpiece model", "llama2", func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" }, ErrUnsupported, "WordPiece"},
		{"bpe dropout", "llama2", func(m map[string]any) { m["model"].(map[string]any)["dropout"] = 0.1 }, ErrUnsupported, "dropout"},
		{"precompiled normalizer", "llama2", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Precompiled"} }, ErrUnsupported, "Precompiled"},
		{"nested unsupported normalizer", "llama2", func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "BertNormalizer"}}}
		}, ErrUnsupported, "BertNormalizer"},
		{"unicode-scripts pre-tokenizer", "llama2", func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "UnicodeScripts"} }, ErrUnsupported, "UnicodeScripts"},
		{"look-ahead regex", "llama3", func(m map[string]any) {
			pre := m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
			pre["pattern"] = map[string]any{"Regex": `\w+(?=\s)`}
		}, ErrUnsupported, "regex"},
		{"wordpiece decoder", "llama2", func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} }, ErrUnsupported, "WordPiece"},
		{"unknown post-processor", "llama2", func(m map[string]any) { m["post_processor"] = map[string]any{"type": "Fancy"} }, ErrUnsupported, "Fancy"},
		{"truncation", "llama2", func(m map[string]any) { m["truncation"] = map[string]any{"max_length": 8} }, ErrUnsupported, "truncation"},
		{"fixed padding", "llama2", func(m map[string]any) {
			m["padding"] = map[string]any{"strategy": map[string]any{"Fixed": 16}, "pad_id": 0, "pad_token": "<unk>"}
		}, ErrUnsupported, "padding"},
		{"version", "llama2", func(m map[string]any) { m["version"] = "2.0" }, ErrUnsupported, "version"},
		{"no model", "llama2", func(m map[string]any) { delete(m, "model") }, ErrInvalid, "model"},
		{"component without type", "llama2", func(m map[string]any) { m["decoder"] = map[string]any{"x": 1} }, ErrInvalid, "type"},
		{"merge of unknown token", "llama2", func(m map[string]any) {
			mod := m["model"].(map[string]any)
			mod["merges"] = append(mod["merges"].([]any), []any{"nope", "zzz"})
		}, ErrInvalid, "nope"},
		{"merge result not in vocab", "llama2", func(m map[string]any) {
			mod := m["model"].(map[string]any)
			mod["merges"] = []any{"<s> </s>"}
		}, ErrInvalid, "<s></s>"},
		{"bad legacy merge", "llama2", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{"a b c"} }, ErrInvalid, "merge 0"},
		{"bad merge pair", "llama2", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{[]any{"a"}} }, ErrInvalid, "merge 0"},
		{"unk not in vocab", "llama2", func(m map[string]any) { m["model"].(map[string]any)["unk_token"] = "<nope>" }, ErrInvalid, "<nope>"},
		{"negative vocab id", "llama2", func(m map[string]any) { m["model"].(map[string]any)["vocab"].(map[string]any)["q"] = -4 }, ErrInvalid, "out of range"},
		{"duplicate vocab id", "llama2", func(m map[string]any) { m["model"].(map[string]any)["vocab"].(map[string]any)["qqq"] = 5 }, ErrInvalid, "id 5"},
		{"sparse vocab", "llama2", func(m map[string]any) { m["model"].(map[string]any)["vocab"].(map[string]any)["far"] = 1 << 30 }, ErrInvalid, "sparse"},
		{"vocab of wrong type", "llama2", func(m map[string]any) { m["model"].(map[string]any)["vocab"] = []any{1, 2} }, ErrInvalid, "model"},
		{"metaspace replacement", "llama2-metaspace", func(m map[string]any) {
			m["pre_tokenizer"].(map[string]any)["replacement"] = "ab"
		}, ErrInvalid, "replacement"},
		{"metaspace scheme", "llama2-metaspace", func(m map[string]any) {
			m["pre_tokenizer"].(map[string]any)["prepend_scheme"] = "sometimes"
		}, ErrInvalid, "sometimes"},
		{"split behavior", "llama3", func(m map[string]any) {
			pre := m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
			pre["behavior"] = "Shuffled"
		}, ErrInvalid, "Shuffled"},
		{"split pattern both", "llama3", func(m map[string]any) {
			pre := m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
			pre["pattern"] = map[string]any{"Regex": "a", "String": "b"}
		}, ErrInvalid, "pattern"},
		{"template without sequence", "llama2", func(m map[string]any) {
			m["post_processor"].(map[string]any)["single"] = []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}}
		}, ErrInvalid, "$A"},
		{"template unknown special", "llama2", func(m map[string]any) {
			m["post_processor"].(map[string]any)["special_tokens"] = map[string]any{}
		}, ErrInvalid, "<s>"},
		{"strip decoder content", "llama2", func(m map[string]any) {
			m["decoder"] = map[string]any{"type": "Strip", "content": "ab", "start": 1, "stop": 0}
		}, ErrInvalid, "Strip"},
		{"added token id", "llama2", func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"id": -1, "content": "<x>", "special": true}}
		}, ErrInvalid, "<x>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadRawFixture(t, tt.base)
			tt.edit(m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestParseNotJSON(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"model": 3}`, `{"added_tokens": {}}`} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) err = %v, want ErrInvalid", in, err)
		}
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "llama2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\xff", "ab\xc3", "\xed\xa0\x80"} {
		if _, err := tok.Encode(s); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("Encode(%q) err = %v, want ErrInvalidUTF8", s, err)
		}
		if _, err := tok.EncodeWithSpecial(s); !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("EncodeWithSpecial(%q) err = %v, want ErrInvalidUTF8", s, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": null}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), dir) {
		t.Errorf("bad file: err = %v, want ErrInvalid naming %s", err, dir)
	}
}

// copyFixture copies a fixture tokenizer.json into a temp dir and returns the dir.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSpecialIDs(t *testing.T) {
	type ids struct{ bos, eos, pad int32 } // -1: unknown
	tests := []struct {
		name    string
		fixture string
		config  string // tokenizer_config.json; "" for none
		want    ids
		wantErr bool
	}{
		{"llama2 from template and names", "llama2", "", ids{1, 2, -1}, false},
		{"llama3 from template and names", "llama3", "", ids{935, 936, -1}, false},
		{"metaspace with <pad>", "llama2-metaspace", "", ids{1, 2, 853}, false},
		{"config strings", "llama3", `{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|end_of_text|>"}`, ids{935, 940, 936}, false},
		{"config token objects", "llama2", `{"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": {"content": "</s>"}, "pad_token": null}`, ids{1, 2, -1}, false},
		{"config unknown token", "llama2", `{"eos_token": "<nope>"}`, ids{}, true},
		{"config bad json", "llama2", `{`, ids{}, true},
		{"config bad type", "llama2", `{"bos_token": 3}`, ids{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyFixture(t, tt.fixture)
			if tt.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := Load(dir)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ids{-1, -1, -1}
			if id, ok := tok.BOS(); ok {
				got.bos = id
			}
			if id, ok := tok.EOS(); ok {
				got.eos = id
			}
			if id, ok := tok.Pad(); ok {
				got.pad = id
			}
			if got != tt.want {
				t.Errorf("BOS/EOS/Pad = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLookups(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "llama2-metaspace"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's added tokens after </s> follow the vocab: [INST], [/INST], xyz, <mask>, <pad>.
	n := int32(tok.VocabSize())
	tests := []struct {
		tok     string
		id      int32
		special bool
	}{
		{"<unk>", 0, true}, {"<s>", 1, true}, {"</s>", 2, true}, {"<0x0A>", 3 + 0x0A, false},
		{"[INST]", n - 5, false}, {"xyz", n - 3, false}, {"<mask>", n - 2, true}, {"<pad>", n - 1, true},
	}
	if added := loadRawFixture(t, "llama2-metaspace")["added_tokens"].([]any); len(added) != 8 ||
		added[7].(map[string]any)["id"].(float64) != float64(n-1) {
		t.Fatalf("fixture changed: added_tokens = %v", added)
	}
	for _, tt := range tests {
		id, ok := tok.TokenID(tt.tok)
		if !ok || id != tt.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tt.tok, id, ok, tt.id)
		}
		if s, ok := tok.IDToken(tt.id); !ok || s != tt.tok {
			t.Errorf("IDToken(%d) = %q, %v; want %q", tt.id, s, ok, tt.tok)
		}
		if got := tok.IsSpecial(tt.id); got != tt.special {
			t.Errorf("IsSpecial(%d) = %v, want %v", tt.id, got, tt.special)
		}
	}
	for _, id := range []int32{-1, n, 1 << 30} {
		if s, ok := tok.IDToken(id); ok {
			t.Errorf("IDToken(%d) = %q, want none", id, s)
		}
	}
	if _, ok := tok.TokenID("no such token"); ok {
		t.Error("TokenID of an unknown string succeeded")
	}
	if unk, ok := tok.Unk(); !ok || unk != 0 {
		t.Errorf("Unk = %d, %v", unk, ok)
	}
}
