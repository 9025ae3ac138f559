package stack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// Stack is the frozen model with the adapters injected, the tokenizer, the
// gates' tracker and modality weights, the trainable parameters and the
// datasets: what a run, an evaluation or an export is made of, built from a
// recipe on the tensor thread. Close frees it.
type Stack struct {
	Cfg     *recipes.Config
	Dev     torch.Device
	Model   *model.Model
	Spec    data.Spec
	Tok     *tokenizer.Tokenizer
	Set     *experts.Set
	gates   *torch.Scope // owns the gates' tensors
	Tracker *gating.Tracker
	Weights *gating.ModalityWeights
	Params  []Param
	Train   *data.Dataset
	Eval    *data.Dataset // nil without data.eval
	owned   *torch.Scope  // tensors made for buildAdaptersOnly
	Group   Collective    // data-parallel ranks (training), or nil

	// Omni is the Qwen2.5-Omni thinker when the model is one (Model is then
	// its decoder), else nil; OmniSpec is then its labels and answers.
	Omni     *omni.Thinker
	OmniSpec data.OmniSpec
	// OmniConfig is the thinker's config when the model is a Qwen2.5-Omni
	// thinker (also when only its adapters are built), else nil.
	OmniConfig *omni.Config
	// Enc is a Qwen2.5-Omni run's encoder-output cache, made when its first
	// manifest opens (nil: the towers run on every batch).
	Enc       *EncCache
	lastMedia *MediaPrep // the processor stage of the last omni manifest opened
}

// Close frees the stack's tensors.
func (c *Stack) Close() {
	if c.owned != nil {
		c.owned.Close()
	}
	if c.Set != nil {
		c.Set.Close()
	}
	if c.gates != nil {
		c.gates.Close()
	}
	if c.Omni != nil {
		c.Omni.Close() // its decoder is c.Model
		return
	}
	if c.Model != nil {
		c.Model.Close()
	}
}

// Sets says which datasets Build opens.
type Sets int

const (
	NoData   Sets = iota // model and adapters only (export)
	EvalData             // data.eval only (eval)
	AllData              // data.train and data.eval (train, validate)
)

// Build loads the model, injects the adapters and opens the data.
// Errors name the class of input at fault: the recipe's values
// (recipes.recipes.ErrRecipe), the model dir (inputerr.ErrModel), a manifest or its
// feature files (inputerr.ErrManifest, ErrFeatures).
func Build(cfg *recipes.Config, sets Sets) (*Stack, error) {
	c := &Stack{Cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	var err error
	if c.Dev, err = torch.ParseDevice(cfg.Run.Device); err != nil {
		return nil, fmt.Errorf("%w: run.device: %v", recipes.ErrRecipe, err)
	}
	if c.Dev.IsCUDA() && !torch.CUDAAvailable() {
		return nil, fmt.Errorf("%w: run.device %s but CUDA is not available (is this a CPU build? see README: GPU boxes)", recipes.ErrRecipe, c.Dev)
	}
	dt, err := torch.ParseDType(cfg.Model.DType)
	if err != nil {
		return nil, fmt.Errorf("%w: model.dtype: %v", recipes.ErrRecipe, err)
	}
	qk, err := quant.ParseKind(cfg.Model.Quantize)
	if err != nil {
		return nil, fmt.Errorf("%w: model.quantize: %v", recipes.ErrRecipe, err)
	}
	if IsOmniDir(cfg.Model.Path) {
		if err := c.buildOmni(cfg, sets, dt, qk); err != nil {
			return nil, err
		}
	} else if err := c.buildLLM(cfg, sets, dt, qk); err != nil {
		return nil, err
	}
	if err := c.inject(); err != nil {
		return nil, err
	}
	if c.Weights, err = gating.NewModalityWeights(cfg.Adapters.ModalityWeights); err != nil {
		return nil, fmt.Errorf("%w: adapters.modality_weights: %v", recipes.ErrRecipe, err)
	}
	c.Set.RecordNorms(c.Weights.NeedsNorms())
	if sets == AllData {
		if c.Train, err = c.Open(cfg.Data.Train); err != nil {
			return nil, DataErr("data.train", err)
		}
	}
	if sets != NoData && cfg.Data.Eval != "" {
		if c.Eval, err = c.Open(cfg.Data.Eval); err != nil {
			return nil, DataErr("data.eval", err)
		}
	}
	ok = true
	return c, nil
}

// buildLLM loads cfg's LLaMA-family model into c, with its "mose" section
// and (unless sets is NoData) its tokenizer.
func (c *Stack) buildLLM(cfg *recipes.Config, sets Sets, dt torch.DType, qk quant.Kind) error {
	var err error
	if c.Model, err = model.Load(cfg.Model.Path, model.Options{DType: dt, Device: c.Dev, TrainProjectors: cfg.Model.TrainProjectors, Quantize: qk}); err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	// The mose section and the tokenizer serve the data; an export of a plain
	// LLM's adapter needs neither.
	if c.Spec, err = data.ReadModelSpec(cfg.Model.Path); err != nil && sets != NoData {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	if sets != NoData {
		if c.Tok, err = tokenizer.Load(filepath.Join(cfg.Model.Path, "tokenizer.json")); err != nil {
			return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
		}
	}
	return nil
}

// inject builds the expert groups and gates on every target linear of the
// loaded model, and collects the trainable parameters.
func (c *Stack) inject() error {
	linears := map[string]*model.Linear{}
	var all []experts.Target
	for _, l := range c.Model.Linears() {
		linears[l.Name] = l
		all = append(all, experts.Target{Name: l.Name, In: l.In(), Out: l.Out()})
	}
	if err := c.buildAdapters(all); err != nil {
		return err
	}
	for _, m := range c.Set.Mixtures {
		linears[m.Name].Adapter = m
	}
	if c.Cfg.Model.TrainProjectors {
		for _, p := range c.Model.Projectors {
			for i, t := range p.Params() {
				c.Params = append(c.Params, Param{Name: projectorName(p, i), T: t, Decay: t.Dim() >= 2})
			}
		}
	}
	return nil
}

// buildAdapters makes the expert set and gates for the recipe's targets
// among all (every linear of the model) and lists their parameters.
func (c *Stack) buildAdapters(all []experts.Target) error {
	a := c.Cfg.Adapters
	ecfg := experts.Config{Method: a.Method, Targets: a.Targets, Rank: a.Rank, Alpha: a.Alpha, RSLoRA: a.RSLoRA,
		Dropout: a.Dropout, VisualExperts: a.Experts.Visual, NonVisualExperts: a.Experts.NonVisual,
		OmniExperts: a.Experts.Omni, Seed: uint64(c.Cfg.Run.Seed)}
	byName := map[string]experts.Target{}
	var names []string
	for _, t := range all {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	sel, err := ecfg.Select(names)
	if err != nil {
		return fmt.Errorf("%w: adapters.targets: %v", recipes.ErrRecipe, err)
	}
	var targets []experts.Target
	for _, n := range sel {
		targets = append(targets, byName[n])
	}
	c.gates = torch.NewScope()
	c.Tracker = &gating.Tracker{}
	gcfg := gating.Config{TopK: a.Gate.TopK, Temperature: a.Gate.Temperature, Noise: a.Gate.Noise}
	rng := rand.New(rand.NewPCG(uint64(c.Cfg.Run.Seed), 0x67617465))
	c.Set, err = experts.New(c.Dev, targets, ecfg, func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
		return gating.NewGate(c.gates, c.Dev, name, in, groups, K, gcfg, rng, a.Gate.InitStd, c.Tracker)
	})
	if err != nil {
		return fmt.Errorf("%w: adapters: %v", recipes.ErrRecipe, err)
	}
	for _, m := range c.Set.Mixtures {
		c.Params = append(c.Params, Param{Name: m.Name + ".A", T: m.A, Decay: true}, Param{Name: m.Name + ".B", T: m.B, Decay: true})
		if m.Gate != nil {
			c.Params = append(c.Params, Param{Name: m.Name + ".gate", T: m.Gate.Weight(), Decay: true})
		}
	}
	return nil
}

// BuildAdaptersOnly makes the adapters (and trained projector tensors) from
// the model's config alone, on the CPU, without loading its weights: what a
// PEFT export or an exact merge needs, so their memory stays near one shard
// plus the adapters.
func BuildAdaptersOnly(cfg *recipes.Config) (*Stack, error) {
	if IsOmniDir(cfg.Model.Path) {
		return buildOmniAdaptersOnly(cfg)
	}
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	if err := model.CheckAttached(cfg.Model.Path); err != nil { // a merge streams the (linked) base weights
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	c := &Stack{Cfg: cfg, Dev: torch.CPU}
	c.Spec, _ = data.ReadModelSpec(cfg.Model.Path) // described in the sidecar when present
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
		c.Close()
		return nil, err
	}
	if cfg.Model.TrainProjectors {
		c.owned = torch.NewScope()
		for _, t := range projectors {
			c.Params = append(c.Params, Param{Name: t.Name, T: c.owned.Zeros(t.Shape, torch.Float32, torch.CPU)})
		}
		if err := c.owned.Err(); err != nil {
			c.Close()
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

// Open reads a manifest against the model's spec and tokenizer (loaded on
// first use).
func (c *Stack) Open(manifest string) (*data.Dataset, error) {
	if c.Omni != nil {
		if c.Tok == nil {
			var err error
			if c.Tok, err = LoadOmniTokenizer(c.Cfg.Model.Path); err != nil {
				return nil, err
			}
		}
		pad, err := PadID(c.Tok, filepath.Join(c.Cfg.Model.Path, "tokenizer.json"))
		if err != nil {
			return nil, err
		}
		return c.openOmni(manifest, pad)
	}
	if c.Tok == nil {
		var err error
		if c.Spec, err = data.ReadModelSpec(c.Cfg.Model.Path); err != nil {
			return nil, err
		}
		if c.Tok, err = tokenizer.Load(filepath.Join(c.Cfg.Model.Path, "tokenizer.json")); err != nil {
			return nil, err
		}
	}
	pad, err := PadID(c.Tok, filepath.Join(c.Cfg.Model.Path, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	return data.Open(manifest, c.Spec, c.Tok, data.Options{Root: c.Cfg.Data.Root, MaxLen: c.Cfg.Data.MaxLen, PadID: pad})
}

// NewTrainLoader starts the training loader at sampler state st. Under data
// parallelism the sampler draws global batches of world × train.batch_size
// samples, the same on every rank, and this rank loads its slice.
func (c *Stack) NewTrainLoader(ctx context.Context, st data.SamplerState) (*data.Loader, *data.Sampler, error) {
	global := c.Cfg.Train.BatchSize * c.World()
	smp, err := data.NewSampler(c.Train.Lengths(), data.SamplerOptions{BatchSize: global,
		Seed: uint64(c.Cfg.Run.Seed), Shuffle: true, DropLast: true})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", recipes.ErrRecipe, err)
	}
	if st != (data.SamplerState{}) {
		if err := smp.Restore(st); err != nil {
			return nil, nil, fmt.Errorf("%w: the checkpoint's data position (epoch %d, batch %d) does not exist with %d samples in global batches of train.batch_size %d × %d processes (--nproc / WORLD_SIZE): "+
				"resume with the data.train, train.batch_size and process count it was written with, or from a checkpoint at an epoch boundary (%v)",
				checkpoint.ErrResume, st.Epoch, st.Cursor, c.Train.Len(), c.Cfg.Train.BatchSize, c.World(), err)
		}
	}
	if smp.BatchesPerEpoch() == 0 {
		return nil, nil, fmt.Errorf("%w: data.train has %d samples, fewer than train.batch_size %d × %d ranks", recipes.ErrRecipe, c.Train.Len(), c.Cfg.Train.BatchSize, c.World())
	}
	l := data.NewLoader(ctx, c.Train, smp, data.LoaderOptions{Mode: data.ModeTrain, Workers: c.Cfg.Data.Workers,
		Shard: c.Rank(), Shards: c.World()})
	return l, smp, nil
}

// PadID is the id batches are padded with: the tokenizer's pad token, or its
// EOS token when it has none (SmolLM2, LLaMA-3; what HF users set as
// pad_token). Padded positions are masked out of attention and loss, so any
// real id gives the same numbers; a tokenizer with neither is refused.
func PadID(tok *tokenizer.Tokenizer, path string) (int32, error) {
	if pad, ok := tok.Pad(); ok {
		return pad, nil
	}
	if eos, ok := tok.EOS(); ok {
		return eos, nil
	}
	return 0, fmt.Errorf("%w: %s has neither a pad nor an EOS token (set pad_token in tokenizer_config.json): batches need one to pad with", inputerr.ErrModel, path)
}

// IsProjector reports whether a parameter name is a projector's.
func IsProjector(name string) bool { return len(name) > 11 && name[:11] == "projectors." }

// Param is a trainable tensor under a stable name (for the optimizer state).
type Param struct {
	Name  string
	T     *torch.Tensor
	Decay bool // weight decay applies (matrices yes, biases no)
}

// CheckFinite refuses non-finite trained parameters (before a save or an
// export).
func CheckFinite(params []Param) error {
	s := torch.NewScope()
	defer s.Close()
	ts := make([]checkpoint.Named, len(params))
	for i, p := range params {
		ts[i] = checkpoint.Named{Name: p.Name, T: p.T}
	}
	name, err := checkpoint.NonFinite(s, ts)
	if err == nil && name != "" {
		err = fmt.Errorf("%w: %s holds NaN or Inf values: refusing to use it", inputerr.ErrAdapter, name)
	}
	return err
}

// DataErr names the class of a dataset's error: a feature file it names
// (missing, malformed, wrong shape or dtype, non-finite) or else the
// manifest itself, with the recipe key it came from.
func DataErr(key string, err error) error {
	for _, e := range []error{data.ErrMissingFile, data.ErrShape, data.ErrNonFinite, npy.ErrFormat, npy.ErrDType, npy.ErrFortranOrder} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %s: %w", inputerr.ErrFeatures, key, err)
		}
	}
	return fmt.Errorf("%w: %s: %w", inputerr.ErrManifest, key, err)
}
