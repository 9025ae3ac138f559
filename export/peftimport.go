package export

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// peftModel is a model with a PEFT adapter on top (OpenPEFT).
type peftModel struct {
	Model *model.Model
	Dev   torch.Device
	Set   *experts.Set
	owned *torch.Scope // replaced modules (modules_to_save)
}

// Close frees the adapter, the replaced modules and the model.
func (c *peftModel) Close() {
	c.owned.Close()
	if c.Set != nil {
		c.Set.Close()
	}
	c.Model.Close()
}

// OpenPEFT loads a model dir with a PEFT LoRA adapter directory on top: any
// adapter PEFT 0.13.2 to 0.21.2 writes for a LLaMA-family model whose math is plain
// LoRA (per-module rank and alpha, layer and regex targets, trained biases,
// a saved head or embedding matrix), or the adapter_model.safetensors of a
// mose export (the whole adapter for plain LoRA, the omni expert for MoSE).
// Every config field and every tensor of the adapter is used or refused by
// name (docs/export.md: "PEFT adapters from elsewhere"). It must run on the tensor
// thread; close frees everything.
func OpenPEFT(modelDir, adapterDir string, opt model.Options) (m *model.Model, closeFn func(), err error) {
	cfgPath := filepath.Join(adapterDir, stack.PEFTConfigFile)
	b, err := fsutil.ReadRegularLimit(cfgPath, stack.MaxSidecarJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", inputerr.ErrAdapter, err)
	}
	mc, err := model.LoadConfig(modelDir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", inputerr.ErrModel, err)
	}
	lc, err := parseLoRAConfig(b, mc.ModelType)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", inputerr.ErrAdapter, cfgPath, err)
	}
	saved, err := lc.savedModules(mc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", inputerr.ErrAdapter, cfgPath, err)
	}
	if m, err = model.Load(modelDir, opt); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", inputerr.ErrModel, err)
	}
	c := &peftModel{Model: m, Dev: opt.Device, owned: torch.NewScope()}
	fail := func(err error) (*model.Model, func(), error) {
		c.Close()
		return nil, nil, fmt.Errorf("%w: %v", inputerr.ErrAdapter, err)
	}
	linears := map[string]*model.Linear{}
	var targets []experts.Target
	var leaves []string
	for _, l := range m.Linears() {
		linears[l.Name] = l
		if lc.targets(l.Name) {
			r, alpha := lc.rankAlpha(l.Name)
			if n := max(l.In(), l.Out()); int64(r) > n {
				return fail(fmt.Errorf("%s: r (or rank_pattern) %d for %s is beyond its larger dimension %d: not a LoRA of this model", cfgPath, r, l.Name, n))
			}
			targets = append(targets, experts.Target{Name: l.Name, In: l.In(), Out: l.Out(), Rank: r, Alpha: alpha})
			if leaf := l.Name[strings.LastIndex(l.Name, ".")+1:]; !slices.Contains(leaves, leaf) {
				leaves = append(leaves, leaf)
			}
		}
	}
	for _, name := range moduleNames(mc) {
		if lc.targets(name) && linears[name] == nil {
			shown := strconv.Quote(name)
			if name == "" {
				shown = "the root module"
			}
			return fail(fmt.Errorf("%s: target_modules: matches %s, which mose cannot adapt (only the q, k, v, o, gate, up and down projections)", cfgPath, shown))
		}
	}
	if len(targets) == 0 {
		return fail(fmt.Errorf("%s: target_modules: %s matches no module of %s (with layers_to_transform/layers_pattern if set)", cfgPath, b2s(b, "target_modules"), modelDir))
	}
	cfg := experts.Config{Method: experts.MethodLoRA, Targets: leaves, Rank: lc.R, Alpha: lc.Alpha, RSLoRA: lc.RSLoRA}
	if c.Set, err = experts.New(opt.Device, targets, cfg, nil); err != nil {
		return fail(fmt.Errorf("%s: %w", cfgPath, err))
	}
	if err := c.loadPEFTFile(filepath.Join(adapterDir, stack.PEFTWeightsFile), linears, saved); err != nil {
		return fail(err)
	}
	for _, mx := range c.Set.Mixtures {
		linears[mx.Name].Adapter = mx
	}
	return m, c.Close, nil
}

// loadPEFTFile copies the adapter's LoRA weights into the set, its biases
// into the model's linears and its saved modules (lm_head, embed_tokens)
// over the model's; a tensor it does not use is an error naming it.
func (c *peftModel) loadPEFTFile(path string, linears map[string]*model.Linear, saved []string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := ckpt.NewReader(f)
	// read refuses NaN or Inf values: the adapter would otherwise load and
	// give non-finite logits.
	read := func(s *torch.Scope, name string, dt torch.DType) *torch.Tensor {
		return rd.ReadFinite(s, name, dt, c.Dev)
	}
	used := map[string]bool{}
	s := torch.NewScope()
	defer s.Close()
	err = c.Set.Import(s, func(s *torch.Scope, name string) *torch.Tensor {
		used[stack.PEFTPrefix+name] = true
		return read(s, stack.PEFTPrefix+name, torch.Float32)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m := c.Model
	for _, name := range f.Names() {
		if used[name] || !strings.HasSuffix(name, ".bias") || !strings.HasPrefix(name, stack.PEFTPrefix) {
			continue
		}
		// bias "all"/"lora_only": PEFT saves trained biases and loads them over
		// the base model's, at <module>.base_layer.bias for a LoRA target.
		module := strings.TrimSuffix(strings.TrimPrefix(name, stack.PEFTPrefix), ".bias")
		wrapped := strings.HasSuffix(module, ".base_layer")
		module = strings.TrimSuffix(module, ".base_layer")
		l := linears[module]
		if l == nil || l.Bias == nil || wrapped != (c.Set.Mixture(module) != nil) {
			return fmt.Errorf("%s: %s is a bias the model has no place for (%s has no bias, or is not where PEFT puts it)", path, name, module)
		}
		if err := copyTensor(s, l.Bias, read(s, name, m.DType), name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		used[name] = true
	}
	for _, module := range saved { // modules_to_save: the whole matrix, replacing the model's
		name := stack.PEFTPrefix + module + ".weight"
		if !slices.Contains(f.Names(), name) {
			return fmt.Errorf("%s: modules_to_save lists %s but the file has no %s", path, module, name)
		}
		t := read(c.owned, name, m.DType)
		if err := c.owned.Err(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		want := m.EmbedTokens.Shape()
		if !slices.Equal(t.Shape(), want) {
			return fmt.Errorf("%s: %s has shape %v, the model wants %v", path, name, t.Shape(), want)
		}
		if module == "lm_head" {
			m.Head = t // unties a tied head, as PEFT's copy does
		} else {
			m.EmbedTokens = t
		}
		used[name] = true
	}
	var extra []string
	for _, n := range f.Names() {
		if !used[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%s: %d tensor(s) mose does not use, refusing the adapter rather than ignoring them: %s",
			path, len(extra), strings.Join(extra, ", "))
	}
	return nil
}

// copyTensor copies src over dst (same shape), without autograd.
func copyTensor(s *torch.Scope, dst, src *torch.Tensor, name string) error {
	if err := s.Err(); err != nil {
		return err
	}
	if got, want := src.Shape(), dst.Shape(); !slices.Equal(got, want) {
		return fmt.Errorf("%s has shape %v, the model wants %v", name, got, want)
	}
	return torch.NoGrad(func() error { return dst.CopyFrom(src) })
}

// savedModules resolves modules_to_save as PEFT's _set_trainable does (a
// module is saved when its name ends with an entry): mose replaces lm_head
// and model.embed_tokens and refuses any other module.
func (c *loraImport) savedModules(mc model.Config) ([]string, error) {
	var out []string
	for _, name := range moduleNames(mc) {
		hit := false
		for _, e := range c.modulesToSave {
			if strings.HasSuffix(name, e) {
				hit = true
			}
		}
		switch {
		case !hit:
		case name == "lm_head" || name == "model.embed_tokens":
			out = append(out, name)
		default:
			return nil, fmt.Errorf("modules_to_save: %v matches %q; mose can replace only lm_head and embed_tokens", c.modulesToSave, name)
		}
	}
	return out, nil
}

// moduleNames lists the module names of transformers' LlamaForCausalLM
// (Qwen2 and Mistral have the same) for cfg, as named_modules gives them:
// what PEFT matches target_modules and modules_to_save against.
func moduleNames(cfg model.Config) []string {
	names := []string{"", "model", "model.embed_tokens", "model.layers"}
	for i := range cfg.NumLayers {
		p := fmt.Sprintf("model.layers.%d", i)
		names = append(names, p, p+".self_attn", p+".self_attn.q_proj", p+".self_attn.k_proj", p+".self_attn.v_proj",
			p+".self_attn.o_proj", p+".self_attn.rotary_emb", p+".mlp", p+".mlp.gate_proj", p+".mlp.up_proj",
			p+".mlp.down_proj", p+".mlp.act_fn", p+".input_layernorm", p+".post_attention_layernorm")
	}
	return append(names, "model.norm", "model.rotary_emb", "lm_head")
}

// b2s returns a field of a JSON object as its raw text.
func b2s(b []byte, field string) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil || raw[field] == nil {
		return "null"
	}
	return string(raw[field])
}
