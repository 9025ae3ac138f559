package safetensors

import (
	"fmt"
	"path/filepath"
	"slices"
)

// maxIndexSize bounds the index file read into memory.
const maxIndexSize = MaxHeaderSize

// index is a parsed model.safetensors.index.json.
type index struct {
	weightMap map[string]string // tensor name → shard file name
	shards    []string          // distinct shard names, sorted
}

// parseIndex parses the index file at path (used in messages) with content
// b. It requires a non-empty "weight_map" object of strings with no duplicate
// keys, and shard names that are local paths (no absolute path, no "..").
// Other top-level keys, such as "metadata", are accepted and ignored.
func parseIndex(path string, b []byte) (*index, error) {
	p := newWalker(path, b, ErrInvalidIndex)
	if err := p.expectDelim("", '{', "index"); err != nil {
		return nil, err
	}
	var idx *index
	seen := make(map[string]bool)
	for p.dec.More() {
		k, err := p.key("")
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, fileErr(path, fmt.Errorf("%w: key %q appears twice", ErrDuplicate, k))
		}
		seen[k] = true
		if k != "weight_map" {
			if err := p.skip(""); err != nil {
				return nil, err
			}
			continue
		}
		if idx, err = p.weightMap(); err != nil {
			return nil, err
		}
	}
	if err := p.expectDelim("", '}', "index"); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	if idx == nil {
		return nil, p.invalid("", "no \"weight_map\"")
	}
	if len(idx.weightMap) == 0 {
		return nil, p.invalid("", "\"weight_map\" is empty")
	}
	return idx, nil
}

// weightMap reads the "weight_map" object.
func (p *walker) weightMap() (*index, error) {
	if err := p.expectDelim("", '{', "weight_map"); err != nil {
		return nil, err
	}
	idx := &index{weightMap: make(map[string]string)}
	shardSet := make(map[string]bool)
	for p.dec.More() {
		name, err := p.key("")
		if err != nil {
			return nil, err
		}
		if _, dup := idx.weightMap[name]; dup {
			return nil, tensorErr(p.path, name, fmt.Errorf("%w: tensor appears twice in weight_map", ErrDuplicate))
		}
		tok, err := p.dec.Token()
		if err != nil {
			return nil, p.syntax(name, err)
		}
		shard, ok := tok.(string)
		if !ok {
			return nil, p.invalid(name, "shard file name must be a string, found %s", describe(tok))
		}
		if !filepath.IsLocal(shard) {
			return nil, tensorErr(p.path, name, fmt.Errorf("%w: shard %q is not a relative path inside the checkpoint directory", ErrUnsafePath, shard))
		}
		if !shardSet[shard] {
			shardSet[shard] = true
			idx.shards = append(idx.shards, shard)
		}
		idx.weightMap[name] = shard
	}
	if err := p.expectDelim("", '}', "weight_map"); err != nil {
		return nil, err
	}
	slices.Sort(idx.shards)
	return idx, nil
}
