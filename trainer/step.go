package trainer

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
	"github.com/sirupsen/logrus"
)

// stepStats are the host-side numbers of one optimizer step.
type stepStats struct {
	emotion, balance, z   float64 // emotion: CE per answer token; router losses averaged over micro-batches
	gradNorm              float64
	visualNorm, audioNorm float64 // mean expert output norms (contribution weights)
	finite                bool
	tokens                int           // non-pad tokens processed
	comm                  time.Duration // in data-parallel collectives
	answerTokens          int
	visual, nonVisual     int // token counts, for the modality weights
	router                []gating.GroupStats
}

// lossParts are the numbers each micro-batch reports, in this order: its
// total loss, emotion loss, load-balancing loss and z-loss.
const lossParts = 4

// micro is one micro-batch of an optimizer step, with what its forward and
// backward need to know of the step.
type micro struct {
	b            *data.Batch
	step, index  int     // the optimizer step, and this micro-batch's index in it
	answerTokens int     // the step's answer tokens on all ranks: the emotion loss's divisor
	accum        float64 // the step's micro-batches: the router losses' divisor
	wantRouter   bool    // read the router telemetry (the step's last micro-batch, when it logs)
}

// forwardBackward runs the micro-batches of one optimizer step, accumulating
// gradients. The emotion loss of a micro-batch is its summed answer-token
// cross-entropy divided by answerTokens, the answer tokens of the whole step
// (on every rank), so the accumulated gradient is that of the step's mean
// token loss whatever the split; the router losses are averaged over
// micro-batches. Under data parallelism each micro-batch's router losses
// are normalised by the router sums of all ranks (one small all-reduce per
// micro-batch), and the gradients, the loss shares and the norm sums are
// summed across ranks in one all-reduce: every rank ends with the gradient
// of one process that ran all ranks' samples. The caller fills st's counts.
func (r *run) forwardBackward(batches []*data.Batch, step int, wantRouter bool, answerTokens int) (stepStats, error) {
	c := r.c
	var st stepStats
	s := torch.NewScope()
	defer s.Close()
	parts := make([]*torch.Tensor, 0, lossParts*len(batches))
	for i, b := range batches {
		mb := micro{b: b, step: step, index: i, answerTokens: answerTokens, accum: float64(len(batches)),
			wantRouter: wantRouter && i == len(batches)-1}
		run := r.plainMicro
		if c.Cfg.Train.ActivationCheckpointing {
			run = r.checkpointedMicro // recompute.go
		}
		p, err := run(s, mb, &st)
		if err != nil {
			return st, err
		}
		parts = append(parts, p...)
	}
	vals, err := r.sumLosses(s, parts, &st)
	if err != nil {
		return st, err
	}
	st.finite = true
	accum := float64(len(batches))
	for i := 0; i < len(vals); i += lossParts {
		st.finite = st.finite && !math.IsNaN(vals[i]) && !math.IsInf(vals[i], 0)
		st.emotion += vals[i+1]
		st.balance += vals[i+2] / accum
		st.z += vals[i+3] / accum
	}
	if st.gradNorm, err = gradNorm(c.Params); err != nil {
		return st, err
	}
	st.finite = st.finite && !math.IsNaN(st.gradNorm) && !math.IsInf(st.gradNorm, 0)
	return st, nil
}

// sumLosses reads the step's loss parts (lossParts per micro-batch) to the
// host and sets st's contribution norms. Under data parallelism it sums the
// gradients, the loss parts and the norm sums over the ranks in one
// all-reduce first.
func (r *run) sumLosses(s *torch.Scope, parts []*torch.Tensor, st *stepStats) ([]float64, error) {
	c := r.c
	var err error
	if c.Group == nil {
		if c.Weights.NeedsNorms() {
			if st.visualNorm, st.audioNorm, err = c.Set.Norms(s); err != nil {
				return nil, err
			}
		}
		return s.Stack(parts, 0).Float64s() // one read for the step's loss numbers
	}
	norms := c.Set.NormSums(s)
	if norms == nil {
		norms = s.Zeros([]int64{experts.NormSumsLen}, torch.Float32, c.Dev)
	}
	t0 := time.Now()
	vals, err := reduceGrads(c, s, s.Cat([]*torch.Tensor{s.Stack(parts, 0), norms}, 0))
	if err != nil {
		return nil, err
	}
	st.comm += time.Since(t0)
	n := len(vals) - experts.NormSumsLen
	if c.Weights.NeedsNorms() {
		if st.visualNorm, st.audioNorm, err = c.Set.NormMeans(vals[n:]); err != nil {
			return nil, err
		}
	}
	return vals[:n], nil
}

// plainMicro runs one micro-batch's forward and backward on the full graph,
// in a scope of its own freed at its end (so the step holds one micro-batch's
// activations, not grad_accum of them). It returns, owned by s, its
// lossParts, detached; it sets st.router to the pass's router telemetry when
// mb.wantRouter and adds collective time to st.comm.
func (r *run) plainMicro(s *torch.Scope, mb micro, st *stepStats) ([]*torch.Tensor, error) {
	c, b := r.c, mb.b
	seed := r.seed(mb.step, mb.index)
	if err := torch.ManualSeed(seed); err != nil {
		return nil, err
	}
	ms := s.Child()
	defer ms.Close()
	c.Tracker.Reset()
	var (
		bt stack.BatchTensors
		h  *torch.Tensor // (B,T,D)
	)
	if c.Omni != nil { // the thinker: its frozen towers, then its decoder
		var p *model.Pass
		var x *torch.Tensor
		if bt, p, x = c.OmniBegin(ms, b, true); p != nil {
			h = p.RunEach(ms, x, checkpoint.LayerSeeder(seed))
		}
	} else {
		bt = stack.Tensors(ms, b, c.Dev)
		h = c.Model.ForwardEach(ms, bt.In, true, checkpoint.LayerSeeder(seed))
	}
	logits := c.Model.Logits(ms, h, bt.Pos)                          // (N,V)
	ce := ms.CrossEntropy(logits, bt.Targets, -100, torch.ReduceSum) // ()
	c.Set.KeepNorms(s)                                               // read by forwardBackward after the last micro-batch
	if c.Group != nil {
		sums := c.Tracker.Sums(ms) // (R,W)
		if err := c.ReduceSums(ms, sums, &st.comm); err != nil {
			return nil, err
		}
		c.Tracker.SetGlobal(sums, 0)
	}
	lb, z := c.Tracker.Losses(ms, c.Dev)
	emotion := ms.DivScalar(ce, float64(mb.answerTokens))
	aux := ms.DivScalar(ms.Add(ms.MulScalar(lb, c.Cfg.Loss.LoadBalance), ms.MulScalar(z, c.Cfg.Loss.ZLoss)), mb.accum)
	loss := ms.Add(emotion, aux)
	if r.opt.NonFiniteAt != nil && r.opt.NonFiniteAt(mb.step) {
		loss = ms.MulScalar(loss, math.NaN()) // test-only fault injection
	}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	if err := loss.Backward(); err != nil {
		return nil, err
	}
	if mb.wantRouter {
		router, err := c.Tracker.Snapshot(ms)
		if err != nil {
			return nil, err
		}
		st.router = router
	}
	parts := []*torch.Tensor{ms.Detach(loss), ms.Detach(emotion), ms.Detach(lb), ms.Detach(z)}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	for _, t := range parts {
		s.Own(t)
	}
	c.Tracker.Reset() // its tensors were ms's
	return parts, nil
}

// step runs one optimizer step: fetch the micro-batches, forward and
// backward, then clip and update, or skip a non-finite step. Under data
// parallelism the ranks first agree on the step's counts and on whether any
// of them was signalled (ctx): then none takes the step (stopped).
func (r *run) step(ctx context.Context, loader *data.Loader) (stopped bool, err error) {
	c, t := r.c, r.c.Cfg.Train
	start := time.Now()
	batches := make([]*data.Batch, t.GradAccum)
	var st stepStats
	for i := range batches {
		b, err := loader.Next()
		if err != nil {
			return false, fmt.Errorf("data: %w", err)
		}
		batches[i] = b
		st.answerTokens += b.AnswerTokens
		st.tokens += b.B*b.T - b.PadTokens
		v, n := stack.TokenCounts(b)
		st.visual += v
		st.nonVisual += n
	}
	if c.Group != nil {
		t0 := time.Now()
		g, stop, err := r.agreeStop(ctx, float64(st.answerTokens), float64(st.tokens), float64(st.visual), float64(st.nonVisual))
		if err != nil {
			return false, err
		}
		st.comm = time.Since(t0)
		if stop {
			return true, nil
		}
		st.answerTokens, st.tokens, st.visual, st.nonVisual = int(g[0]), int(g[1]), int(g[2]), int(g[3])
	}
	step := r.st.Step
	lr := r.sched.At(step)
	logNow := t.LogEvery > 0 && (step+1)%t.LogEvery == 0
	fb, err := r.forwardBackward(batches, step, logNow, st.answerTokens)
	if err != nil {
		return false, err
	}
	fb.answerTokens, fb.tokens, fb.visual, fb.nonVisual = st.answerTokens, st.tokens, st.visual, st.nonVisual
	fb.comm += st.comm
	st = fb
	if st.finite {
		if err := clipGrads(c.Params, st.gradNorm, t.MaxGradNorm); err != nil {
			return false, err
		}
		applied, err := r.optim.Update(lr)
		if err != nil {
			return false, err
		}
		if !applied {
			st.finite = false
			r.log.WithField("step", step).Warn("the update would make weights non-finite: not applied")
		}
	}
	if st.finite {
		r.st.NonFiniteInARow = 0
	} else {
		r.st.NonFiniteInARow++
		r.st.SkippedSteps++
		r.log.WithFields(logrus.Fields{"step": step, "in_a_row": r.st.NonFiniteInARow}).Warn("non-finite loss, gradients or weights: step skipped")
	}
	if err := zeroGrads(c.Params); err != nil {
		return false, err
	}
	last := batches[len(batches)-1].State
	r.st.Step++
	r.st.Sampler, r.st.Epoch, r.st.LR = last, last.Epoch, lr
	r.st.OptimizerSteps = r.optim.Step
	r.st.TokensSeen += int64(st.tokens)
	if err := r.updateWeights(st); err != nil {
		return false, err
	}
	r.record(st, lr, time.Since(start), logNow)
	if !st.finite && r.st.NonFiniteInARow >= t.MaxNonFinite {
		return false, fmt.Errorf("%w: %d steps in a row (last at step %d)", ErrNonFinite, r.st.NonFiniteInARow, step)
	}
	return false, nil
}

// updateWeights moves the dynamic modality weights for the next step.
func (r *run) updateWeights(st stepStats) error {
	c := r.c
	c.Weights.Update(gating.Observation{VisualTokens: st.visual, NonVisualTokens: st.nonVisual,
		VisualNorm: st.visualNorm, AudioNorm: st.audioNorm})
	r.st.ModalityWeights = [2]float64{c.Weights.Visual, c.Weights.NonVisual}
	return c.Set.SetModalityWeights(c.Weights.Visual, c.Weights.NonVisual)
}
