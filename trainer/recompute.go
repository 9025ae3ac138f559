package trainer

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// Activation checkpointing (train.activation_checkpointing): one micro-batch
// is a forward under no-grad that keeps only each decoder layer's input, the
// head's backward from the last layer's output, then, from the last layer
// down, each layer recomputed with grad from its saved input and
// backpropagated with the gradient of its output, handing its input's
// gradient to the layer below. The embedding (and the projectors, when
// trained) keep their graph through the pass and get the first layer's input
// gradient at the end.
//
// Why the gradients are the same bit for bit as without it:
//   - libtorch's generator is reseeded before every decoder layer in both
//     paths (checkpoint.SeedForLayer), so the recompute draws the dropout masks and gate
//     noise the forward drew;
//   - each layer's graph is the same ops on the same values, seeded at its
//     output with the gradient that the full graph would have accumulated
//     there (a leaf's .grad is the same sum the full graph's input buffer
//     makes, in the same order);
//   - the router losses of each layer are normalised by the whole pass's
//     counts (gating.Tracker.SetGlobal with the no-grad pass's sums), so the
//     layers' losses add up to the full pass's and each layer's gates get
//     the gradient they get in the full graph;
//   - the contribution-weight norms are taken from the no-grad pass, in
//     forward order (the recompute does not record them again).

// checkpointedMicro runs micro-batch mb with activation checkpointing,
// accumulating its gradients. It returns, detached in s, the micro-batch's
// lossParts (as plainMicro does); it sets st.router to the pass's router
// telemetry when mb.wantRouter, and adds the time spent in collectives to
// st.comm.
func (r *run) checkpointedMicro(s *torch.Scope, mb micro, st *stepStats) ([]*torch.Tensor, error) {
	c := r.c
	base := r.seed(mb.step, mb.index)
	if err := torch.ManualSeed(base); err != nil {
		return nil, err
	}
	ms := s.Child() // the micro-batch's tensors: freed when it is done
	defer ms.Close()
	var (
		bt stack.BatchTensors
		p  *model.Pass
		x0 *torch.Tensor // (B,T,D); its graph reaches trained projectors
	)
	if c.Omni != nil { // the thinker: its frozen towers (run once), then the decoder's pass
		bt, p, x0 = c.OmniBegin(ms, mb.b, true)
	} else {
		bt = stack.Tensors(ms, mb.b, c.Dev)
		p = c.Model.Begin(ms, bt.In, true)
		x0 = c.Model.Embed(ms, bt.In)
	}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	cp := &ckPass{r: r, s: s, ms: ms, p: p, mb: mb, base: base, plan: r.planLayers(p.Layers(), x0.RequiresGrad())}
	if err := cp.forward(x0, &st.comm); err != nil { // 1. no-grad forward, keeping each layer's input
		return nil, err
	}
	emotion, g, poisoned, err := cp.head(bt) // 2. the head's backward
	if err != nil {
		return nil, err
	}
	lbs, zs, g, err := cp.backward(g) // 3. each layer recomputed and backpropagated, last first
	if err != nil {
		return nil, err
	}
	// 4. The embedding's graph (trained projectors) gets the first layer's input gradient.
	if x0.RequiresGrad() && g != nil {
		if err := torch.BackwardWith([]*torch.Tensor{x0}, []*torch.Tensor{g}); err != nil {
			return nil, err
		}
	}

	// The pass's router losses: the layers' shares add up to it.
	lb, z := ms.Zeros(nil, torch.Float32, c.Dev), ms.Zeros(nil, torch.Float32, c.Dev)
	for j := len(lbs) - 1; j >= 0; j-- { // forward order
		lb, z = ms.Add(lb, lbs[j]), ms.Add(z, zs[j])
	}
	aux := ms.DivScalar(ms.Add(ms.MulScalar(lb, c.Cfg.Loss.LoadBalance), ms.MulScalar(z, c.Cfg.Loss.ZLoss)), mb.accum)
	loss := ms.Add(emotion, aux)
	if poisoned {
		loss = ms.MulScalar(loss, math.NaN())
	}
	parts := []*torch.Tensor{s.Detach(loss), emotion, s.Detach(lb), s.Detach(z)}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	if mb.wantRouter {
		st.router = gating.Merge(slices.Concat(cp.snaps...), c.Tracker.PerTarget)
	}
	return parts, nil
}

// ckPass is one micro-batch's activation-checkpointed pass.
type ckPass struct {
	r      *run
	s, ms  *torch.Scope // the step's scope (the results), the micro-batch's
	p      *model.Pass
	mb     micro
	base   int64 // the micro-batch's seed
	plan   layerPlan
	inputs []*torch.Tensor       // inputs[i]: layer i's input; inputs[L]: the last layer's output
	rowOff []int                 // first router-sums row of each layer
	sums   *torch.Tensor         // (R, W) the whole pass's router sums (all ranks'), nil without gates
	snaps  [][]gating.GroupStats // per layer router telemetry, when mb.wantRouter
}

// forward runs the decoder under no-grad from x0 (B,T,D): each layer in a
// scope of its own, keeping its output (the next layer's input), its rows of
// router sums, and the norm measurement; then it sums the router sums over
// the ranks (adding the time to comm).
func (cp *ckPass) forward(x0 *torch.Tensor, comm *time.Duration) error {
	c, ms, L := cp.r.c, cp.ms, cp.p.Layers()
	cp.inputs = make([]*torch.Tensor, L+1)
	cp.inputs[0] = ms.Detach(x0)
	cp.rowOff = make([]int, L)
	var (
		sumParts []*torch.Tensor
		rows     int
	)
	err := torch.NoGrad(func() error {
		for i := range L {
			ls := ms.Child()
			if err := torch.ManualSeed(checkpoint.SeedForLayer(cp.base, i)); err != nil {
				ls.Close()
				return err
			}
			c.Tracker.Reset()
			y := cp.p.Layer(ls, i, cp.inputs[i]) // (B,T,D)
			cp.rowOff[i] = rows
			if cp.plan[i].gated && ls.Err() == nil {
				part := c.Tracker.Sums(ms) // (R_i, W)
				if err := ms.Err(); err != nil {
					ls.Close()
					return err
				}
				rows += int(part.Size(0))
				sumParts = append(sumParts, part)
			}
			c.Set.KeepNorms(cp.s) // read by forwardBackward after the last micro-batch
			c.Tracker.Reset()
			cp.inputs[i+1] = ms.Own(y)
			err := ls.Err()
			ls.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(sumParts) == 0 {
		return err
	}
	cp.sums = ms.Contiguous(ms.Cat(sumParts, 0))
	return c.ReduceSums(ms, cp.sums, comm)
}

// head runs the final norm, the logits at the answer positions and the
// cross-entropy from the last layer's output, and backpropagates it. It
// returns the emotion loss (detached, in cp.s), the gradient of the last
// layer's output (in cp.ms; nil when nothing trainable is below), and
// whether the loss was poisoned by fault injection (tests).
func (cp *ckPass) head(bt stack.BatchTensors) (emotion, g *torch.Tensor, poisoned bool, err error) {
	c, ms, L := cp.r.c, cp.ms, cp.p.Layers()
	hs := ms.Child()
	defer hs.Close()
	xL := hs.Detach(cp.inputs[L])
	if err := setLeaf(xL, cp.plan.needsGrad(L)); err != nil {
		return nil, nil, false, err
	}
	h := cp.p.Norm(hs, xL)                                           // (B,T,D)
	logits := c.Model.Logits(hs, h, bt.Pos)                          // (N,V)
	ce := hs.CrossEntropy(logits, bt.Targets, -100, torch.ReduceSum) // ()
	em := hs.DivScalar(ce, float64(cp.mb.answerTokens))
	root := em
	if nf := cp.r.opt.NonFiniteAt; nf != nil && nf(cp.mb.step) {
		root, poisoned = hs.MulScalar(root, math.NaN()), true // test-only fault injection
	}
	if err := hs.Err(); err != nil {
		return nil, nil, false, err
	}
	emotion = cp.s.Detach(em)
	if root.RequiresGrad() {
		if err := root.Backward(); err != nil {
			return nil, nil, false, err
		}
		g = ms.Own(hs.Grad(xL))
	}
	cp.inputs[L].Free()
	return emotion, g, poisoned, nil
}

// backward recomputes each decoder layer with grad from its saved input,
// from the last one down, and backpropagates the gradient g of its output;
// it stops below the lowest layer with something trainable at or under it.
// It returns the layers' load-balancing and z-loss shares (last layer
// first) and the gradient of the first recomputed layer's input, all in
// cp.ms, and fills cp.snaps when the step wants router telemetry.
func (cp *ckPass) backward(g *torch.Tensor) (lbs, zs []*torch.Tensor, gIn *torch.Tensor, err error) {
	c, ms, L := cp.r.c, cp.ms, cp.p.Layers()
	resume := c.Set.PauseNorms()
	defer resume()
	lbs, zs = make([]*torch.Tensor, 0, L), make([]*torch.Tensor, 0, L)
	if cp.mb.wantRouter {
		cp.snaps = make([][]gating.GroupStats, L)
	}
	for i := L - 1; i >= 0; i-- {
		if !cp.plan[i].params && !cp.plan.needsGrad(i) {
			break // nothing trainable at or below this layer
		}
		ls := ms.Child()
		var snap *[]gating.GroupStats
		if cp.mb.wantRouter {
			snap = &cp.snaps[i]
		}
		gi, lb, z, err := cp.r.recomputeLayer(ls, cp.p, i, cp.inputs[i], g, cp.plan, cp.sums, cp.rowOff[i], cp.mb.accum, cp.base, snap)
		if err == nil && gi != nil {
			gi = ms.Own(gi)
		}
		if err == nil && lb != nil {
			lbs, zs = append(lbs, ms.Own(lb)), append(zs, ms.Own(z))
		}
		ls.Close()
		if err != nil {
			return nil, nil, nil, err
		}
		if g != nil {
			g.Free()
		}
		g = gi
		cp.inputs[i].Free() // layer i's input is no longer needed
	}
	return lbs, zs, g, nil
}

// recomputeLayer recomputes decoder layer i with grad in ls from its saved
// input x and backpropagates its output with gradient g (nil: the output
// gets no gradient from above) plus its share of the router losses. It
// returns the gradient of x (nil when x needs none) and the layer's
// load-balancing and z-loss shares (nil without gates), all in ls. When
// snap is not nil it receives the layer's router telemetry (under the
// pass's sums, as Tracker.Snapshot reports it for the whole pass).
func (r *run) recomputeLayer(ls *torch.Scope, p *model.Pass, i int, x, g *torch.Tensor, plan layerPlan,
	sums *torch.Tensor, row int, accum float64, base int64, snap *[]gating.GroupStats) (gIn, lb, z *torch.Tensor, err error) {
	c := r.c
	if err := torch.ManualSeed(checkpoint.SeedForLayer(base, i)); err != nil {
		return nil, nil, nil, err
	}
	xi := ls.Detach(x)
	if err := setLeaf(xi, plan.needsGrad(i)); err != nil {
		return nil, nil, nil, err
	}
	c.Tracker.Reset()
	defer c.Tracker.Reset()
	if plan[i].gated {
		c.Tracker.SetGlobal(sums, row)
		defer c.Tracker.SetGlobal(nil, 0)
	}
	y := p.Layer(ls, i, xi) // (B,T,D)
	var roots, grads []*torch.Tensor
	if g != nil && y != nil && y.RequiresGrad() {
		roots, grads = append(roots, y), append(grads, g)
	}
	if plan[i].gated {
		lb, z = c.Tracker.Losses(ls, c.Dev)
		aux := ls.DivScalar(ls.Add(ls.MulScalar(lb, c.Cfg.Loss.LoadBalance), ls.MulScalar(z, c.Cfg.Loss.ZLoss)), accum)
		if aux != nil && aux.RequiresGrad() {
			roots, grads = append(roots, aux), append(grads, nil)
		}
		lb, z = ls.Detach(lb), ls.Detach(z)
		if snap != nil && ls.Err() == nil {
			if *snap, err = c.Tracker.Instances(ls); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	if err := ls.Err(); err != nil {
		return nil, nil, nil, err
	}
	if len(roots) > 0 {
		if err := torch.BackwardWith(roots, grads); err != nil {
			return nil, nil, nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if plan.needsGrad(i) {
		gIn = ls.Grad(xi) // nil when nothing reached x
	}
	return gIn, lb, z, ls.Err()
}

// setLeaf makes the detached x a leaf that requires grad when on.
func setLeaf(x *torch.Tensor, on bool) error {
	if !on || x == nil {
		return nil
	}
	return x.SetRequiresGrad(true)
}

// layerInfo says what a decoder layer holds that training touches.
type layerInfo struct {
	params bool // an adapter (trainable) sits in the layer
	gated  bool // one of them has a gate (records router statistics)
	input  bool // the layer's input depends on a trainable tensor
}

// layerPlan is per decoder layer, plus one entry for the head's input.
type layerPlan []layerInfo

// needsGrad reports whether layer i's input (i = L: the head's) depends on
// a trainable tensor, i.e. whether the full graph would carry a gradient
// to it.
func (pl layerPlan) needsGrad(i int) bool { return pl[i].input }

// planLayers finds, for L decoder layers, which hold adapters and gates, and
// which inputs need a gradient (embedDeps: the embeddings depend on trained
// projectors).
func (r *run) planLayers(L int, embedDeps bool) layerPlan {
	pl := make(layerPlan, L+1)
	for _, m := range r.c.Set.Mixtures {
		i, ok := layerOf(m.Name)
		if !ok || i >= L {
			continue
		}
		pl[i].params = true
		pl[i].gated = pl[i].gated || m.Gate != nil
	}
	dep := embedDeps
	for i := range pl {
		pl[i].input = dep
		if i < L {
			dep = dep || pl[i].params
		}
	}
	return pl
}

// layerOf parses the decoder layer index out of a module name
// "model.layers.{i}.…".
func layerOf(name string) (int, bool) {
	const prefix = "model.layers."
	j := strings.Index(name, prefix)
	if j < 0 {
		return 0, false
	}
	rest := name[j+len(prefix):]
	k := strings.IndexByte(rest, '.')
	if k < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(rest[:k])
	return i, err == nil
}
