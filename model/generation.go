package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/mose-llm/mose/internal/fsutil"
)

// maxEndTokens bounds the end-of-generation ids a config may list.
const maxEndTokens = 64

// EndTokens is the one definition of end-of-generation: the ids at which
// generation stops, as transformers' generate takes them:
// generation_config.json's eos_token_id when the model dir has that file
// and it sets one, else config.json's eos_token_id. Each is an id or a list
// of ids (LLaMA-3.x lists several); nil when neither file sets one (the
// caller then falls back to the tokenizer's EOS). Ids are checked against
// vocab (> 0: the model's vocab_size).
func EndTokens(dir string, vocab int) ([]int64, error) {
	for _, name := range []string{"generation_config.json", "config.json"} {
		path := filepath.Join(dir, name)
		b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
		if errors.Is(err, fs.ErrNotExist) && name == "generation_config.json" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		ids, err := parseEndTokens(b, vocab)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: eos_token_id: %v", ErrConfig, path, err)
		}
		if ids != nil {
			return ids, nil
		}
	}
	return nil, nil
}

// parseEndTokens reads eos_token_id from a config file's JSON: absent or
// null gives nil.
func parseEndTokens(b []byte, vocab int) ([]int64, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, err
	}
	raw, ok := keys["eos_token_id"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var one int64
	var ids []int64
	if err := json.Unmarshal(raw, &one); err == nil {
		ids = []int64{one}
	} else if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("%s is neither an id nor a list of ids", raw)
	}
	if len(ids) == 0 || len(ids) > maxEndTokens {
		return nil, fmt.Errorf("%d ids, want 1 to %d", len(ids), maxEndTokens)
	}
	for _, id := range ids {
		if id < 0 || (vocab > 0 && id >= int64(vocab)) {
			return nil, fmt.Errorf("id %d is outside the vocabulary [0, %d)", id, vocab)
		}
	}
	return ids, nil
}
