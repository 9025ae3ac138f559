package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// Tokenizer encodes text to ids and decodes ids to text as described by a
// tokenizer.json file. Build one with Load or Parse.
type Tokenizer struct {
	added      *addedVocab
	normalizer normalizer
	pre        preTokenizer
	model      *bpe
	post       postProcessor
	dec        decoder

	vocabSize int
	bos       int32 // -1: unknown
	eos       int32
	pad       int32
}

// Load reads a tokenizer.json file. path may also be a directory holding one. When a
// tokenizer_config.json sits next to it, its bos_token, eos_token and pad_token name
// the ids BOS, EOS and Pad return.
func Load(path string) (*Tokenizer, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	data, err := fsutil.ReadRegularLimit(path, 1<<30)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if err := strictjson.CheckKeys(data, path, 1); err != nil { // top level and its sections (model, normalizer, ...)
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	cfg, err := fsutil.ReadRegularLimit(cfgPath, fsutil.MaxConfigSize)
	switch {
	case err == nil:
		if err := strictjson.CheckKeys(cfg, cfgPath, 0); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := t.applyConfig(cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// Parse builds a Tokenizer from the contents of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if f.Version != "" && f.Version != "1.0" {
		return nil, unsupported("tokenizer.json version %q (want 1.0)", f.Version)
	}
	if !isNull(f.Truncation) {
		return nil, unsupported("truncation (Encode never truncates; remove it from tokenizer.json)")
	}
	padToken, err := checkPadding(f.Padding)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{bos: -1, eos: -1, pad: -1}
	if t.normalizer, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if t.model, err = parseModel(f.Model); err != nil {
		return nil, err
	}
	if t.post, err = parsePostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	if t.dec, err = parseDecoder(f.Decoder); err != nil {
		return nil, err
	}
	if t.added, err = newAddedVocab(f.AddedTokens, t.model, t.normalizer); err != nil {
		return nil, err
	}
	t.vocabSize = len(t.model.idToToken)
	for id := range t.added.byID {
		t.vocabSize = max(t.vocabSize, int(id)+1)
	}
	t.guessSpecials(padToken)
	return t, nil
}

// Encode returns the ids of text. Added and special tokens written literally in the
// text (e.g. "</s>") become their ids; no BOS or EOS is added (HF's
// add_special_tokens=False). The text must be valid UTF-8.
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	if !utf8.ValidString(text) {
		return nil, ErrInvalidUTF8
	}
	var ids []int32
	for _, seg := range t.added.extract(text, t.normalizer) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		pieces := []piece{{text: seg.text, atStart: seg.atStart}}
		if t.pre != nil {
			pieces = t.pre.preTokenize(pieces)
		}
		for _, p := range pieces {
			ids = append(ids, t.model.tokenize(p.text)...)
		}
	}
	return ids, nil
}

// EncodeWithSpecial is Encode followed by the tokenizer's post-processor, which for
// LLaMA adds the BOS token (HF's add_special_tokens=True). Without a post-processor it
// equals Encode.
func (t *Tokenizer) EncodeWithSpecial(text string) ([]int32, error) {
	ids, err := t.Encode(text)
	if err != nil || t.post == nil {
		return ids, err
	}
	return t.post.process(ids), nil
}

// DecodeOption changes how Decode works.
type DecodeOption func(*decodeOptions)

type decodeOptions struct{ skipSpecial bool }

// SkipSpecialTokens makes Decode leave out special tokens (BOS, EOS, pad, ...).
func SkipSpecialTokens() DecodeOption {
	return func(o *decodeOptions) { o.skipSpecial = true }
}

// Decode returns the text of ids, like HF's decode: ids with no token are ignored,
// and the tokenizer's decoder rebuilds spaces and bytes.
func (t *Tokenizer) Decode(ids []int32, opts ...DecodeOption) string {
	var o decodeOptions
	for _, opt := range opts {
		opt(&o)
	}
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		tok, ok := t.IDToken(id)
		if !ok || (o.skipSpecial && t.added.special[tok]) {
			continue
		}
		tokens = append(tokens, tok)
	}
	if t.dec == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.dec.decodeChain(tokens), "")
}

// TokenID returns the id of a token string (an added token or a vocab entry).
func (t *Tokenizer) TokenID(tok string) (int32, bool) {
	if id, ok := t.added.byContent[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// IDToken returns the token string of id.
func (t *Tokenizer) IDToken(id int32) (string, bool) {
	if a, ok := t.added.byID[id]; ok {
		return a.content, true
	}
	return t.model.token(id)
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int32) bool {
	a, ok := t.added.byID[id]
	return ok && a.special
}

// VocabSize returns the number of ids: one more than the largest id of the vocab
// and the added tokens (the rows an embedding matrix needs).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// BOS returns the beginning-of-sequence id, when known.
func (t *Tokenizer) BOS() (int32, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence id, when known.
func (t *Tokenizer) EOS() (int32, bool) { return t.eos, t.eos >= 0 }

// Pad returns the padding id, when known.
func (t *Tokenizer) Pad() (int32, bool) { return t.pad, t.pad >= 0 }

// Unk returns the model's unknown-token id, when it has one.
func (t *Tokenizer) Unk() (int32, bool) { return t.model.unk, t.model.unk >= 0 }

// Well-known names, tried in order when nothing better says which token is which.
var (
	bosNames = []string{"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"}
	eosNames = []string{"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"}
	padNames = []string{"<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>"}
)

// guessSpecials sets BOS/EOS/Pad from the post-processor's template (the token before
// the sequence is the BOS, one after it the EOS), the padding config, then well-known
// names.
func (t *Tokenizer) guessSpecials(padToken string) {
	if t.post != nil {
		before, after := t.post.bosEOS()
		if len(before) > 0 {
			t.bos = before[len(before)-1]
		}
		if len(after) > 0 {
			t.eos = after[0]
		}
	}
	if id, ok := t.TokenID(padToken); ok && padToken != "" {
		t.pad = id
	}
	pick := func(dst *int32, names []string) {
		for _, n := range names {
			if *dst >= 0 {
				return
			}
			if id, ok := t.TokenID(n); ok {
				*dst = id
			}
		}
	}
	pick(&t.bos, bosNames)
	pick(&t.eos, eosNames)
	pick(&t.pad, padNames)
}

// applyConfig reads bos_token, eos_token and pad_token from tokenizer_config.json.
// Each may be a string or an AddedToken object with a "content" field.
func (t *Tokenizer) applyConfig(data []byte) error {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%w: tokenizer_config.json: %v", ErrInvalid, err)
	}
	for key, dst := range map[string]*int32{"bos_token": &t.bos, "eos_token": &t.eos, "pad_token": &t.pad} {
		raw, ok := cfg[key]
		if !ok || isNull(raw) {
			continue
		}
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return fmt.Errorf("%w: tokenizer_config.json: %s is neither a string nor a token object", ErrInvalid, key)
			}
			name = obj.Content
		}
		id, ok := t.TokenID(name)
		if !ok {
			return fmt.Errorf("%w: tokenizer_config.json: %s %q is not in the vocabulary", ErrInvalid, key, name)
		}
		*dst = id
	}
	return nil
}
