package memest

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// The memory of a Qwen2.5-Omni thinker's training step. The decoder is
// counted as any decoder's (its TMRoPE tables are a few (B,T,head_dim)
// tensors more); the frozen towers add their weights, and their forward,
// run under no-grad at the start of every micro-batch with one layer's
// working set alive at a time (model/omni runs each tower layer in a scope
// of its own), adds a transient peak before the decoder's activations
// exist: the step's peak is the static memory plus the larger of the two.
// The towers' peak follows model/omni's ops: every result of a layer lives
// until the layer ends, attention through the math path (scores of every
// head, float32) as an upper bound.

// maxFramePatches is the patches of the largest video frame the processor
// makes (768·28·28 pixels, 14-pixel patches): the span of the vision
// tower's full-attention blocks assumed when the data is not read.
const maxFramePatches = 768 * 28 * 28 / (14 * 14)

// towerShape is what the towers' estimate needs of a micro-batch: the
// visual and audio tokens per row, and the widest frame in patches.
type towerShape struct {
	Visual, Audio int // decoder tokens per row
	FramePatches  int // patches per frame (the full-attention blocks' span)
}

// towerBytes is the towers' weights in the run dtype.
func towerBytes(oc omni.Config, es int64) int64 {
	dec := map[string]bool{}
	for _, t := range oc.Decoder().Tensors() {
		dec[t.Name] = true
	}
	var n int64
	for _, t := range oc.Tensors() {
		if dec[t.Name] {
			continue
		}
		m := int64(1)
		for _, d := range t.Shape {
			m *= d
		}
		n += m
	}
	return n * es
}

// visionPeak is the vision tower's forward on B rows of v visual tokens
// each: the pixels and the patch embedding, the rotary tables, and one
// block's results (two RMSNorms, q/k/v with float32 rotary on q and k,
// the windows packed, the attention scores, the gated MLP).
func visionPeak(vc omni.VisionConfig, B, v int64, frame int64, es int64) int64 {
	U := int64(vc.SpatialMergeSize * vc.SpatialMergeSize)
	N := B * v * U // patches
	if N == 0 {
		return 0
	}
	Hd, I, H := int64(vc.HiddenSize), int64(vc.IntermediateSize), int64(vc.NumHeads)
	pix := int64(vc.InChannels * vc.TemporalPatchSize * vc.PatchSize * vc.PatchSize)
	b := N * pix * (4 + es)      // pixel_values (float32) and cast
	b += 3 * N * Hd * es         // patch embedding, window order, the previous block's output
	b += 2 * N * (Hd / H) * 4    // rotary cos, sin
	b += 2 * rmsBytes(N, Hd, es) // norm1, norm2
	b += 21 * N * Hd * es        // q, k, v, their packed copies, attention output and copies, proj, residuals
	b += 11 * N * Hd * 4         // rotary on q and k in float32
	b += 4 * N * I * es          // gate, silu, up, product
	win := int64(vc.WindowSize / vc.PatchSize)
	L := max(win*win, min(N, frame)) // the widest attention span: a window, or a frame in the full blocks
	return b + N*H*L*4               // scores, float32
}

// audioPeak is the audio tower's forward on B rows of a audio tokens
// each: the mel features (4 frames per token), the two convolutions, and
// one encoder layer's results (attention within n_window chunks).
func audioPeak(ac omni.AudioConfig, B, a int64, es int64) int64 {
	if a == 0 {
		return 0
	}
	F := 4 * B * a // mel frames
	M := 2 * B * a // positions after the stride-2 convolution
	D, FF, H := int64(ac.DModel), int64(ac.FFNDim), int64(ac.Heads)
	b := 4 * F * int64(ac.NumMelBins) * max(es, 4) // features and their packed copies
	b += 3 * F * D * es                            // conv1, GELU, mask
	b += 4 * M * D * es                            // conv2, GELU, transposed, positions added
	b += 20 * M * D * es                           // norms, q/k/v, chunked copies, attention output and copies, out_proj, residuals
	b += 2 * M * FF * es                           // fc1, GELU
	return b + M*H*int64(ac.NWindow)*4             // scores within each chunk, float32
}

// omniTowers fills e's towers: their weights (added to e.Weights) and
// their forward's peak for the micro-batch ts describes.
func omniTowers(e *Estimate, cfg *recipes.Config, oc omni.Config, ts towerShape) error {
	es, err := dtypeSize(cfg.Model.DType)
	if err != nil {
		return err
	}
	B := int64(cfg.Train.BatchSize)
	e.TowerWeights = towerBytes(oc, es)
	e.Weights += e.TowerWeights
	e.Towers = max(visionPeak(oc.Vision, B, int64(ts.Visual), int64(ts.FramePatches), es), audioPeak(oc.Audio, B, int64(ts.Audio), es))
	e.TowerShape = &ts
	if !e.Shape.CUDA {
		// The loader's batches on the Go heap: Prefetch (4) ready, one per
		// worker in the making and the one in use, their media in float32.
		vc := oc.Vision
		pix := int64(vc.InChannels*vc.TemporalPatchSize*vc.PatchSize*vc.PatchSize) * int64(vc.SpatialMergeSize*vc.SpatialMergeSize)
		row := int64(ts.Visual)*pix*4 + 4*int64(ts.Audio)*int64(oc.Audio.NumMelBins)*4
		e.Loader = int64(4+max(cfg.Data.Workers, 1)+1) * B * row
		e.Runtime += e.Loader
	}
	return nil
}

// omniFromConfig is FromConfig for a Qwen2.5-Omni thinker: the decoder on
// micro-batches of data.max_len tokens, and the towers on the worse of two
// cases: every token a video token (frames of the processor's largest
// video size), or every token an audio token.
func omniFromConfig(cfg *recipes.Config) (string, error) {
	oc, err := omni.LoadConfig(cfg.Model.Path)
	if err != nil {
		return "", fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	if err := stack.OmniUnsupported(cfg); err != nil {
		return "", err
	}
	mc := oc.Decoder()
	if err := checkQuantize(cfg, mc); err != nil {
		return "", err
	}
	sh := Shape{Model: mc, T: cfg.Data.MaxLen, Answer: defaultAnswerTokens}
	if mc.MaxPositionEmbeddings > 0 {
		sh.T = min(sh.T, mc.MaxPositionEmbeddings)
	}
	dev, err := torch.ParseDevice(cfg.Run.Device)
	if err != nil {
		return "", fmt.Errorf("%w: run.device: %v", recipes.ErrRecipe, err)
	}
	sh.CUDA = dev.IsCUDA()
	est, err := Compute(cfg, sh)
	if err != nil {
		return "", err
	}
	es, _ := dtypeSize(cfg.Model.DType)
	B := int64(cfg.Train.BatchSize)
	ts := towerShape{Visual: sh.T, FramePatches: maxFramePatches}
	if audioPeak(oc.Audio, B, int64(sh.T), es) > visionPeak(oc.Vision, B, int64(sh.T), maxFramePatches, es) {
		ts = towerShape{Audio: sh.T}
	}
	if err := omniTowers(&est, cfg, oc, ts); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "recipe %s: memory estimate from %s/config.json only (Qwen2.5-Omni thinker; no weights or data read; T = data.max_len %d, %d answer tokens assumed)\n",
		cfg.Run.Name, cfg.Model.Path, sh.T, sh.Answer)
	var avail *deviceMem
	if torch.CUDAAvailable() || !dev.IsCUDA() {
		if err := torch.Run(func() error { avail = availableMemory(dev); return nil }); err != nil {
			return "", err
		}
	}
	est.Format(&b, cfg, dev, avail)
	return b.String(), nil
}

// omniTowerShape is the widest micro-batch of an omni training set for the
// towers: the most visual and audio tokens of a sample, and its widest
// video or image frame.
func omniTowerShape(ds *data.Dataset, oc omni.Config) towerShape {
	var ts towerShape
	for i := range ds.Examples {
		oe := ds.OmniExample(i)
		v, a := 0, 0
		for _, g := range append(append([][3]int64{}, oe.ImageGridTHW...), oe.VideoGridTHW...) {
			v += int(g[0] * g[1] * g[2] / int64(oc.Vision.SpatialMergeSize*oc.Vision.SpatialMergeSize))
			ts.FramePatches = max(ts.FramePatches, int(g[1]*g[2]))
		}
		for _, n := range oe.AudioLens {
			a += int(omni.AudioTokens(n))
		}
		ts.Visual, ts.Audio = max(ts.Visual, v), max(ts.Audio, a)
	}
	return ts
}
