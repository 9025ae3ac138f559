package memest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// preflightOmni is Preflight for a Qwen2.5-Omni thinker: what a run on it
// cannot do yet refused by key (stack.OmniUnsupported), the adapters
// against its decoder, model.quantize against its decoder linears' layout,
// the tokenizer against its vocabulary, every processor-outputs file of
// data.train and data.eval (data.eval's only for eval: its placeholders
// against its media, every pixel and feature value finite), the samples'
// lengths and count, and every weight of the thinker (not the talker's)
// finite.
func preflightOmni(cfg *recipes.Config, kind Kind) error {
	oc, err := omni.LoadConfig(cfg.Model.Path)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	if err := stack.OmniUnsupported(cfg); err != nil {
		return err
	}
	dc := oc.Decoder()
	if err := checkAdapterSize(cfg, dc); err != nil {
		return err
	}
	if err := checkQuantize(cfg, dc); err != nil {
		return err
	}
	if kind == PreflightTrain {
		if err := CheckWritableDir("run.output_dir", cfg.Run.OutputDir); err != nil {
			return err
		}
	}
	if kind == PreflightExport {
		return nil
	}
	spec, err := stack.ReadOmniSpec(cfg.Model.Path, oc)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	tokPath := filepath.Join(cfg.Model.Path, "tokenizer.json")
	tok, err := stack.LoadOmniTokenizer(cfg.Model.Path)
	if err != nil {
		return err
	}
	pad, err := tokenizerPad(tok, tokPath, cfg.Model.Path, dc.VocabSize)
	if err != nil {
		return err
	}
	for _, set := range preflightSets(cfg, kind) {
		ds, err := data.OpenOmni(set.path, spec, tok, data.Options{Root: cfg.Data.Root, MaxLen: cfg.Data.MaxLen, PadID: pad,
			Media: stack.NewMediaPrep(cfg, set.path)}) // media samples: processed into the data cache
		if err == nil {
			err = stack.CheckOmniDataset(oc, ds)
		}
		if err == nil {
			err = ds.ScanFeatures(cfg.Data.Workers)
		}
		if err != nil {
			return stack.DataErr(set.key, err)
		}
		if n := slices.Max(append(ds.Lengths(), 0)); dc.MaxPositionEmbeddings > 0 && n > dc.MaxPositionEmbeddings {
			return fmt.Errorf("%w: %s %s: samples reach %d tokens, beyond the model's max_position_embeddings %d",
				recipes.ErrRecipe, set.key, set.path, n, dc.MaxPositionEmbeddings)
		}
		if world := max(cfg.Run.WorldSize, 1); set.key == "data.train" && ds.Len() < cfg.Train.BatchSize*world {
			return fmt.Errorf("%w: train.batch_size %d × %d processes: data.train %s has only %d samples (batches are full, the rest of an epoch is dropped)",
				recipes.ErrRecipe, cfg.Train.BatchSize, world, cfg.Data.Train, ds.Len())
		}
	}
	ck, err := safetensors.OpenDir(cfg.Model.Path)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	defer ck.Close()
	thinker := func(name string) bool { return strings.HasPrefix(name, oc.Prefix) } // a full model's talker is never read
	if err := ck.CheckFiniteWhere(0, thinker); err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	return nil
}
