package trainer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/memest"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Options are a run's settings that are not part of the recipe.
type Options struct {
	// Resume is "" (fresh run), "auto" (the newest complete checkpoint of the
	// run, or fresh if none) or a checkpoint directory.
	Resume string
	// AllowRecipeChange resumes even when the recipe changed in a way that
	// breaks exact resume.
	AllowRecipeChange bool
	Log               logrus.FieldLogger // default: logrus's standard logger
	Progress          Progress           // a terminal's progress line, or nil
	Version           string             // recorded in checkpoints
	// NonFiniteAt makes the loss of the given steps NaN (fault injection for
	// tests of the non-finite guard).
	NonFiniteAt func(step int) bool
	// Command is the command line that started the run (os.Args), for the
	// resume hint an interrupted run prints; nil: a generic hint.
	Command []string
	// OnStep is called on the tensor thread after every optimizer step, with
	// the number of steps done (for tests and monitoring).
	OnStep func(step int)
	// Group makes the run data-parallel: this process is one of
	// Group.World() ranks, each training on its slice of every global batch
	// of World × train.batch_size samples (see docs/distributed.md). Rank 0
	// writes the run's files. Nil: a single process.
	Group stack.Collective
}

// Result is what a run did.
type Result struct {
	Steps       int             // optimizer steps done (skipped ones included)
	Skipped     int             // steps skipped for non-finite loss or gradients
	Checkpoint  string          // the last checkpoint written
	Interrupted bool            // stopped by ctx (a signal) after checkpointing
	Eval        *metrics.Report // the last evaluation, if any
	OutputDir   string
}

// run is the state of a training run on the tensor thread.
type run struct {
	c      *stack.Stack
	opt    Options
	log    logrus.FieldLogger
	optim  *AdamW
	sched  Schedule
	st     checkpoint.State
	recipe []byte
	out    string // run.output_dir
	perEp  int    // sampler batches per epoch
	mlog   *metricsLog
	lastCk string           // the last checkpoint written or resumed from
	lastSt checkpoint.State // its state, as written
	// stepTime is the smoothed seconds per step of the progress line's ETA.
	stepTime float64
}

// Run trains cfg's adapters. It prepares missing demo files (model.create,
// data.synth), builds everything on a dedicated OS-locked thread, trains,
// evaluates and checkpoints, and returns when max steps are done, early
// stopping triggers, or ctx is cancelled (after finishing the current step
// and writing a checkpoint: Result.Interrupted, error ErrInterrupted).
func Run(ctx context.Context, cfg *recipes.Config, opt Options) (*Result, error) {
	log := opt.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	world, lead := 1, true
	if g := opt.Group; g != nil {
		world, lead = g.World(), g.Rank() == 0
	}
	if w := cfg.Run.WorldSize; w != 0 && w != world {
		return nil, fmt.Errorf("%w: run.world_size is %d but this run has %d processes (set it to 0 to take the launch's)", recipes.ErrRecipe, w, world)
	}
	cfg.Run.WorldSize = world // recorded in the saved recipe
	if lead {
		if created, err := stack.EnsureModel(cfg.Model.Path, cfg.Model.Create, cfg.Model.CreateSeed); err != nil {
			return nil, err
		} else if created {
			log.WithFields(logrus.Fields{"dir": cfg.Model.Path, "model.create": cfg.Model.Create}).
				Warn("model.path did not exist: created a RANDOM model there and training on it (model.create), not a pretrained one")
		}
		created, err := stack.EnsureData(cfg.Data.Train, cfg.Data.Synth, cfg.Data.SynthSamples, cfg.Data.SynthSeed)
		if err != nil {
			return nil, err
		}
		if dir := stack.SynthDir(cfg.Data.Train); dir != "" {
			verb := "training on"
			if created {
				verb = "data.train did not exist: generated and training on"
			}
			if m := stack.OmniSynthMeta(dir); m != nil {
				log.WithFields(logrus.Fields{"dir": dir, "data.synth": cfg.Data.Synth, "media": m.Media}).Warn(verb + " a SYNTHETIC dataset (generated clips, see docs/models.md), not your data")
				if m.Media != omnisynth.MediaFFmpeg {
					log.WithFields(logrus.Fields{"dir": dir, "ffmpeg": m.FFmpeg}).
						Warn("SKIPPED: FFmpeg was not found, so the synthetic clips were drawn in Go and never went through FFmpeg decoding (run scripts/setup/ffmpeg.sh and regenerate the set to test that path)")
				}
			} else {
				log.WithFields(logrus.Fields{"dir": dir, "data.synth": cfg.Data.Synth}).Warn(verb + " a SYNTHETIC dataset (random features, see data/README.md), not your data")
			}
		}
	}
	if opt.Group != nil { // the others wait for model.create and data.synth
		if err := opt.Group.Barrier(); err != nil {
			return nil, fmt.Errorf("data-parallel: waiting for rank 0 to prepare the model and data: %w", err)
		}
	}
	if err := memest.Preflight(cfg, memest.PreflightTrain); err != nil { // before anything is written to run.output_dir
		return nil, err
	}
	recipe, err := cfg.YAML()
	if err != nil {
		return nil, err
	}
	// The run lock: taken now if its file exists, else once the run has
	// been validated and is about to write (so refused runs write nothing).
	var lock *checkpoint.RunLock
	if lead {
		if lock, err = checkpoint.Lock(cfg.Run.OutputDir, false); err != nil {
			return nil, err
		}
	}
	defer func() { lock.Close() }()
	ckRoot := filepath.Join(cfg.Run.OutputDir, "checkpoints")
	resume, err := checkpoint.Find(ckRoot, opt.Resume)
	if err != nil {
		return nil, err
	}
	if resume == "" && opt.Resume == "auto" {
		log.WithField("checkpoints", ckRoot).Warn("--resume auto: no checkpoint to resume: starting a new run")
	}
	if resume == "" && opt.Resume == "" {
		if steps, _ := checkpoint.List(ckRoot); len(steps) > 0 {
			return nil, fmt.Errorf("%w: %s already holds checkpoints; resume with --resume auto, or choose another run.output_dir", recipes.ErrRecipe, ckRoot)
		}
	}
	if resume != "" {
		if err := checkRecipe(resume, cfg, opt.AllowRecipeChange, log); err != nil {
			return nil, err
		}
	}
	var res *Result
	err = torch.Run(func() error {
		var err error
		res, lock, err = train(ctx, cfg, opt, log, resume, recipe, lock)
		return err
	})
	return res, err
}

// checkRecipe refuses to resume when the recipe changed in a way that breaks
// exactness.
func checkRecipe(ck string, cfg *recipes.Config, allow bool, log logrus.FieldLogger) error {
	old, err := savedRecipe(ck)
	if err != nil {
		return err
	}
	diff := recipes.ExactnessDiff(old, cfg)
	if st, err := checkpoint.Decode(ck); err == nil && len(diff) == 1 && diff[0] == "train.max_steps" &&
		old.Train.MaxSteps > 0 && st.Step >= old.Train.MaxSteps && cfg.Train.MaxSteps > old.Train.MaxSteps {
		// A finished run extended: no step of the old schedule is left to
		// reproduce, so nothing exact is lost.
		log.WithFields(logrus.Fields{"was": old.Train.MaxSteps, "now": cfg.Train.MaxSteps, "from_step": st.Step}).
			Warn("extending a finished run: its steps from here on follow the learning-rate schedule of the new train.max_steps")
		diff = nil
	}
	if len(diff) > 0 && !allow {
		return fmt.Errorf("%w: the recipe changed since %s in keys that break exact resume: %v (pass --allow-recipe-change to resume anyway)",
			checkpoint.ErrResume, ck, diff)
	}
	if len(diff) > 0 {
		log.WithFields(logrus.Fields{"changed": diff, "checkpoint": ck}).
			Warn("--allow-recipe-change: resuming with a recipe changed in keys that break exactness: the run is no longer the one an uninterrupted run would give")
	}
	if old.Run.Threads != cfg.Run.Threads {
		log.WithFields(logrus.Fields{"was": old.Run.Threads, "now": cfg.Run.Threads}).
			Warn("run.threads changed: results stay close but are not bit-exact (libtorch's reductions depend on the thread count)")
	}
	return nil
}

// train is Run on the tensor thread: build, restore, take the run lock
// (held: already taken by Run, or nil), open the run directory, loop. It
// returns the lock it holds, for Run to release.
func train(ctx context.Context, cfg *recipes.Config, opt Options, log logrus.FieldLogger, resume string, recipe []byte,
	held *checkpoint.RunLock) (res *Result, lock *checkpoint.RunLock, err error) {
	lock = held
	if cfg.Run.Threads > 0 {
		if err := torch.SetThreads(cfg.Run.Threads); err != nil {
			return nil, lock, err
		}
	}
	c, err := stack.Build(cfg, stack.AllData)
	if err != nil {
		return nil, lock, err
	}
	defer c.Close()
	c.Group = opt.Group
	t := cfg.Train
	optim, err := NewAdamW(c.Params, t.Betas[0], t.Betas[1], t.Eps, t.WeightDecay)
	if err != nil {
		return nil, lock, err
	}
	defer optim.Close()
	r := &run{c: c, opt: opt, log: log, optim: optim, recipe: recipe, out: cfg.Run.OutputDir}
	r.st = checkpoint.State{RNG: checkpoint.RNGState{Seed: cfg.Run.Seed, Scheme: checkpoint.RNGScheme}, ModalityWeights: [2]float64{1, 1},
		Sampler: data.SamplerState{Seed: uint64(cfg.Run.Seed)}, Lineage: newLineage()}
	if resume != "" {
		if err := r.restore(resume); err != nil {
			return nil, lock, err
		}
	}
	if err := r.checkData(resume); err != nil {
		return nil, lock, err
	}
	loaderCtx, stopLoader := context.WithCancel(context.Background()) // not ctx: the current step finishes
	defer stopLoader()
	loader, total, err := r.startLoader(loaderCtx, resume)
	if err != nil {
		return nil, lock, err
	}
	defer loader.Close()
	if c.Group != nil {
		if err := defineGrads(c.Params); err != nil {
			return nil, lock, err
		}
		if err := r.checkInSync(); err != nil {
			return nil, lock, err
		}
	}
	if r.lead() {
		// Everything is validated: take the run lock (if not yet held), then write.
		if lock == nil {
			if lock, err = checkpoint.Lock(r.out, true); err != nil {
				return nil, nil, err
			}
		}
		if err := r.openRunDir(resume); err != nil {
			return nil, lock, err
		}
		defer r.mlog.Close()
	} else {
		r.mlog = &metricsLog{acc: intervalOf(r.st.Interval)} // rank 0 writes the files
	}
	r.logStart(total)
	res, err = r.loop(ctx, loader, total, resume)
	return res, lock, err
}

// checkData fingerprints data.train (the SHA-256 of its manifest) into the
// state, refusing a resume whose checkpoint trained on another manifest (a
// relabelled or resampled training set) unless --allow-recipe-change.
// Feature files are not hashed: their content is checked as it is read; a
// Qwen2.5-Omni manifest's media samples are (Dataset.ContentFingerprint).
func (r *run) checkData(resume string) error {
	train := r.c.Cfg.Data.Train
	fp, err := checkpoint.SHA256File(train)
	if err != nil {
		return fmt.Errorf("data.train: %w", err)
	}
	if r.c.Train != nil {
		fp = r.c.Train.ContentFingerprint(fp) // media samples: their files' bytes and settings too
	}
	if old := r.st.DataFingerprint; resume != "" && old != "" && old != fp {
		if !r.opt.AllowRecipeChange {
			return fmt.Errorf("%w: data.train %s changed since %s was written (SHA-256 %s, then %s): its samples, labels or order differ; "+
				"resume with the manifest the run trained on, or pass --allow-recipe-change", checkpoint.ErrResume, train, resume, fp[:12], old[:12])
		}
		r.log.WithField("data.train", train).Warn("--allow-recipe-change: data.train changed since the checkpoint; the run is no longer exact")
	}
	r.st.DataFingerprint = fp
	return nil
}

// savedRecipe reads the recipe checkpoint ck was written with (as saved: no
// MOSE_* environment applied).
func savedRecipe(ck string) (*recipes.Config, error) {
	path := filepath.Join(ck, checkpoint.RecipeFile)
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", checkpoint.ErrResume, err)
	}
	old, err := recipes.Parse(b, path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", checkpoint.ErrResume, err)
	}
	if old.Run.WorldSize == 0 { // saved before data parallelism: one process
		old.Run.WorldSize = 1
	}
	return old, nil
}

// regrid moves a resumed sampler position written with global batches of
// another size (train.batch_size × processes changed under
// --allow-recipe-change) to the batch that starts the same fraction of the
// epoch: the run then goes on from there with the new batches, whose order
// differs from the old ones' for the rest of the epoch (said in a warning).
func (r *run) regrid(resume string) error {
	st := r.st.Sampler
	if resume == "" || !r.opt.AllowRecipeChange || st.Cursor == 0 {
		return nil
	}
	old, err := savedRecipe(resume)
	if err != nil {
		return err
	}
	was, now := old.Train.BatchSize*old.Run.WorldSize, r.c.Cfg.Train.BatchSize*r.c.World()
	if was == now || was <= 0 {
		return nil
	}
	perEp := r.c.Train.Len() / now // the sampler drops the last partial batch
	cursor := min(st.Cursor*was/now, perEp)
	r.log.WithFields(logrus.Fields{"global_batch_was": was, "global_batch_now": now, "epoch": st.Epoch,
		"samples_done": st.Cursor * was, "batch": cursor, "of": perEp}).
		Warn("--allow-recipe-change: the global batch (train.batch_size × processes) changed mid-epoch: going on from the batch " +
			"that starts the same fraction of the epoch; the rest of this epoch's order differs from the checkpoint's (some samples may repeat or be skipped in it)")
	r.st.Sampler.Cursor = cursor
	return nil
}

// startLoader starts the training data at the state's sampler position, sets
// the LR schedule and returns the run's total steps. A resumed sampler must
// sit where step × grad_accum batches put it.
func (r *run) startLoader(ctx context.Context, resume string) (*data.Loader, int, error) {
	t := r.c.Cfg.Train
	if err := r.regrid(resume); err != nil {
		return nil, 0, err
	}
	loader, smp, err := r.c.NewTrainLoader(ctx, r.st.Sampler)
	if err != nil {
		return nil, 0, err
	}
	r.perEp = smp.BatchesPerEpoch()
	if resume != "" && !r.opt.AllowRecipeChange {
		if got, want := r.st.Sampler.Epoch*r.perEp+r.st.Sampler.Cursor, r.st.Step*t.GradAccum; got != want {
			loader.Close()
			return nil, 0, fmt.Errorf("%w: %s: sampler at batch %d (epoch %d, cursor %d of %d) after %d steps of %d micro-batches, want batch %d",
				checkpoint.ErrCheckpoint, filepath.Join(resume, checkpoint.StateFile), got, r.st.Sampler.Epoch, r.st.Sampler.Cursor, r.perEp, r.st.Step, t.GradAccum, want)
		}
	}
	total := t.MaxSteps
	if total == 0 {
		total = t.Epochs * ((r.perEp + t.GradAccum - 1) / t.GradAccum)
	}
	r.sched = Schedule{Kind: t.Schedule, LR: t.LR, MinLR: t.MinLR, Warmup: t.WarmupSteps, Total: total}
	return loader, total, nil
}

// openRunDir prepares the run directory for writing (rank 0, holding the
// lock): removes a killed run's temporary files, moves an abandoned branch's
// checkpoints aside on a resume from an older one, opens metrics.jsonl (cut
// back to the resumed step) and TensorBoard, and writes the resolved recipe.
// Close r.mlog when it returns nil.
func (r *run) openRunDir(resume string) error {
	cfg, log := r.c.Cfg, r.log
	ckRoot := filepath.Join(r.out, "checkpoints")
	checkpoint.CleanStale(r.out, ckRoot, cfg.Model.Path, log)
	if resume != "" {
		if _, err := checkpoint.AbandonNewer(ckRoot, r.st.Step, log); err != nil {
			return err
		}
		if filepath.Clean(filepath.Dir(resume)) == filepath.Clean(ckRoot) {
			if err := checkpoint.WriteLatest(ckRoot, filepath.Base(resume)); err != nil {
				return err
			}
		}
		log.WithFields(logrus.Fields{"checkpoint": resume, "step": r.st.Step}).Info("resumed")
	}
	var err error
	if r.mlog, err = openMetricsLog(filepath.Join(r.out, "metrics.jsonl"), r.st.Step, r.st.LastEval); err != nil {
		return err
	}
	r.mlog.acc = intervalOf(r.st.Interval)
	if r.mlog.tb, err = openTensorBoard(r.out, cfg.Run.TensorBoard, r.st.Step); err == nil {
		err = fsutil.WriteBytes(filepath.Join(r.out, checkpoint.RecipeFile), r.recipe) // the resolved recipe
	}
	if err != nil {
		r.mlog.Close()
		return err
	}
	return nil
}

// loop trains from the current state to total steps. A checkpoint due at a
// step is written before that step's evaluation, which then updates the
// checkpoint's state; a signal during an evaluation ends the run with the
// state saved (ErrInterrupted).
func (r *run) loop(ctx context.Context, loader *data.Loader, total int, resume string) (*Result, error) {
	c, t, log := r.c, r.c.Cfg.Train, r.log
	res := &Result{OutputDir: r.out}
	var report *metrics.Report // the last evaluation
	startStep, startSkipped := r.st.Step, r.st.SkippedSteps
	lastSave := r.st.Step
	r.lastCk = resume
	due := func(step int) bool { return t.EvalEvery > 0 && step%t.EvalEvery == 0 && c.Eval != nil && step < total }
	// The evaluation of the resumed step, if its checkpoint was written but
	// the evaluation was not counted (a kill or signal during it).
	pendingEval := resume != "" && due(r.st.Step) && r.st.LastEval < r.st.Step
	// Under data parallelism every rank must take the same steps and
	// evaluations: a signal is agreed on at the next step (r.step), and an
	// evaluation, which runs collectives, is never cut short.
	evalCtx := ctx
	if c.Group != nil {
		evalCtx = context.WithoutCancel(ctx)
	}
	for r.st.Step < total || pendingEval {
		if c.Group == nil && ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		if !pendingEval {
			stopped, err := r.step(ctx, loader)
			if stopped {
				res.Interrupted = true
				break
			}
			if err != nil {
				return nil, r.abort(err)
			}
			if !c.Dev.IsCUDA() {
				// The step's freed working set stays in the C heap as
				// fragments that later steps only partly reuse, so that
				// RSS creeps up step after step; hand them back (about
				// a page fault per reused page, against steps of seconds).
				torch.ReleaseMemory()
			}
			if r.opt.OnStep != nil {
				r.opt.OnStep(r.st.Step)
			}
			if t.SaveEvery > 0 && r.st.Step%t.SaveEvery == 0 {
				if _, err := r.save(); err != nil {
					return nil, err
				}
				lastSave = r.st.Step
			}
		}
		pendingEval = false
		if !due(r.st.Step) {
			continue
		}
		rep, stop, cut, err := r.evalAndTrack(ctx, evalCtx, false)
		if err != nil {
			return nil, err
		}
		if cut {
			res.Interrupted = true
			break
		}
		report = rep
		if stop {
			log.WithField("step", r.st.Step).Info("early stopping")
			break
		}
	}
	r.endProgress()
	if lastSave != r.st.Step || r.lastCk == "" {
		if _, err := r.save(); err != nil {
			return nil, err
		}
	}
	res.Steps, res.Skipped, res.Checkpoint = r.st.Step, r.st.SkippedSteps, r.lastCk
	end, err := r.finalEvaluation(ctx, evalCtx, res, report)
	if err != nil {
		return nil, err
	}
	return r.finish(ctx, res, end, startStep, startSkipped)
}

// runEnd is what the end of a run reports and draws.
type runEnd struct {
	report  *metrics.Report // the last evaluation this run made (Result.Eval), or nil
	shown   *metrics.Report // the final evaluation made before a resume (its eval.json), for the plots
	written bool            // eval.json holds report already
}

// finalEvaluation evaluates at the last step unless that was done: by the
// loop (report), or before a resume, whose eval.json must then be of this
// step (else the evaluation runs again). A signal that cuts it short sets
// res.Interrupted.
func (r *run) finalEvaluation(ctx, evalCtx context.Context, res *Result, report *metrics.Report) (runEnd, error) {
	end := runEnd{report: report}
	if res.Interrupted || r.c.Eval == nil || report != nil && r.st.LastEval == r.st.Step {
		return end, nil
	}
	if r.st.LastEval == r.st.Step {
		rep, done, err := r.finalReport()
		if err != nil {
			return end, err
		}
		if done {
			end.shown = rep
			r.log.WithField("step", r.st.Step).Info("the final evaluation was already done (eval.json); not repeating it")
			return end, nil
		}
	}
	rep, _, cut, err := r.evalAndTrack(ctx, evalCtx, true)
	if err != nil {
		return end, err
	}
	res.Interrupted = cut
	if !cut {
		end.report, end.written = rep, true
	}
	r.endProgress()
	return end, nil
}

// finish ends the run: on a signal (on any rank) with the resume hint and
// ErrInterrupted; else with eval.json and the plots written (rank 0), and a
// refusal of a run that skipped most of its steps.
func (r *run) finish(ctx context.Context, res *Result, end runEnd, startStep, startSkipped int) (*Result, error) {
	_, signalled, err := r.agreeStop(ctx)
	if err != nil {
		return nil, err
	}
	if res.Interrupted || signalled {
		r.log.WithFields(logrus.Fields{"step": r.st.Step, "checkpoint": r.lastCk}).
			Warn("interrupted; resume with: " + resumeCommand(r.opt.Command))
		res.Interrupted = true
		return res, ErrInterrupted
	}
	res.Eval = end.report
	if r.lead() {
		if end.report != nil && !end.written {
			if err := infer.WriteEval(r.out, end.report); err != nil {
				return nil, err
			}
		}
		shown := end.report
		if shown == nil {
			shown = end.shown
		}
		if err := r.plot(shown); err != nil {
			r.log.WithError(err).Warn("could not write plots")
		}
	}
	if done, skipped := r.st.Step-startStep, r.st.SkippedSteps-startSkipped; done > 0 && 2*skipped > done {
		return res, fmt.Errorf("%w: %d of the %d steps of this run were skipped: it did not make progress (the last good state is saved in %s)",
			ErrNonFinite, skipped, done, r.lastCk)
	}
	if r.c.Group == nil && ctx.Err() != nil {
		return res, ErrInterrupted
	}
	return res, nil
}

// finalReport reads the run's eval.json when it is the report of the
// current step. Rank 0 reads it and the ranks agree on whether it is there
// (done), so that all of them run the evaluation again, or none; rep is nil
// on the other ranks.
func (r *run) finalReport() (rep *metrics.Report, done bool, err error) {
	ok := 0.0
	if r.lead() {
		if got, err := infer.ReadEval(r.out); err == nil && got.Step == r.st.Step {
			rep, ok = got, 1
		}
	}
	g, err := r.c.Agree([]float64{ok})
	if err != nil {
		return nil, false, err
	}
	return rep, g[0] > 0, nil
}

// abort ends the run on a step's error: after too many non-finite steps in
// a row, with the last good state saved.
func (r *run) abort(err error) error {
	if !errors.Is(err, ErrNonFinite) {
		return err
	}
	if _, serr := r.save(); serr != nil {
		return errors.Join(err, serr)
	}
	r.log.WithField("checkpoint", r.lastCk).Error("aborting: too many non-finite steps in a row; the last good state is saved")
	return err
}

// evalAndTrack evaluates at the current step and records the result in the
// best-metric bookkeeping and the last checkpoint's state. The final
// evaluation (final) writes eval.json first, so that a checkpoint never
// says an evaluation is done whose file is missing. stop: early stopping
// is due; cut: a signal cut the evaluation short (nothing recorded).
func (r *run) evalAndTrack(ctx, evalCtx context.Context, final bool) (rep *metrics.Report, stop, cut bool, err error) {
	rep, err = r.evaluate(evalCtx)
	releaseMemory()
	if err != nil && ctx.Err() != nil {
		return nil, false, true, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	stop = r.track(rep)
	if final && r.lead() {
		if err := infer.WriteEval(r.out, rep); err != nil {
			return nil, false, false, err
		}
	}
	if err := r.saveState(); err != nil {
		return nil, false, false, err
	}
	return rep, stop, false, nil
}

// agreeStop all-reduces counts with this rank's stop flag (ctx is
// cancelled: a signal) appended, and returns the ranks' sums of counts and
// whether any rank was signalled. Under data parallelism every rank must
// call it at the same point; a single process gets its own counts back.
func (r *run) agreeStop(ctx context.Context, counts ...float64) (sums []float64, stop bool, err error) {
	flag := 0.0
	if ctx.Err() != nil {
		flag = 1
	}
	g, err := r.c.Agree(append(counts, flag))
	if err != nil {
		return nil, false, err
	}
	return g[:len(counts)], g[len(counts)] > 0, nil
}

// releaseMemory returns an evaluation's freed working set to the OS: the
// Go heap's (its batches) and the C allocator's (libtorch's tensors), which
// would otherwise keep RSS stepped up after each evaluation.
func releaseMemory() {
	debug.FreeOSMemory()
	torch.ReleaseMemory()
}

// newLineage is a fresh run history id.
func newLineage() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// track updates the best metric and reports whether to stop early.
func (r *run) track(rep *metrics.Report) bool {
	r.st.LastEval = r.st.Step
	key := r.c.Cfg.Train.KeepBestBy
	if key == "" {
		return false
	}
	v, ok := rep.Lookup(key)
	if !ok {
		return false
	}
	better := r.st.BestMetric == nil || v > *r.st.BestMetric
	if key == "all.conflict_gap" { // closer to zero is better
		better = r.st.BestMetric == nil || abs(v) < abs(*r.st.BestMetric)
	}
	if better {
		r.st.BestMetric, r.st.BestStep, r.st.BestKey, r.st.EvalsNoImprove = &v, r.st.Step, key, 0
		return false
	}
	r.st.EvalsNoImprove++
	es := r.c.Cfg.Train.EarlyStopping
	return es > 0 && r.st.EvalsNoImprove >= es
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// resumeCommand is the command that resumes an interrupted run: the one that
// started it, every flag kept, with --resume auto instead of any --resume.
func resumeCommand(args []string) string {
	if len(args) == 0 {
		return "mose train --recipe <recipe> --resume auto (with the --set flags of the interrupted run)"
	}
	out := []string{"mose"}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--resume" {
			i++ // and its value
			continue
		}
		if strings.HasPrefix(a, "--resume=") {
			continue
		}
		out = append(out, shellQuote(a))
	}
	return strings.Join(append(out, "--resume", "auto"), " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
