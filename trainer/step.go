package trainer

import (
	"math"
	"time"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
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
	lossParts := make([]*torch.Tensor, 0, 4*len(batches))
	accum := float64(len(batches))
	var (
		vals []float64
		err  error
	)
	for i, b := range batches {
		if c.Cfg.Train.ActivationCheckpointing { // recompute.go
			parts, err := r.checkpointedMicro(s, b, step, i, answerTokens, accum, wantRouter && i == len(batches)-1, &st)
			if err != nil {
				return st, err
			}
			lossParts = append(lossParts, parts...)
			continue
		}
		parts, err := r.plainMicro(s, b, step, i, answerTokens, accum, wantRouter && i == len(batches)-1, &st)
		if err != nil {
			return st, err
		}
		lossParts = append(lossParts, parts...)
	}
	if c.Group == nil {
		if c.Weights.NeedsNorms() {
			if st.visualNorm, st.audioNorm, err = c.Set.Norms(s); err != nil {
				return st, err
			}
		}
		// One read for the step's loss numbers.
		if vals, err = s.Stack(lossParts, 0).Float64s(); err != nil {
			return st, err
		}
	} else {
		// One all-reduce for the gradients, the loss shares and the norm sums.
		norms := c.Set.NormSums(s)
		if norms == nil {
			norms = s.Zeros([]int64{4}, torch.Float32, c.Dev)
		}
		t0 := time.Now()
		if vals, err = reduceGrads(c, s, s.Cat([]*torch.Tensor{s.Stack(lossParts, 0), norms}, 0)); err != nil {
			return st, err
		}
		st.comm += time.Since(t0)
		n := len(vals) - 4
		if c.Weights.NeedsNorms() {
			if st.visualNorm, st.audioNorm, err = c.Set.NormMeans(vals[n:]); err != nil {
				return st, err
			}
		}
		vals = vals[:n]
	}
	st.finite = true
	for i := 0; i < len(vals); i += 4 {
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

// plainMicro runs one micro-batch's forward and backward on the full graph,
// in a scope of its own freed at its end (so the step holds one micro-batch's
// activations, not grad_accum of them). It returns, owned by s, the detached
// total, emotion, load-balancing and z losses; it sets st.router to the
// pass's router telemetry when wantRouter and adds collective time to st.comm.
func (r *run) plainMicro(s *torch.Scope, b *data.Batch, step, micro, answerTokens int, accum float64, wantRouter bool, st *stepStats) ([]*torch.Tensor, error) {
	c := r.c
	seed := r.seed(step, micro)
	if err := torch.ManualSeed(seed); err != nil {
		return nil, err
	}
	ms := s.Child()
	defer ms.Close()
	c.Tracker.Reset()
	bt := stack.Tensors(ms, b, c.Dev)
	h := c.Model.ForwardEach(ms, bt.In, true, checkpoint.LayerSeeder(seed)) // (B,T,D)
	logits := c.Model.Logits(ms, h, bt.Pos)                                 // (N,V)
	ce := ms.CrossEntropy(logits, bt.Targets, -100, torch.ReduceSum)        // ()
	c.Set.KeepNorms(s)                                                      // read by forwardBackward after the last micro-batch
	if c.Group != nil {
		sums := c.Tracker.Sums(ms) // (R,W)
		if err := c.ReduceSums(ms, sums, &st.comm); err != nil {
			return nil, err
		}
		c.Tracker.SetGlobal(sums, 0)
	}
	lb, z := c.Tracker.Losses(ms, c.Dev)
	emotion := ms.DivScalar(ce, float64(answerTokens))
	aux := ms.DivScalar(ms.Add(ms.MulScalar(lb, c.Cfg.Loss.LoadBalance), ms.MulScalar(z, c.Cfg.Loss.ZLoss)), accum)
	loss := ms.Add(emotion, aux)
	if r.opt.NonFiniteAt != nil && r.opt.NonFiniteAt(step) {
		loss = ms.MulScalar(loss, math.NaN()) // test-only fault injection
	}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	if err := loss.Backward(); err != nil {
		return nil, err
	}
	if wantRouter {
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
