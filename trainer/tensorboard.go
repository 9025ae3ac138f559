package trainer

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/internal/tfevents"
	"github.com/mose-llm/mose/plots"
)

// tensorBoardDir is where a run's TensorBoard event files go, under run.output_dir.
const tensorBoardDir = "tensorboard"

// openTensorBoard prepares <out>/tensorboard for a run continuing after step
// from: existing event files are cut back to steps <= from, as metrics.jsonl
// is (also when run.tensorboard is off, so no stale curve is left behind),
// and when enabled a new event file is started. The writer belongs to the
// run's metricsLog: metrics.jsonl and the event files are written by the same
// code at the same moments, so under data parallel training, where only rank
// 0 opens the metrics log, only rank 0 writes events. A nil writer (disabled)
// writes nothing.
func openTensorBoard(out string, enabled bool, from int) (*tfevents.Writer, error) {
	dir := filepath.Join(out, tensorBoardDir)
	if !enabled {
		if err := tfevents.Cut(dir, int64(from)); err != nil {
			return nil, fmt.Errorf("tensorboard: %w", err)
		}
		return nil, nil
	}
	w, err := tfevents.Create(dir, int64(from), time.Now())
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	return w, nil
}

// writeTensorBoard appends rec's scalars to the event file, if there is one.
func (l *metricsLog) writeTensorBoard(rec plots.Record) error {
	if l.tb == nil {
		return nil
	}
	if err := l.tb.Write(int64(rec.Step), time.Now(), tensorBoardValues(rec)); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

// tensorBoardValues maps one metrics.jsonl record to TensorBoard scalars,
// one tag per number of the JSON line (README: "Watching a run"):
//
//	train/<field>                   emotion_loss, lb_loss, z_loss, total_loss, lr, grad_norm,
//	                                tokens_per_s, step_time_s, skipped, epoch
//	modality_weights/<modality>     visual, nonvisual
//	router/<group>/<stat>           entropy, z, balance, tokens
//	router/<group>/load/<k>         f_k of expert k
//	router/<group>/prob/<k>         P_k of expert k
//	eval/<subset>/<metric>          accuracy, uar, weighted_f1, macro_f1, loss, conflict_gap
//
// An eval record gives its eval/ tags only (its epoch and modality weights
// repeat the training record's). Fields the JSON leaves out (omitempty) are
// left out here too. Values are float32, TensorBoard's simple_value.
func tensorBoardValues(rec plots.Record) []tfevents.Value {
	var vs []tfevents.Value
	add := func(tag string, v float64) { vs = append(vs, tfevents.Value{Tag: tag, Scalar: float32(v)}) }
	addEval := func() {
		for _, k := range slices.Sorted(maps.Keys(rec.Eval)) {
			add(evalTag(k), rec.Eval[k])
		}
	}
	if rec.IsEval() {
		addEval()
		return vs
	}
	add("train/emotion_loss", rec.EmotionLoss)
	add("train/lb_loss", rec.LBLoss)
	add("train/z_loss", rec.ZLoss)
	add("train/total_loss", rec.TotalLoss)
	add("train/lr", rec.LR)
	add("train/grad_norm", rec.GradNorm)
	add("train/tokens_per_s", rec.TokensPerS)
	if rec.StepTime != 0 {
		add("train/step_time_s", rec.StepTime)
	}
	add("train/skipped", float64(rec.Skipped))
	add("train/epoch", rec.Epoch)
	if w := rec.ModalityWeights; w != nil {
		add("modality_weights/visual", w.Visual)
		add("modality_weights/nonvisual", w.NonVisual)
	}
	for _, g := range slices.Sorted(maps.Keys(rec.Router)) {
		s := rec.Router[g]
		p := "router/" + g + "/"
		add(p+"entropy", s.Entropy)
		add(p+"z", s.Z)
		add(p+"balance", s.Balance)
		if s.Tokens != 0 {
			add(p+"tokens", s.Tokens)
		}
		for k, f := range s.Load {
			add(p+"load/"+strconv.Itoa(k), f)
		}
		for k, pr := range s.Prob {
			add(p+"prob/"+strconv.Itoa(k), pr)
		}
	}
	addEval() // a training record carrying eval metrics (not written today)
	return vs
}

// evalTag maps a metrics.jsonl eval key "<subset>.<metric>" to
// eval/<subset>/<metric>.
func evalTag(key string) string {
	sub, metric, ok := strings.Cut(key, ".")
	if !ok {
		return "eval/" + key
	}
	return "eval/" + sub + "/" + metric
}
