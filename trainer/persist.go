package trainer

import (
	"fmt"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// save writes a checkpoint of the current state and rotates old ones. It
// refuses to save non-finite weights or moments. Under data parallelism
// Rank 0 writes it and every rank waits for it (a barrier), so that none
// exits before the checkpoint is complete.
func (r *run) save() (string, error) {
	if !r.lead() {
		r.lastCk, r.lastSt = filepath.Join(r.out, "checkpoints", checkpoint.StepDir(r.st.Step)), r.st
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
	if r.c.Group == nil {
		return nil
	}
	if err := r.c.Group.Barrier(); err != nil {
		return fmt.Errorf("data-parallel: waiting for every rank after the %s: %w", what, err)
	}
	return nil
}

// write is save on the process that writes.
func (r *run) write() (string, error) {
	if err := stack.CheckFinite(r.c.Params); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	st := r.st
	st.RecipeHash = checkpoint.Hash(r.recipe)
	st.Version = r.opt.Version
	st.Interval = r.mlog.acc.state()
	root := filepath.Join(r.out, "checkpoints")
	dir, written, err := checkpoint.Write(root, st, r.recipe, func(dir string) error {
		s := torch.NewScope()
		defer s.Close()
		var adapter, moments []checkpoint.Named
		for _, n := range r.c.Set.Export(s) {
			adapter = append(adapter, checkpoint.Named{Name: n.Name, T: n.T})
		}
		if r.c.Cfg.Model.TrainProjectors {
			for _, p := range r.c.Params {
				if stack.IsProjector(p.Name) {
					adapter = append(adapter, checkpoint.Named{Name: p.Name, T: s.Detach(p.T)})
				}
			}
		}
		names, ts := r.optim.Moments()
		for i := range names {
			moments = append(moments, checkpoint.Named{Name: names[i], T: ts[i]})
		}
		if err := finiteAll(s, moments); err != nil {
			return err
		}
		meta := map[string]string{"format": "pt", "mose_step": fmt.Sprint(st.Step)}
		if err := checkpoint.WriteTensors(s, filepath.Join(dir, checkpoint.AdapterFile), adapter, meta); err != nil {
			return err
		}
		return checkpoint.WriteTensors(s, filepath.Join(dir, checkpoint.OptimizerFile), moments, meta)
	})
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	r.lastCk, r.lastSt = dir, written
	if err := checkpoint.Rotate(root, r.c.Cfg.Train.KeepLast, r.st.BestStep, r.st.Lineage, r.log); err != nil {
		r.log.WithError(err).Warn("checkpoint rotation")
	}
	r.log.WithFields(logrus.Fields{"step": st.Step, "dir": dir}).Info("checkpoint written")
	return dir, nil
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
	if err := checkpoint.WriteState(r.lastCk, st); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r.lastSt = st
	if st.BestKey != "" && st.BestStep == st.Step { // this checkpoint is the new best
		if err := checkpoint.WriteBest(filepath.Dir(r.lastCk), filepath.Base(r.lastCk)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return nil
}

// finiteAll refuses non-finite tensors (the optimizer moments a save
// writes).
func finiteAll(s *torch.Scope, ts []checkpoint.Named) error {
	name, err := checkpoint.NonFinite(s, ts)
	if err == nil && name != "" {
		err = fmt.Errorf("%w: %s holds NaN or Inf values: refusing to save it", ErrNonFinite, name)
	}
	return err
}

// restore loads a checkpoint, after validating all of it (checkpoint.Read):
// adapter and projector weights, optimizer moments and the trainer state.
func (r *run) restore(dir string) error {
	st, err := checkpoint.Read(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", checkpoint.ErrResume, err)
	}
	if err := checkpoint.CheckRNGScheme(dir, st, r.opt.AllowRecipeChange, r.log); err != nil {
		return err
	}
	if err := r.c.LoadAdapters(filepath.Join(dir, checkpoint.AdapterFile)); err != nil {
		return fmt.Errorf("%w: %w", checkpoint.ErrResume, err)
	}
	names, ts := r.optim.Moments()
	moments := make([]checkpoint.Named, len(names))
	for i := range names {
		moments[i] = checkpoint.Named{Name: names[i], T: ts[i]}
	}
	if err := checkpoint.ReadInto(filepath.Join(dir, checkpoint.OptimizerFile), r.c.Dev, moments); err != nil {
		return fmt.Errorf("%w: %w", checkpoint.ErrResume, err)
	}
	r.optim.Step = st.OptimizerSteps
	r.st, r.lastSt = st, st
	r.c.Weights.Visual, r.c.Weights.NonVisual = st.ModalityWeights[0], st.ModalityWeights[1]
	return r.c.Set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1])
}
