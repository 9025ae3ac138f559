package trainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/tfevents"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/plots"
)

// metricsLog appends records to metrics.jsonl.
type metricsLog struct {
	f   *os.File
	tb  *tfevents.Writer // TensorBoard events of the same records (tensorboard.go); nil when off
	acc interval
}

// interval sums the steps since the last record.
type interval struct {
	steps, skipped      int
	emotion, balance, z float64
	tokens              int
	dur, comm           time.Duration
}

// state is the interval as saved in a checkpoint.
func (a interval) state() checkpoint.Interval {
	return checkpoint.Interval{Steps: a.steps, Skipped: a.skipped, Emotion: a.emotion, Balance: a.balance, Z: a.z,
		Tokens: a.tokens, DurNS: int64(a.dur)}
}

// intervalOf is the interval a checkpoint saved.
func intervalOf(st checkpoint.Interval) interval {
	return interval{steps: st.Steps, skipped: st.Skipped, emotion: st.Emotion, balance: st.Balance, z: st.Z,
		tokens: st.Tokens, dur: time.Duration(st.DurNS)}
}

// openMetricsLog opens metrics.jsonl for appending. On resume (from > 0)
// lines past step from are dropped first, so the file reads as one run, and
// so is an eval line at step from when lastEval < from (that evaluation was
// not counted in the checkpoint and runs again).
func openMetricsLog(path string, from, lastEval int) (*metricsLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := truncateRecords(path, from, lastEval); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsLog{f: f}, nil
}

// truncateRecords keeps the records of steps ≤ from (and nothing when from
// is 0), dropping a torn last line and eval records at from past lastEval.
func truncateRecords(path string, from, lastEval int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rec struct {
			Step int
			Kind string
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Step <= from && from > 0 &&
			!(rec.Kind == string(plots.KindEval) && rec.Step == from && lastEval < from) {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	return fsutil.WriteBytes(path, keep.Bytes())
}

func (l *metricsLog) write(rec plots.Record) error {
	if l.f == nil { // a data-parallel rank other than 0: nothing is written
		return nil
	}
	rec.Time = time.Now().UTC().Format(time.RFC3339)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = l.f.Write(append(b, '\n'))
	return errors.Join(err, l.writeTensorBoard(rec))
}

// Close closes the file.
func (l *metricsLog) Close() error {
	if l.f == nil {
		return nil
	}
	return errors.Join(l.f.Close(), l.tb.Close())
}

// record accumulates a step and, when logNow, writes the interval's record,
// logs it and updates the progress bar.
func (r *run) record(st stepStats, lr float64, dur time.Duration, logNow bool) {
	a := &r.mlog.acc
	a.steps++
	a.dur += dur
	a.comm += st.comm
	a.tokens += st.tokens
	if st.finite {
		a.emotion += st.emotion
		a.balance += st.balance
		a.z += st.z
	} else {
		a.skipped++
	}
	r.progress(st, lr, dur)
	if !logNow {
		return
	}
	n := float64(max(a.steps-a.skipped, 1))
	rec := plots.Record{
		Kind: plots.KindTrain, Step: r.st.Step, Epoch: r.epoch(), EmotionLoss: a.emotion / n, LBLoss: a.balance / n,
		ZLoss: a.z / n, LR: lr, GradNorm: st.gradNorm, TokensPerS: float64(a.tokens) / a.dur.Seconds(),
		StepTime: a.dur.Seconds() / float64(a.steps), CommTime: a.comm.Seconds() / float64(a.steps),
		Skipped: r.st.SkippedSteps, ModalityWeights: r.modalityWeights(),
	}
	if mem, ok := torch.CUDAMemory(r.c.Dev); ok {
		rec.GPUPeakMiB = float64(mem.PeakAllocated) / (1 << 20)
	}
	cfg := r.c.Cfg.Loss
	rec.TotalLoss = rec.EmotionLoss + cfg.LoadBalance*rec.LBLoss + cfg.ZLoss*rec.ZLoss
	rec.Router = routerRecords(st.router)
	if err := r.mlog.write(rec); err != nil {
		r.log.WithError(err).Warn("metrics.jsonl")
	}
	r.mlog.acc = interval{}
	if r.opt.Progress == nil {
		f := logrus.Fields{"step": rec.Step, "emotion_loss": round(rec.EmotionLoss), "lr": rec.LR,
			"grad_norm": round(rec.GradNorm), "tokens_per_s": round(rec.TokensPerS)}
		if len(rec.Router) > 0 {
			f["lb_loss"], f["z_loss"] = round(rec.LBLoss), round(rec.ZLoss)
		}
		if r.c.Cfg.Adapters.ModalityWeights != gating.WeightsStatic {
			f["w_visual"], f["w_nonvisual"] = round(r.st.ModalityWeights[0]), round(r.st.ModalityWeights[1])
		}
		r.log.WithFields(f).Info("train")
	}
}

func round(x float64) float64 { return float64(int64(x*1e4+0.5*sign(x))) / 1e4 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func routerRecords(stats []gating.GroupStats) map[string]plots.RouterStats {
	if len(stats) == 0 {
		return nil
	}
	out := map[string]plots.RouterStats{}
	for _, g := range stats {
		if g.Target != "" {
			continue // per-target entries are not logged
		}
		out[g.Group] = plots.RouterStats{Load: g.Load, Prob: g.Prob, Entropy: g.Entropy, Z: g.Z, Balance: g.Balance, Tokens: g.Tokens}
	}
	return out
}

// modalityWeights are the current weights for a record (nil for LoRA, which
// has no routed groups).
func (r *run) modalityWeights() *plots.ModalityWeights {
	if r.c.Cfg.Adapters.Method == "lora" {
		return nil
	}
	return &plots.ModalityWeights{Visual: r.st.ModalityWeights[0], NonVisual: r.st.ModalityWeights[1]}
}

// epoch is the fractional epoch of the next batch.
func (r *run) epoch() float64 {
	return float64(r.st.Sampler.Epoch) + float64(r.st.Sampler.Cursor)/float64(max(r.perEp, 1))
}

// logStart reports what is about to run.
func (r *run) logStart(total int) {
	c := r.c
	var n int64
	for _, p := range c.Params {
		n += p.T.Numel()
	}
	r.log.WithFields(logrus.Fields{
		"run": c.Cfg.Run.Name, "method": c.Cfg.Adapters.Method, "trainable": n, "targets": len(c.Set.Mixtures),
		"steps": total, "from_step": r.st.Step, "train_samples": c.Train.Len(), "device": c.Dev.String(),
		"output_dir": r.out,
	}).Info("training")
}

// Progress shows a run's progress on a terminal as one line, redrawn in
// place. Its implementation keeps log lines from colliding with it (it
// clears the line before a log line and redraws it after).
type Progress interface {
	Draw(line string) // replace the line
	Done()            // end it: the next output starts on a line of its own
}

// etaSmoothing is the weight of the newest step time in the step-time
// average the ETA is computed from (an exponential moving average: one slow
// or fast step moves the ETA by a tenth of its difference).
const etaSmoothing = 0.1

// progress redraws the progress line after a step (terminals only): steps
// done, the step's loss, learning rate and gradient norm, throughput, and
// the ETA from the smoothed step time.
func (r *run) progress(st stepStats, lr float64, dur time.Duration) {
	if r.opt.Progress == nil {
		return
	}
	if r.stepTime == 0 {
		r.stepTime = dur.Seconds()
	} else {
		r.stepTime += etaSmoothing * (dur.Seconds() - r.stepTime)
	}
	total, done := r.sched.Total, r.st.Step
	eta := time.Duration(float64(total-done) * r.stepTime * float64(time.Second))
	r.opt.Progress.Draw(fmt.Sprintf("%s %d/%d  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  ETA %s", bar(done, total), done, total,
		st.emotion, lr, st.gradNorm, float64(st.tokens)/dur.Seconds(), eta.Round(time.Second)))
}

// evalProgress redraws the progress line during an evaluation.
func (r *run) evalProgress(start time.Time) func(done, total int) {
	if r.opt.Progress == nil {
		return nil
	}
	return func(done, total int) {
		per := time.Since(start) / time.Duration(max(done, 1))
		r.opt.Progress.Draw(fmt.Sprintf("%s eval at step %d: batch %d/%d  ETA %s", bar(done, total), r.st.Step, done, total,
			(per * time.Duration(total-done)).Round(time.Second)))
	}
}

// bar is a 24-character progress bar at done of total.
func bar(done, total int) string {
	const width = 24
	filled := min(width*done/max(total, 1), width)
	return strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
}

func (r *run) endProgress() {
	if r.opt.Progress != nil {
		r.opt.Progress.Done()
	}
}

// writeEvalRecord appends an evaluation to metrics.jsonl.
func (r *run) writeEvalRecord(rep *metrics.Report) {
	ev := map[string]float64{}
	for _, sub := range rep.SubsetNames() {
		for _, m := range []string{"accuracy", "uar", "weighted_f1", "macro_f1", metrics.MetricLoss} {
			if v, ok := rep.Lookup(sub + "." + m); ok {
				ev[sub+"."+m] = v
			}
		}
	}
	if v, ok := rep.Lookup("all.conflict_gap"); ok {
		ev["all.conflict_gap"] = v
	}
	rec := plots.Record{Kind: plots.KindEval, Step: r.st.Step, Epoch: r.epoch(), Eval: ev, ModalityWeights: r.modalityWeights()}
	if err := r.mlog.write(rec); err != nil {
		r.log.WithError(err).Warn("metrics.jsonl")
	}
}
