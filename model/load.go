package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// Options say how to load a model.
type Options struct {
	DType           torch.DType  // run dtype of the frozen weights (0 means float32)
	Device          torch.Device // where every tensor goes
	TrainProjectors bool         // projectors in float32 with requires_grad
	// Quantize stores the decoder linears (QuantizedModules) quantized,
	// quantized from their run-dtype values while loading.
	Quantize quant.Kind
}

// Load reads a HF-layout model dir (config.json and model.safetensors, or
// shards with model.safetensors.index.json) onto the device. Every missing
// tensor and every shape that disagrees with the config is reported at once,
// before anything is loaded. Call it on the tensor thread.
func Load(dir string, opt Options) (*Model, error) {
	if opt.DType == 0 {
		opt.DType = torch.Float32
	}
	if !opt.DType.IsFloat() {
		return nil, fmt.Errorf("%w: run dtype %v is not a float type", ErrConfig, opt.DType)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckAttached(dir); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	ck, err := OpenWeights(dir)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	defer ck.Close()
	if err := checkTensors(cfg, ck); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if err := cfg.CheckQuantize(opt.Quantize); err != nil {
		return nil, fmt.Errorf("model %s: %w: quantize %s: %w", dir, ErrWeights, opt.Quantize, err)
	}
	m := &Model{Config: cfg, DType: opt.DType, Device: opt.Device, Quantize: opt.Quantize, weights: torch.NewScope()}
	if m.rope.invFreq, err = cfg.invFreq(); err != nil {
		m.Close()
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if err := m.read(ckpt.NewReader(ck), opt); err != nil {
		m.Close()
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	return m, nil
}

// MergedProjectors holds a merged export's projectors (`mose export --format
// merged`), outside the weight files and their index, so that transformers
// loads the merged dir without unexpected keys. mose reads it beside the
// weights; a dir without it keeps its projectors in the weight files (the
// init-model and attach layouts, and merged exports of earlier versions).
const MergedProjectors = "mose_projectors.safetensors"

// OpenWeights opens the tensors of a model dir: its weight files (a single
// model.safetensors or the shards of its index) and MergedProjectors when
// present. A tensor in two places is an error.
func OpenWeights(dir string) (*safetensors.Checkpoint, error) {
	return safetensors.OpenDirWith(dir, MergedProjectors)
}

// ignored are checkpoint tensors that are derived, not weights.
func ignored(name string) bool { return strings.HasSuffix(name, "rotary_emb.inv_freq") }

// checkTensors compares the checkpoint with the config, listing every problem.
func checkTensors(cfg Config, ck ckpt.Source) error {
	var problems []string
	for _, t := range cfg.Tensors() {
		info, err := ck.Info(t.Name)
		switch {
		case errors.Is(err, safetensors.ErrNotFound):
			problems = append(problems, fmt.Sprintf("missing %s (config wants %v)", t.Name, t.Shape))
		case err != nil:
			return err
		case !slices.Equal(info.Shape, t.Shape):
			problems = append(problems, fmt.Sprintf("%s: config wants %v, %s has %v", t.Name, t.Shape, info.Path, info.Shape))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %d problem(s):\n  %s", ErrWeights, len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// Unused lists checkpoint tensors the config does not call for (for instance
// a vision tower stored alongside), so that callers can report them.
func Unused(cfg Config, names []string) []string {
	want := map[string]bool{}
	for _, t := range cfg.Tensors() {
		want[t.Name] = true
	}
	var out []string
	for _, n := range names {
		if !want[n] && !ignored(n) && !(cfg.TieWordEmbeddings && n == "lm_head.weight") {
			out = append(out, n)
		}
	}
	return out
}

// read loads every tensor into m.weights.
func (m *Model) read(r *ckpt.Reader, opt Options) error {
	s := m.weights
	get := func(name string) *torch.Tensor { return r.Read(s, name, opt.DType, opt.Device) }
	getIn := func(sc *torch.Scope, name string) *torch.Tensor { return r.Read(sc, name, opt.DType, opt.Device) }
	linear := func(name string, bias bool) Linear {
		l := Linear{Name: name}
		readLinearWeight(s, getIn, &l, opt.Quantize)
		if bias {
			l.Bias = get(name + ".bias")
		}
		return l
	}
	c := m.Config
	m.EmbedTokens = get("model.embed_tokens.weight")
	m.Layers = make([]Layer, c.NumLayers)
	for i := range m.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		m.Layers[i] = Layer{
			Index:     i,
			InputNorm: get(p + "input_layernorm.weight"),
			PostNorm:  get(p + "post_attention_layernorm.weight"),
			Q:         linear(p+"self_attn.q_proj", c.qkvBias()),
			K:         linear(p+"self_attn.k_proj", c.qkvBias()),
			V:         linear(p+"self_attn.v_proj", c.qkvBias()),
			O:         linear(p+"self_attn.o_proj", c.oBias()),
			Gate:      linear(p+"mlp.gate_proj", c.MLPBias),
			Up:        linear(p+"mlp.up_proj", c.MLPBias),
			Down:      linear(p+"mlp.down_proj", c.MLPBias),
		}
	}
	m.Norm = get("model.norm.weight")
	m.Head = m.EmbedTokens
	if !c.TieWordEmbeddings {
		m.Head = get("lm_head.weight")
	}
	pdt := opt.DType
	if opt.TrainProjectors {
		pdt = torch.Float32
	}
	for _, pc := range c.Projectors {
		p := Projector{Name: pc.Name, Kind: pc.Kind}
		pre := "projectors." + pc.Name + "."
		if pc.Kind == ProjectorMLP2 {
			pre += "0."
		}
		p.W1 = r.Read(s, pre+"weight", pdt, opt.Device)
		p.B1 = r.Read(s, pre+"bias", pdt, opt.Device)
		if pc.Kind == ProjectorMLP2 {
			p.W2 = r.Read(s, "projectors."+pc.Name+".2.weight", pdt, opt.Device)
			p.B2 = r.Read(s, "projectors."+pc.Name+".2.bias", pdt, opt.Device)
		}
		m.Projectors = append(m.Projectors, p)
	}
	if err := s.Err(); err != nil {
		return err
	}
	if opt.TrainProjectors {
		for i := range m.Projectors {
			for _, t := range m.Projectors[i].Params() {
				if err := t.SetRequiresGrad(true); err != nil {
					return err
				}
			}
		}
	}
	if opt.Quantize != quant.None {
		// Quantizing left its scratch (each full weight and its codes)
		// as free holes between the stored parts in the C heap: hand
		// them back rather than keep them in the process's memory.
		torch.ReleaseMemory()
	}
	return nil
}
