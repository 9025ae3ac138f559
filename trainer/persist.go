package trainer

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// save writes a checkpoint of the current state and rotates old ones. It
// refuses to save non-finite weights or moments. Under data parallelism
// rank 0 writes it and every rank waits for it (a barrier), so that none
// exits before the checkpoint is complete.
func (r *run) save() (string, error) {
	if !r.lead() {
		r.lastCk, r.lastSt = filepath.Join(r.out, "checkpoints", stepDir(r.st.Step)), r.st
		return r.lastCk, r.barrier("checkpoint")
	}
	dir, err := r.write()
	if err != nil {
		return "", err
	}
	return dir, r.barrier("checkpoint")
}

// barrier waits for every rank (nothing without a group).
func (r *run) barrier(what string) error {
	if r.c.group == nil {
		return nil
	}
	if err := r.c.group.Barrier(); err != nil {
		return fmt.Errorf("data-parallel: waiting for every rank after the %s: %w", what, err)
	}
	return nil
}

// write is save on the process that writes.
func (r *run) write() (string, error) {
	if err := checkFinite(r.c.params); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	st := r.st
	st.RecipeHash = hashOf(r.recipe)
	st.Version = r.opt.Version
	st.Interval = r.mlog.acc.state()
	root := filepath.Join(r.out, "checkpoints")
	dir, written, err := writeCheckpoint(root, st, r.recipe, func(dir string) error {
		s := torch.NewScope()
		defer s.Close()
		var adapter, moments []named
		for _, n := range r.c.set.Export(s) {
			adapter = append(adapter, named{n.Name, n.T})
		}
		if r.c.cfg.Model.TrainProjectors {
			for _, p := range r.c.params {
				if isProjector(p.Name) {
					adapter = append(adapter, named{p.Name, s.Detach(p.T)})
				}
			}
		}
		names, ts := r.optim.Moments()
		for i := range names {
			moments = append(moments, named{names[i], ts[i]})
		}
		if err := finiteAll(s, moments); err != nil {
			return err
		}
		meta := map[string]string{"format": "pt", "mose_step": fmt.Sprint(st.Step)}
		if err := writeTensors(s, filepath.Join(dir, adapterFile), adapter, meta); err != nil {
			return err
		}
		return writeTensors(s, filepath.Join(dir, optimizerFile), moments, meta)
	})
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	r.lastCk, r.lastSt = dir, written
	if err := rotate(root, r.c.cfg.Train.KeepLast, r.st.BestStep, r.st.Lineage, r.log); err != nil {
		r.log.WithError(err).Warn("checkpoint rotation")
	}
	r.log.WithFields(logrus.Fields{"step": st.Step, "dir": dir}).Info("checkpoint written")
	return dir, nil
}

func isProjector(name string) bool { return len(name) > 11 && name[:11] == "projectors." }

type named struct {
	name string
	t    *torch.Tensor
}

// writeTensors writes float32 tensors to a safetensors file (atomically).
func writeTensors(s *torch.Scope, path string, ts []named, meta map[string]string) error {
	out := make([]safetensors.Tensor, 0, len(ts))
	for _, n := range ts {
		t := n.t
		if t.DType() != torch.Float32 || t.Device() != torch.CPU {
			t = s.ToDevice(s.To(t, torch.Float32), torch.CPU)
		}
		if err := s.Err(); err != nil {
			return err
		}
		b, err := t.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		out = append(out, safetensors.Tensor{Name: n.name, DType: safetensors.F32, Shape: t.Shape(), Data: b})
	}
	return safetensors.WriteFile(path, out, meta)
}

// saveState rewrites the trainer_state.json of the last checkpoint with the
// current evaluation bookkeeping (best metric, last_eval_step), when that
// checkpoint is of the current step: the evaluation at a step runs after its
// checkpoint is written. The tensor files and their checksums are unchanged;
// the state is replaced atomically.
func (r *run) saveState() error {
	if !r.lead() || r.lastCk == "" || r.lastSt.Step != r.st.Step {
		return nil
	}
	st := r.lastSt
	st.BestKey, st.BestMetric, st.BestStep = r.st.BestKey, r.st.BestMetric, r.st.BestStep
	st.EvalsNoImprove, st.LastEval = r.st.EvalsNoImprove, r.st.LastEval
	if err := writeState(r.lastCk, st); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r.lastSt = st
	return nil
}

// finiteAll refuses non-finite tensors.
func finiteAll(s *torch.Scope, ts []named) error {
	for _, n := range ts {
		ok, err := s.AllFinite(n.t)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s holds NaN or Inf values: refusing to save it", ErrNonFinite, n.name)
		}
	}
	return nil
}

// restore loads a checkpoint, after validating all of it (readState):
// adapter and projector weights, optimizer moments and the trainer state.
func (r *run) restore(dir string) error {
	st, err := readState(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResume, err)
	}
	if err := checkRNGScheme(dir, st, r.opt.AllowRecipeChange, r.log); err != nil {
		return err
	}
	if err := r.c.loadAdapters(filepath.Join(dir, adapterFile)); err != nil {
		return fmt.Errorf("%w: %w", ErrResume, err)
	}
	names, ts := r.optim.Moments()
	moments := make([]named, len(names))
	for i := range names {
		moments[i] = named{names[i], ts[i]}
	}
	if err := readFileInto(filepath.Join(dir, optimizerFile), r.c.dev, moments); err != nil {
		return fmt.Errorf("%w: %w", ErrResume, err)
	}
	r.optim.Step = st.OptimizerSteps
	r.st, r.lastSt = st, st
	r.c.weights.Visual, r.c.weights.NonVisual = st.ModalityWeights[0], st.ModalityWeights[1]
	return r.c.set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1])
}

// readerFunc reads a named tensor into a scope (nil with the error recorded).
type readerFunc func(s *torch.Scope, name string) *torch.Tensor

// withFile opens a safetensors file and calls fn with a reader of its
// tensors as float32 on dev, and a scope for them; errors name the file.
// Every tensor read must be finite, and every tensor of the file must be
// read.
func withFile(path string, dev torch.Device, fn func(s *torch.Scope, read readerFunc) error) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := ckpt.NewReader(f)
	s := torch.NewScope()
	defer s.Close()
	used := map[string]bool{}
	read := func(s *torch.Scope, name string) *torch.Tensor {
		used[name] = true
		t := rd.Read(s, name, torch.Float32, dev)
		if s.Err() == nil {
			if ok, err := s.AllFinite(t); err != nil {
				s.Fail(err)
			} else if !ok {
				s.Fail(fmt.Errorf("tensor %q holds NaN or Inf values", name))
			}
		}
		return t
	}
	if err := fn(s, read); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range f.Names() { // a tensor the model does not take is refused, not dropped
		if !used[name] {
			return fmt.Errorf("%s: tensor %q is not used by this recipe's adapters or trained projectors (adapters.*, model.train_projectors differ from the run that wrote it?)", path, name)
		}
	}
	return nil
}

// loadAdapters copies an adapter file's tensors into the experts, gates and
// (when trained) projectors.
func (c *components) loadAdapters(path string) error {
	return withFile(path, c.dev, func(s *torch.Scope, read readerFunc) error {
		if err := c.set.Import(s, read); err != nil {
			return err
		}
		var projectors []named
		for _, p := range c.params {
			if isProjector(p.Name) {
				projectors = append(projectors, named{p.Name, p.T})
			}
		}
		return copyInto(s, projectors, read)
	})
}

// loadPEFT copies a PEFT LoRA adapter (keys "base_model.model.<target>.lora_A.weight")
// into a plain LoRA set.
func (c *components) loadPEFT(path string) error {
	return withFile(path, c.dev, func(s *torch.Scope, read readerFunc) error {
		return c.set.Import(s, func(s *torch.Scope, name string) *torch.Tensor { return read(s, peftPrefix+name) })
	})
}

// readFileInto copies the named tensors of a safetensors file into dst.
func readFileInto(path string, dev torch.Device, dst []named) error {
	return withFile(path, dev, func(s *torch.Scope, read readerFunc) error { return copyInto(s, dst, read) })
}

// copyInto reads each named tensor and copies it into its destination,
// checking shapes, without autograd.
func copyInto(s *torch.Scope, dst []named, read readerFunc) error {
	return torch.NoGrad(func() error {
		for _, d := range dst {
			c := s.Child()
			src := read(c, d.name)
			err := c.Err()
			if err == nil && !slices.Equal(src.Shape(), d.t.Shape()) {
				err = fmt.Errorf("%s has shape %v, want %v", d.name, src.Shape(), d.t.Shape())
			}
			if err == nil {
				err = d.t.CopyFrom(src)
			}
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
