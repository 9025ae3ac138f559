package stack

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
)

// Load builds cfg's stack (with the datasets sets says) and loads the
// adapters of dir: a training checkpoint (step-NNNNNNN, validated whole
// before use, with the modality weights its state recorded) or a PEFT
// export (`mose export --format peft`). A model dir (a merged export, or a
// base model) runs as it is stored, with no adapters (IsModelDir). It runs on the tensor thread; close
// the result.
func Load(cfg *recipes.Config, dir string, sets Sets) (*Stack, error) {
	if err := CheckAdapterDir(dir); err != nil {
		return nil, err
	}
	if IsModelDir(dir) {
		return loadModelDir(cfg, dir, sets)
	}
	export := IsExport(dir)
	var st checkpoint.State
	if !export {
		var err error
		if st, err = checkpoint.Read(dir); err != nil {
			return nil, err
		}
	}
	c, err := Build(cfg, sets)
	if err != nil {
		return nil, err
	}
	if export {
		err = c.LoadExport(dir)
		if err != nil {
			err = fmt.Errorf("%w: %w", inputerr.ErrAdapter, err)
		}
	} else {
		err = c.LoadCheckpoint(dir, st)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// CheckAdapterDir refuses a directory that is neither a training checkpoint
// (it holds adapter.safetensors), a PEFT export (adapter_config.json) nor a
// model dir (config.json: a merged export).
func CheckAdapterDir(dir string) error {
	if IsExport(dir) || IsModelDir(dir) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.AdapterFile)); err != nil {
		return fmt.Errorf("%w: %s holds neither %s (a checkpoint), %s (a PEFT export) nor config.json (a merged export)",
			inputerr.ErrAdapter, dir, checkpoint.AdapterFile, PEFTConfigFile)
	}
	return nil
}

// IsModelDir reports whether dir is a model directory to run as it is: it
// holds config.json and no adapters (a merged export, or a base model).
func IsModelDir(dir string) bool {
	if IsExport(dir) {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.AdapterFile)); err == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "config.json"))
	return err == nil
}

// loadModelDir builds cfg's stack on the model of dir (a merged export: its
// deltas are folded into the weights, its trained projectors in
// mose_projectors.safetensors) instead of cfg's model.path. The adapters
// are built as a fresh run builds them, with B = 0, so they add nothing:
// the logits are the stored model's. The stored weights run as stored:
// model.quantize does not apply to them (a merged export of a quantized run
// holds the dequantized base with the deltas folded in).
func loadModelDir(cfg *recipes.Config, dir string, sets Sets) (*Stack, error) {
	mc := *cfg
	mc.Model.Path, mc.Model.Create, mc.Model.Quantize = dir, "", "none"
	return Build(&mc, sets)
}

// LoadCheckpoint copies the adapters (and trained projectors) of checkpoint
// dir into c and sets the modality weights of its state st (validated:
// checkpoint.Read or checkpoint.Open); they are never defaulted.
func (c *Stack) LoadCheckpoint(dir string, st checkpoint.State) error {
	if err := c.Set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1]); err != nil {
		return fmt.Errorf("%w: %s: modality_weights: %w", checkpoint.ErrCheckpoint, filepath.Join(dir, checkpoint.StateFile), err)
	}
	if err := c.LoadAdapters(filepath.Join(dir, checkpoint.AdapterFile)); err != nil {
		return fmt.Errorf("%w: the checkpoint's adapters do not fit this recipe's model and adapters: %w", inputerr.ErrAdapter, err)
	}
	return nil
}

// LoadAdapters copies an adapter file's tensors into the experts, gates and
// (when trained) projectors.
func (c *Stack) LoadAdapters(path string) error {
	return checkpoint.WithFile(path, c.Dev, func(s *torch.Scope, read checkpoint.ReaderFunc) error {
		if err := c.Set.Import(s, read); err != nil {
			return err
		}
		var projectors []checkpoint.Named
		for _, p := range c.Params {
			if IsProjector(p.Name) {
				projectors = append(projectors, checkpoint.Named{Name: p.Name, T: p.T})
			}
		}
		return checkpoint.CopyInto(s, projectors, read)
	})
}

// LoadPEFT copies a PEFT LoRA adapter (keys "base_model.model.<target>.lora_A.weight")
// into a plain LoRA set.
func (c *Stack) LoadPEFT(path string) error {
	return checkpoint.WithFile(path, c.Dev, func(s *torch.Scope, read checkpoint.ReaderFunc) error {
		return c.Set.Import(s, func(s *torch.Scope, name string) *torch.Tensor { return read(s, PEFTPrefix+c.PEFTName(name)) })
	})
}
