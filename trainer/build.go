package trainer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// components are the parts a run is made of, built from a recipe on the
// tensor thread. close frees them.
type components struct {
	cfg     *recipes.Config
	dev     torch.Device
	model   *model.Model
	spec    data.Spec
	tok     *tokenizer.Tokenizer
	set     *experts.Set
	gates   *torch.Scope // owns the gates' tensors
	tracker *gating.Tracker
	weights *gating.ModalityWeights
	params  []Param
	train   *data.Dataset
	eval    *data.Dataset // nil without data.eval
	owned   *torch.Scope  // tensors made for buildAdaptersOnly
	group   Collective    // data-parallel ranks (training), or nil
}

func (c *components) close() {
	if c.owned != nil {
		c.owned.Close()
	}
	if c.set != nil {
		c.set.Close()
	}
	if c.gates != nil {
		c.gates.Close()
	}
	if c.model != nil {
		c.model.Close()
	}
}

// Which datasets buildComponents opens.
type dataSets int

const (
	noData   dataSets = iota // model and adapters only (export)
	evalData                 // data.eval only (eval)
	allData                  // data.train and data.eval (train, validate)
)

// buildComponents loads the model, injects the adapters and opens the data.
// Errors about the recipe's files or values wrap ErrRecipe.
func buildComponents(cfg *recipes.Config, sets dataSets) (*components, error) {
	c := &components{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	var err error
	if c.dev, err = torch.ParseDevice(cfg.Run.Device); err != nil {
		return nil, fmt.Errorf("%w: run.device: %v", ErrRecipe, err)
	}
	if c.dev.IsCUDA() && !torch.CUDAAvailable() {
		return nil, fmt.Errorf("%w: run.device %s but CUDA is not available (is this a CPU build? see README: GPU boxes)", ErrRecipe, c.dev)
	}
	dt, err := torch.ParseDType(cfg.Model.DType)
	if err != nil {
		return nil, fmt.Errorf("%w: model.dtype: %v", ErrRecipe, err)
	}
	if c.model, err = model.Load(cfg.Model.Path, model.Options{DType: dt, Device: c.dev, TrainProjectors: cfg.Model.TrainProjectors}); err != nil {
		return nil, fmt.Errorf("%w: model.path: %w", ErrRecipe, err)
	}
	// The mose section and the tokenizer serve the data; an export of a plain
	// LLM's adapter needs neither.
	if c.spec, err = data.ReadModelSpec(cfg.Model.Path); err != nil && sets != noData {
		return nil, fmt.Errorf("%w: model.path: %w", ErrRecipe, err)
	}
	if sets != noData {
		if c.tok, err = tokenizer.Load(filepath.Join(cfg.Model.Path, "tokenizer.json")); err != nil {
			return nil, fmt.Errorf("%w: model.path: %w", ErrRecipe, err)
		}
	}
	err = nil
	if err := c.inject(); err != nil {
		return nil, err
	}
	if c.weights, err = gating.NewModalityWeights(cfg.Adapters.ModalityWeights); err != nil {
		return nil, fmt.Errorf("%w: adapters.modality_weights: %v", ErrRecipe, err)
	}
	c.set.RecordNorms(c.weights.NeedsNorms())
	if sets == allData {
		if c.train, err = c.open(cfg.Data.Train); err != nil {
			return nil, fmt.Errorf("%w: data.train: %w", ErrRecipe, err)
		}
	}
	if sets != noData && cfg.Data.Eval != "" {
		if c.eval, err = c.open(cfg.Data.Eval); err != nil {
			return nil, fmt.Errorf("%w: data.eval: %w", ErrRecipe, err)
		}
	}
	ok = true
	return c, nil
}

// inject builds the expert groups and gates on every target linear of the
// loaded model, and collects the trainable parameters.
func (c *components) inject() error {
	linears := map[string]*model.Linear{}
	var all []experts.Target
	for _, l := range c.model.Linears() {
		linears[l.Name] = l
		all = append(all, experts.Target{Name: l.Name, In: l.In(), Out: l.Out()})
	}
	if err := c.buildAdapters(all); err != nil {
		return err
	}
	for _, m := range c.set.Mixtures {
		linears[m.Name].Adapter = m
	}
	if c.cfg.Model.TrainProjectors {
		for _, p := range c.model.Projectors {
			for i, t := range p.Params() {
				c.params = append(c.params, Param{Name: projectorName(p, i), T: t, Decay: t.Dim() >= 2})
			}
		}
	}
	return nil
}

// buildAdapters makes the expert set and gates for the recipe's targets
// among all (every linear of the model) and lists their parameters.
func (c *components) buildAdapters(all []experts.Target) error {
	a := c.cfg.Adapters
	ecfg := experts.Config{Method: a.Method, Targets: a.Targets, Rank: a.Rank, Alpha: a.Alpha, RSLoRA: a.RSLoRA,
		Dropout: a.Dropout, VisualExperts: a.Experts.Visual, NonVisualExperts: a.Experts.NonVisual,
		OmniExperts: a.Experts.Omni, Seed: uint64(c.cfg.Run.Seed)}
	byName := map[string]experts.Target{}
	var names []string
	for _, t := range all {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	sel, err := ecfg.Select(names)
	if err != nil {
		return fmt.Errorf("%w: adapters.targets: %v", ErrRecipe, err)
	}
	var targets []experts.Target
	for _, n := range sel {
		targets = append(targets, byName[n])
	}
	c.gates = torch.NewScope()
	c.tracker = &gating.Tracker{}
	gcfg := gating.Config{TopK: a.Gate.TopK, Temperature: a.Gate.Temperature, Noise: a.Gate.Noise}
	rng := rand.New(rand.NewPCG(uint64(c.cfg.Run.Seed), 0x67617465))
	c.set, err = experts.New(c.dev, targets, ecfg, func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
		return gating.NewGate(c.gates, c.dev, name, in, groups, K, gcfg, rng, a.Gate.InitStd, c.tracker)
	})
	if err != nil {
		return fmt.Errorf("%w: adapters: %v", ErrRecipe, err)
	}
	for _, m := range c.set.Mixtures {
		c.params = append(c.params, Param{Name: m.Name + ".A", T: m.A, Decay: true}, Param{Name: m.Name + ".B", T: m.B, Decay: true})
		if m.Gate != nil {
			c.params = append(c.params, Param{Name: m.Name + ".gate", T: m.Gate.Weight(), Decay: true})
		}
	}
	return nil
}

// buildAdaptersOnly makes the adapters (and trained projector tensors) from
// the model's config alone, on the CPU, without loading its weights: what a
// PEFT export or an exact merge needs, so their memory stays near one shard
// plus the adapters.
func buildAdaptersOnly(cfg *recipes.Config) (*components, error) {
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: model.path: %w", ErrRecipe, err)
	}
	if err := model.CheckAttached(cfg.Model.Path); err != nil { // a merge streams the (linked) base weights
		return nil, fmt.Errorf("%w: model.path: %w", ErrRecipe, err)
	}
	c := &components{cfg: cfg, dev: torch.CPU}
	c.spec, _ = data.ReadModelSpec(cfg.Model.Path) // described in the sidecar when present
	var all []experts.Target
	var projectors []model.TensorShape
	for _, t := range mc.Tensors() {
		switch {
		case strings.HasPrefix(t.Name, "projectors."):
			projectors = append(projectors, t)
		case strings.HasSuffix(t.Name, "_proj.weight"):
			all = append(all, experts.Target{Name: strings.TrimSuffix(t.Name, ".weight"), Out: t.Shape[0], In: t.Shape[1]})
		}
	}
	if err := c.buildAdapters(all); err != nil {
		c.close()
		return nil, err
	}
	if cfg.Model.TrainProjectors {
		c.owned = torch.NewScope()
		for _, t := range projectors {
			c.params = append(c.params, Param{Name: t.Name, T: c.owned.Zeros(t.Shape, torch.Float32, torch.CPU)})
		}
		if err := c.owned.Err(); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// projectorName is the HF-style name of a projector's i-th tensor.
func projectorName(p model.Projector, i int) string {
	names := []string{"weight", "bias"}
	if p.Kind == model.ProjectorMLP2 {
		names = []string{"0.weight", "0.bias", "2.weight", "2.bias"}
	}
	return "projectors." + p.Name + "." + names[i]
}

// open reads a manifest against the model's spec and tokenizer (loaded on
// first use).
func (c *components) open(manifest string) (*data.Dataset, error) {
	if c.tok == nil {
		var err error
		if c.spec, err = data.ReadModelSpec(c.cfg.Model.Path); err != nil {
			return nil, err
		}
		if c.tok, err = tokenizer.Load(filepath.Join(c.cfg.Model.Path, "tokenizer.json")); err != nil {
			return nil, err
		}
	}
	pad, err := padID(c.tok, filepath.Join(c.cfg.Model.Path, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	return data.Open(manifest, c.spec, c.tok, data.Options{Root: c.cfg.Data.Root, MaxLen: c.cfg.Data.MaxLen, PadID: pad})
}

// newTrainLoader starts the training loader at sampler state st. Under data
// parallelism the sampler draws global batches of world × train.batch_size
// samples, the same on every rank, and this rank loads its slice.
func (c *components) newTrainLoader(ctx context.Context, st data.SamplerState) (*data.Loader, *data.Sampler, error) {
	global := c.cfg.Train.BatchSize * c.world()
	smp, err := data.NewSampler(c.train.Lengths(), data.SamplerOptions{BatchSize: global,
		Seed: uint64(c.cfg.Run.Seed), Shuffle: true, DropLast: true})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRecipe, err)
	}
	if st != (data.SamplerState{}) {
		if err := smp.Restore(st); err != nil {
			return nil, nil, fmt.Errorf("%w: sampler: %v", ErrResume, err)
		}
	}
	if smp.BatchesPerEpoch() == 0 {
		return nil, nil, fmt.Errorf("%w: data.train has %d samples, fewer than train.batch_size %d × %d ranks", ErrRecipe, c.train.Len(), c.cfg.Train.BatchSize, c.world())
	}
	l := data.NewLoader(ctx, c.train, smp, data.LoaderOptions{Mode: data.ModeTrain, Workers: c.cfg.Data.Workers,
		Shard: c.rank(), Shards: c.world()})
	return l, smp, nil
}

// padID is the id batches are padded with: the tokenizer's pad token, or its
// EOS token when it has none (SmolLM2, LLaMA-3; what HF users set as
// pad_token). Padded positions are masked out of attention and loss, so any
// real id gives the same numbers; a tokenizer with neither is refused.
func padID(tok *tokenizer.Tokenizer, path string) (int32, error) {
	if pad, ok := tok.Pad(); ok {
		return pad, nil
	}
	if eos, ok := tok.EOS(); ok {
		return eos, nil
	}
	return 0, fmt.Errorf("%w: %s has neither a pad nor an EOS token (set pad_token in tokenizer_config.json): batches need one to pad with", ErrRecipe, path)
}
