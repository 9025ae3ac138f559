package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// casesFile is the JSON written by scripts/fixtures/make_fixtures.py: HF tokenizers' output for
// a list of strings.
type casesFile struct {
	Note               string       `json:"note"`
	Tokenizer          string       `json:"tokenizer"`
	HFVersion          string       `json:"hf_tokenizers_version"`
	VocabSizeWithAdded int          `json:"vocab_size_with_added"`
	Cases              []hfCase     `json:"cases"`
	RandomCases        []hfCase     `json:"random_cases"`
	DecodeCases        []decodeCase `json:"decode_cases"`
	TokenizerSHA256    string       `json:"tokenizer_sha256"`
	SourcePackage      string       `json:"source_package"`
}

type hfCase struct {
	Text               string   `json:"text"`
	PreTokenized       []string `json:"pretokenized"`
	IDs                []int32  `json:"ids"`
	IDsWithSpecial     []int32  `json:"ids_with_special"`
	Decoded            string   `json:"decoded"`
	DecodedWithSpecial string   `json:"decoded_with_special"`
	DecodedSkipSpecial string   `json:"decoded_skip_special"`
}

// decodeCase is an arbitrary id sequence (invalid byte runs, unknown ids, specials)
// and HF's decoding of it.
type decodeCase struct {
	IDs                []int32 `json:"ids"`
	Decoded            string  `json:"decoded"`
	DecodedSkipSpecial string  `json:"decoded_skip_special"`
}

func checkDecodeCases(t *testing.T, tok *Tokenizer, cases []decodeCase) {
	t.Helper()
	if len(cases) == 0 {
		t.Fatal("no decode cases")
	}
	for i, c := range cases {
		if got := tok.Decode(c.IDs); got != c.Decoded {
			t.Errorf("decode case %d %v: Decode = %q, HF %q", i, c.IDs, got, c.Decoded)
		}
		if got := tok.Decode(c.IDs, SkipSpecialTokens()); got != c.DecodedSkipSpecial {
			t.Errorf("decode case %d %v: Decode(skip special) = %q, HF %q", i, c.IDs, got, c.DecodedSkipSpecial)
		}
	}
}

func readCases(t testing.TB, path string) casesFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c casesFile
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(c.Cases) < 20 && filepath.Base(filepath.Dir(path)) != "tiny" {
		t.Fatalf("%s: only %d cases", path, len(c.Cases))
	}
	return c
}

// checkCases compares Encode, EncodeWithSpecial and Decode with HF's results.
func checkCases(t *testing.T, tok *Tokenizer, cases []hfCase) {
	t.Helper()
	for i, c := range cases {
		if c.PreTokenized != nil {
			var got []string
			for _, p := range tok.pre.preTokenize([]piece{{text: c.Text, atStart: true}}) {
				got = append(got, p.text)
			}
			if !slices.Equal(got, c.PreTokenized) && len(got)+len(c.PreTokenized) > 0 {
				t.Errorf("case %d %q:\n pre-tokenized = %q\n HF            = %q", i, c.Text, got, c.PreTokenized)
			}
		}
		ids, err := tok.Encode(c.Text)
		if err != nil {
			t.Errorf("case %d %q: Encode: %v", i, c.Text, err)
			continue
		}
		if !slices.Equal(ids, c.IDs) {
			t.Errorf("case %d %q:\n Encode = %v\n HF     = %v", i, c.Text, ids, c.IDs)
		}
		withSp, err := tok.EncodeWithSpecial(c.Text)
		if err != nil {
			t.Errorf("case %d %q: EncodeWithSpecial: %v", i, c.Text, err)
		} else if !slices.Equal(withSp, c.IDsWithSpecial) {
			t.Errorf("case %d %q:\n EncodeWithSpecial = %v\n HF                = %v", i, c.Text, withSp, c.IDsWithSpecial)
		}
		if got := tok.Decode(c.IDs); got != c.Decoded {
			t.Errorf("case %d %q: Decode = %q, HF %q", i, c.Text, got, c.Decoded)
		}
		if got := tok.Decode(c.IDsWithSpecial); got != c.DecodedWithSpecial {
			t.Errorf("case %d %q: Decode(with special) = %q, HF %q", i, c.Text, got, c.DecodedWithSpecial)
		}
		if got := tok.Decode(c.IDsWithSpecial, SkipSpecialTokens()); got != c.DecodedSkipSpecial {
			t.Errorf("case %d %q: Decode(skip special) = %q, HF %q", i, c.Text, got, c.DecodedSkipSpecial)
		}
	}
}

func TestMatchesHF(t *testing.T) {
	for _, name := range []string{"llama2", "llama2-metaspace", "llama3", "llama2-unk", "misc", "tiny"} {
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

// TestRealLlama3 checks Meta's LLaMA-3.2 tokenizer.json, which is not committed (9 MB,
// Meta's licence): scripts/fixtures/make_fixtures.py puts it in the cache. The test is skipped
// when it is not there.
func TestRealLlama3(t *testing.T) {
	c := readCases(t, filepath.Join("testdata", "real-llama3.2.cases.json"))
	path := os.Getenv("MOSE_LLAMA3_TOKENIZER")
	if path == "" {
		cache := os.Getenv("MOSE_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Skip("no home directory to find the cache in")
			}
			cache = filepath.Join(home, ".cache", "mose")
		}
		path = filepath.Join(cache, "tokenizers", "llama-3.2", "tokenizer.json")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not found (run scripts/fixtures/make_fixtures.py --only tokenizers to fetch it)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256Hex(data); got != c.TokenizerSHA256 {
		t.Fatalf("%s: sha256 %s, the cases were made from %s", path, got, c.TokenizerSHA256)
	}
	tok, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != c.VocabSizeWithAdded {
		t.Errorf("VocabSize = %d, HF %d", tok.VocabSize(), c.VocabSizeWithAdded)
	}
	checkCases(t, tok, c.Cases)
	checkCases(t, tok, c.RandomCases)
	checkDecodeCases(t, tok, c.DecodeCases)
}

// TestConcurrentEncode shares one Tokenizer (and its BPE cache) between goroutines.
func TestConcurrentEncode(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "llama3"))
	if err != nil {
		t.Fatal(err)
	}
	c := readCases(t, filepath.Join("testdata", "llama3", "cases.json"))
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for rep := 0; rep < 20; rep++ {
				for _, cs := range c.RandomCases {
					ids, err := tok.Encode(cs.Text)
					if err != nil || !slices.Equal(ids, cs.IDs) {
						errs <- fmt.Errorf("Encode(%q) = %v, %v; want %v", cs.Text, ids, err, cs.IDs)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
