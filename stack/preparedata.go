package stack

import (
	"fmt"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
)

// Prepared is what PrepareData did for one manifest.
type Prepared struct {
	Manifest string
	Samples  int   // this rank's samples
	Made     int64 // processor entries computed (the rest were in the cache)
	Hits     int64 // encoder entries found
	Misses   int64 // encoder entries computed
}

// PrepareData fills the data cache of a Qwen2.5-Omni run ahead of
// training for manifest (data.train or data.eval): this rank's samples
// (i % world == rank) are processed (the processor stage, in parallel, as
// opening the dataset does) and run through the towers in batches of
// data.batch_size (the encoder stage), reporting through
// DataHooks.Progress. c must hold the thinker (Build).
func (c *Stack) PrepareData(key, manifest string, rank, world int) (Prepared, error) {
	res := Prepared{Manifest: manifest}
	if c.Omni == nil {
		return res, fmt.Errorf("%w: model.path %s: prepare-data fills a Qwen2.5-Omni model's data cache; this model reads feature files", recipes.ErrRecipe, c.Cfg.Model.Path)
	}
	if world < 1 || rank < 0 || rank >= world {
		return res, inputerr.Mark(fmt.Errorf("rank %d of %d", rank, world))
	}
	if c.Tok == nil {
		var err error
		if c.Tok, err = LoadOmniTokenizer(c.Cfg.Model.Path); err != nil {
			return res, err
		}
	}
	pad, err := PadID(c.Tok, filepath.Join(c.Cfg.Model.Path, "tokenizer.json"))
	if err != nil {
		return res, err
	}
	ds, err := c.openOmniShard(manifest, pad, rank, world)
	if err != nil {
		return res, DataErr(key, err)
	}
	res.Made = c.lastMedia.Made()
	res.Samples = len(ds.Samples)
	if c.Enc.Off { // data.encoder_cache false: the towers run in training, nothing to fill
		return res, nil
	}
	hits, misses := c.Enc.Hits.Load(), c.Enc.Misses.Load()
	bs := max(c.Cfg.Train.BatchSize, 1)
	for lo := 0; lo < len(ds.Samples); lo += bs {
		var idx []int
		for i := lo; i < min(lo+bs, len(ds.Samples)); i++ {
			idx = append(idx, i)
		}
		if err := c.encodeBatch(ds, idx); err != nil {
			return res, err
		}
		if p := DataHooks.Progress; p != nil {
			p(manifest+" (towers)", idx[len(idx)-1]+1, len(ds.Samples))
		}
	}
	res.Hits, res.Misses = c.Enc.Hits.Load()-hits, c.Enc.Misses.Load()-misses
	return res, nil
}

// encodeBatch fills the encoder entries of ds's samples idx.
func (c *Stack) encodeBatch(ds *data.Dataset, idx []int) error {
	b, err := ds.Batch(idx, data.ModeTrain, nil)
	if err != nil {
		return err
	}
	s := torch.NewScope()
	defer s.Close()
	in, err := omniTokenInputs(b)
	if err != nil {
		return err
	}
	_, err = c.omniEmbeds(s, b, in)
	return err
}
