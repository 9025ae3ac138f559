package memest

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// Shape is what the memory estimate needs besides the recipe: the
// model's config and the sizes of one micro-batch.
type Shape struct {
	Model  model.Config
	Tokens []int // feature tokens of each projector's input, in Model.Projectors order
	T      int   // padded sequence length of a micro-batch
	Answer int   // answer tokens per sample (the positions whose logits are computed)
	CUDA   bool
}

// Estimate is the expected peak memory of a training run, in bytes,
// broken down by what holds it. Activations are per micro-batch; both paths
// are given whatever the recipe says.
type Estimate struct {
	Weights int64 // frozen weights (and frozen projectors) in the run dtype, quantized linears as stored
	// Dequant is the buffers the quantized linears dequantize into
	// (internal/torch's QuantLinear): kept across linears and steps, as
	// large as the largest linear's weight and intermediates (static).
	Dequant   int64
	Adapters  int64 // trainable parameters (adapters, gates, trained projectors), float32
	Grads     int64 // their gradients, float32
	Optimizer int64 // AdamW's two moments, float32
	Runtime   int64 // allowance for the runtime: libtorch, Go and the loader (CPU), the CUDA context (GPU)

	Inputs       int64 // the batch on the device, embeddings and projector activations
	Layer        int64 // one decoder layer's activations kept for backward
	LayerBack    int64 // one layer's backward working set
	Head         int64 // final norm, logits at answer positions, cross-entropy, and their backward
	Layers       int   // decoder layers
	Held         int   // micro-batches whose activations are alive at once without checkpointing (1: each micro-batch runs in its own scope)
	Saved        int64 // with checkpointing: one layer input (B,T,D) in the run dtype, kept per layer
	Checkpointed bool  // the recipe's train.activation_checkpointing
	Params       int64 // trainable parameters
	Shape        Shape
	// A Qwen2.5-Omni thinker's frozen towers: their weights (counted in
	// Weights too) and the transient peak of their no-grad forward at the
	// start of a micro-batch (omnimem.go); zero otherwise.
	TowerWeights int64
	Towers       int64
	TowerShape   *towerShape
	Loader       int64 // of Runtime, on the CPU: the loader's batches of media (omni)
}

// Activations is the activation peak of one step: without checkpointing
// every layer's activations (of every micro-batch the step holds) plus the
// head; with it the saved layer inputs plus one layer recomputed with its
// backward (or the head, whichever is larger).
func (e Estimate) Activations(checkpointing bool) int64 {
	if !checkpointing {
		return int64(e.Held)*(e.Inputs+int64(e.Layers)*e.Layer) + max(e.Head, e.LayerBack)
	}
	return e.Inputs + int64(e.Layers)*e.Saved + max(e.Head, e.Layer+e.LayerBack+2*e.Saved)
}

// Static is what does not depend on the batch.
func (e Estimate) Static() int64 {
	return e.Weights + e.Dequant + e.Adapters + e.Grads + e.Optimizer + e.Runtime
}

// Total is the expected peak with or without checkpointing: with towers,
// whichever is larger of their forward and the decoder's activations.
func (e Estimate) Total(checkpointing bool) int64 {
	return e.Static() + max(e.Towers, e.Activations(checkpointing))
}

// Runtime allowances: the resident memory of the runtime itself (libtorch's
// code and the Go heap, loader included) on the CPU, measured on the dev box
// as the peak RSS of `mose validate` on the small preset (245 MiB) less its
// weights and adapters (104 MiB); the CUDA context and cuBLAS workspaces,
// which live outside the caching allocator, on a GPU.
const (
	cpuRuntimeBytes  = 150 << 20
	cudaRuntimeBytes = 1 << 30
)

// Compute computes the memory estimate of cfg on a model of shape sh.
func Compute(cfg *recipes.Config, sh Shape) (Estimate, error) {
	mc := sh.Model
	e := Estimate{Layers: mc.NumLayers, Checkpointed: cfg.Train.ActivationCheckpointing, Shape: sh, Held: 1}
	es, err := dtypeSize(cfg.Model.DType)
	if err != nil {
		return e, err
	}
	if len(sh.Tokens) != len(mc.Projectors) {
		return e, fmt.Errorf("%w: %d feature inputs for %d projectors", recipes.ErrRecipe, len(sh.Tokens), len(mc.Projectors))
	}
	if sh.T <= 0 || cfg.Train.BatchSize <= 0 {
		return e, fmt.Errorf("%w: memory estimate needs a positive sequence length and batch size", recipes.ErrRecipe)
	}
	// Frozen weights in the run dtype (the decoder linears as stored when
	// quantized); trained projectors are float32 parameters, counted with
	// the adapters.
	qk, err := quant.ParseKind(cfg.Model.Quantize)
	if err != nil {
		return e, fmt.Errorf("%w: model.quantize: %v", recipes.ErrRecipe, err)
	}
	for _, t := range mc.Tensors() {
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		switch {
		case strings.HasPrefix(t.Name, "projectors.") && cfg.Model.TrainProjectors:
			e.Params += n
		case qk != quant.None && model.IsQuantized(t.Name):
			e.Weights += quant.StoredBytes(qk, n, t.Shape[0], es)
			e.Dequant = max(e.Dequant, dequantScratch(qk, n, es))
		default:
			e.Weights += n * es
		}
	}
	ad, err := adapterShapes(cfg, mc)
	if err != nil {
		return e, err
	}
	for _, a := range ad {
		e.Params += a.params() * int64(mc.NumLayers)
	}
	e.Adapters, e.Grads, e.Optimizer = 4*e.Params, 4*e.Params, 8*e.Params
	e.Runtime = cpuRuntimeBytes
	if sh.CUDA {
		e.Runtime = cudaRuntimeBytes
	}
	B, T := int64(cfg.Train.BatchSize), int64(sh.T)
	N := B * T
	D := int64(mc.HiddenSize)
	e.Saved = N * D * es
	e.Inputs = inputBytes(cfg, sh, N, D, es)
	la := layerActs{cfg: cfg, mc: mc, N: N, B: B, T: T, e: es, cuda: sh.CUDA, adapters: ad}
	e.Layer = la.forward()
	e.LayerBack = la.backward()
	e.Head = headBytes(mc, N, B*int64(max(1, sh.Answer)), D, es)
	return e, nil
}

// dtypeSize is the bytes of one element of a model.dtype.
func dtypeSize(dt string) (int64, error) {
	switch dt {
	case "float32", "":
		return 4, nil
	case "bfloat16", "float16":
		return 2, nil
	}
	return 0, fmt.Errorf("%w: model.dtype %q", recipes.ErrRecipe, dt)
}

// adapterShape is one target module's adapter in one layer.
type adapterShape struct {
	module          string
	in, out         int64
	rank            int64
	groups, slots   int64 // G groups (one A each), E = ΣK experts (one B each)
	gated           int64 // Gg gated groups
	gatedSlots      int64 // ΣK over the gated groups
	kmax, topK      int64
	noise, tempered bool
}

func (a adapterShape) params() int64 {
	return a.groups*a.rank*a.in + a.out*a.slots*a.rank + a.gatedSlots*a.in
}

// adapterShapes lists the adapter of every target module of one layer.
func adapterShapes(cfg *recipes.Config, mc model.Config) ([]adapterShape, error) {
	a := cfg.Adapters
	ecfg := experts.Config{Method: a.Method, Targets: a.Targets, Rank: a.Rank, Alpha: a.Alpha,
		VisualExperts: a.Experts.Visual, NonVisualExperts: a.Experts.NonVisual, OmniExperts: a.Experts.Omni}
	names, K := ecfg.Groups()
	G := int64(len(names))
	D, I := int64(mc.HiddenSize), int64(mc.IntermediateSize)
	q, kv := int64(mc.NumHeads*mc.HeadDim), int64(mc.NumKVHeads*mc.HeadDim)
	dims := map[string][2]int64{"q_proj": {D, q}, "k_proj": {D, kv}, "v_proj": {D, kv}, "o_proj": {q, D},
		"gate_proj": {D, I}, "up_proj": {D, I}, "down_proj": {I, D}}
	var out []adapterShape
	for _, t := range a.Targets {
		d, ok := dims[t]
		if !ok {
			return nil, fmt.Errorf("%w: adapters.targets: unknown module %q", recipes.ErrRecipe, t)
		}
		s := adapterShape{module: t, in: d[0], out: d[1], rank: int64(a.Rank), groups: G,
			topK: int64(a.Gate.TopK), noise: a.Gate.Noise > 0, tempered: a.Gate.Temperature != 1 && a.Gate.Temperature != 0}
		for _, k := range K {
			s.slots += int64(k)
			if k > 1 {
				s.gated++
				s.gatedSlots += int64(k)
				s.kmax = max(s.kmax, int64(k))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// inputBytes is the batch on the device and the input embeddings: ids,
// modality ids and their one-hot, token embeddings, each projector's
// features and activations, and the spliced sequence.
func inputBytes(cfg *recipes.Config, sh Shape, N, D, es int64) int64 {
	B := int64(cfg.Train.BatchSize)
	b := N*8*2 + N*4*8 + N*4*4 // ids, modality (int64), one-hot int64 and float32
	b += N * D * es            // token embeddings
	pe := es
	if cfg.Model.TrainProjectors {
		pe = 4
	}
	for i, p := range sh.Model.Projectors {
		n := B * int64(sh.Tokens[i])
		F := int64(p.Dim)
		b += n * F * 4 // the features, float32
		if pe != 4 {
			b += n * F * pe // cast to the weights' dtype
		}
		b += n * D * pe // first linear
		if p.Kind == model.ProjectorMLP2 {
			b += 2 * n * D * pe // GELU, second linear
		}
		if pe != es {
			b += n * D * es // cast to the run dtype
		}
		b += N * D * es // the sequence with this input spliced in (index_copy)
	}
	return b
}

// headBytes is the final norm over every position, the logits at the A
// answer positions and the cross-entropy, with the backward's largest
// gradients (logits and log-softmax sized).
func headBytes(mc model.Config, N, A, D, es int64) int64 {
	V := int64(mc.VocabSize)
	b := rmsBytes(N, D, es)
	b += A*D*es + A*V*es // gathered hidden states, logits
	if es != 4 {
		b += A * V * 4 // logits in float32
	}
	b += A * V * 4     // log-softmax kept by cross-entropy
	b += 2 * A * V * 4 // backward: the logits' gradient and its cast/softmax temporary
	return b
}

// rmsBytes is one RMSNorm's tensors over (N,D): statistics in float32, the
// result in the run dtype.
func rmsBytes(N, D, es int64) int64 {
	b := 3*N*D*4 + 3*N*4 // square, normalised x, weighted (float32 path)
	if es != 4 {
		b += 2 * N * D * es // the cast back and the weighted result in the run dtype
	}
	return b
}
