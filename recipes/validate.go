package recipes

import (
	"math"
	"reflect"
	"slices"
	"strings"
)

// Allowed values of the enumerated keys.
var (
	Methods = []string{"mose", "lora"}
	// Quantizations are the values of model.quantize.
	Quantizations   = []string{"none", "nf4", "int8"}
	TargetModules   = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	ModalityWeights = []string{"static", "token-balanced", "contribution"}
	DTypes          = []string{"float32", "bfloat16", "float16"}
	Schedules       = []string{"cosine", "constant", "linear"}
	EvalModes       = []string{"score", "generate"}
	TauModes        = []string{"fixed", "adaptive"}
	// EvalSubsets and EvalMetrics make up train.keep_best_by: "<subset>.<metric>".
	EvalSubsets = []string{"all", "video-aligned", "audio-aligned", "consistent"}
	EvalMetrics = []string{"accuracy", "uar", "weighted_f1", "macro_f1", "conflict_gap"}
)

// validDevice accepts cpu, cuda and cuda:N.
func validDevice(d string) bool {
	if d == "cpu" || d == "cuda" {
		return true
	}
	n, ok := strings.CutPrefix(d, "cuda:")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// Validate checks every value's range and the rules between keys, and
// returns all problems at once (errors.Join of *KeyError wrapping ErrRecipe),
// or nil. The errors name the key but not its source; Load adds that.
func (c *Config) Validate() error {
	return c.validate().err()
}

// Upper bounds of the size keys: far above any real run, low enough that a
// typo (rank 2e9) is refused here instead of exhausting memory. The trainer
// also bounds them by the model's dimensions.
var sizeBounds = []struct {
	key string
	max int
	get func(c *Config) int
}{
	{"adapters.rank", 1 << 16, func(c *Config) int { return c.Adapters.Rank }},
	{"adapters.experts.visual", 1024, func(c *Config) int { return c.Adapters.Experts.Visual }},
	{"adapters.experts.nonvisual", 1024, func(c *Config) int { return c.Adapters.Experts.NonVisual }},
	{"adapters.experts.omni", 1024, func(c *Config) int { return c.Adapters.Experts.Omni }},
	{"adapters.gate.top_k", 1024, func(c *Config) int { return c.Adapters.Gate.TopK }},
	{"data.max_len", 1 << 20, func(c *Config) int { return c.Data.MaxLen }},
	{"data.workers", 1024, func(c *Config) int { return c.Data.Workers }},
	{"data.synth_samples", 1 << 27, func(c *Config) int { return c.Data.SynthSamples }},
	{"data.max_frame_pixels", 1 << 30, func(c *Config) int { return c.Data.MaxFramePixels }},
	{"data.max_frames", 1 << 16, func(c *Config) int { return c.Data.MaxFrames }},
	{"run.threads", 4096, func(c *Config) int { return c.Run.Threads }},
	{"run.world_size", 1 << 16, func(c *Config) int { return c.Run.WorldSize }},
	{"train.batch_size", 1 << 20, func(c *Config) int { return c.Train.BatchSize }},
	{"train.grad_accum", 1 << 20, func(c *Config) int { return c.Train.GradAccum }},
	{"eval.batch_size", 1 << 20, func(c *Config) int { return c.Eval.BatchSize }},
	{"eval.max_new_tokens", 1 << 16, func(c *Config) int { return c.Eval.MaxNewTokens }},
}

func (c *Config) validateSizes(p *problems) {
	for _, b := range sizeBounds {
		if v := b.get(c); v > b.max {
			p.add(b.key, "must be <= %d, got %d", b.max, v)
		}
	}
}

func (c *Config) validate() problems {
	var nonFinite, p problems
	c.validateFinite(&nonFinite)
	c.validateSizes(&p)
	c.validateRun(&p)
	c.validateAdapters(&p)
	c.validateData(&p)
	c.validateTrain(&p)
	c.validateEval(&p)
	// A NaN fails every range check too; report it once.
	skip := map[string]bool{}
	for _, e := range nonFinite {
		skip[e.Key] = true
	}
	for _, e := range p {
		if !skip[e.Key] {
			nonFinite = append(nonFinite, e)
		}
	}
	return nonFinite
}

// validateFinite rejects NaN and ±Inf in every float key (decoding already
// does for values read from text; this covers Configs built in code).
func (c *Config) validateFinite(p *problems) {
	v := reflect.ValueOf(c).Elem()
	for _, k := range keyTable {
		f := v.FieldByIndex(k.index)
		switch f.Kind() {
		case reflect.Float64:
			if x := f.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				p.add(k.key, "must be a finite number, got %v", x)
			}
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Float64 {
				for i := range f.Len() {
					if x := f.Index(i).Float(); math.IsNaN(x) || math.IsInf(x, 0) {
						p.add(k.key, "item %d must be a finite number, got %v", i, x)
					}
				}
			}
		}
	}
}

func (c *Config) validateRun(p *problems) {
	r := c.Run
	if r.Name == "" {
		p.add("run.name", "is required")
	} else if strings.ContainsAny(r.Name, `/\`) || r.Name == "." || r.Name == ".." {
		p.add("run.name", "must be a plain name without path separators, got %q", r.Name)
	}
	if r.OutputDir == "" {
		p.add("run.output_dir", "is required")
	}
	if !validDevice(r.Device) {
		p.add("run.device", "must be cpu, cuda or cuda:N, got %q", r.Device)
	}
	if r.WorldSize < 0 {
		p.add("run.world_size", "must be >= 0 (0 = the launch's world size), got %d", r.WorldSize)
	}
	if r.Threads < 0 {
		p.add("run.threads", "must be >= 0 (0 = libtorch's default), got %d", r.Threads)
	}
	m := c.Model
	if m.Path == "" {
		p.add("model.path", "is required (a model directory in Hugging Face layout)")
	}
	oneOf(p, "model.dtype", m.DType, DTypes)
	oneOf(p, "model.quantize", m.Quantize, Quantizations)
}

func (c *Config) validateAdapters(p *problems) {
	a := c.Adapters
	oneOf(p, "adapters.method", a.Method, Methods)
	if len(a.Targets) == 0 {
		p.add("adapters.targets", "must name at least one module of %v", TargetModules)
	}
	seen := map[string]bool{}
	for _, t := range a.Targets {
		switch {
		case !slices.Contains(TargetModules, t):
			p.add("adapters.targets", "unknown module %q (want some of %v)", t, TargetModules)
		case seen[t]:
			p.add("adapters.targets", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if a.Rank < 1 {
		p.add("adapters.rank", "must be >= 1, got %d", a.Rank)
	}
	if !(a.Alpha > 0) {
		p.add("adapters.alpha", "must be > 0, got %v", a.Alpha)
	}
	if !(a.Dropout >= 0 && a.Dropout < 1) {
		p.add("adapters.dropout", "must be in [0, 1), got %v", a.Dropout)
	}
	e := a.Experts
	for _, g := range []struct {
		key string
		n   int
	}{{"adapters.experts.visual", e.Visual}, {"adapters.experts.nonvisual", e.NonVisual}, {"adapters.experts.omni", e.Omni}} {
		if g.n < 0 {
			p.add(g.key, "must be >= 0 (0 disables the group), got %d", g.n)
		}
	}
	if a.Method == "mose" && e.Visual <= 0 && e.NonVisual <= 0 && e.Omni <= 0 {
		p.add("adapters.experts", "method mose needs at least one expert in visual, nonvisual or omni")
	}
	g := a.Gate
	if g.TopK < 0 {
		p.add("adapters.gate.top_k", "must be >= 0 (0 = dense), got %d", g.TopK)
	} else if a.Method == "mose" {
		// Only groups with several experts have a router; top_k must fit the smallest.
		smallest := 0
		for _, n := range []int{e.Visual, e.NonVisual, e.Omni} {
			if n > 1 && (smallest == 0 || n < smallest) {
				smallest = n
			}
		}
		if smallest > 0 && g.TopK > smallest {
			p.add("adapters.gate.top_k", "must be <= %d, the smallest routed expert group, got %d", smallest, g.TopK)
		}
	}
	if !(g.Temperature > 0) {
		p.add("adapters.gate.temperature", "must be > 0, got %v", g.Temperature)
	}
	if g.Noise < 0 {
		p.add("adapters.gate.noise", "must be >= 0, got %v", g.Noise)
	}
	if g.InitStd < 0 {
		p.add("adapters.gate.init_std", "must be >= 0, got %v", g.InitStd)
	}
	oneOf(p, "adapters.modality_weights", a.ModalityWeights, ModalityWeights)
	if c.Loss.LoadBalance < 0 {
		p.add("loss.load_balance", "must be >= 0, got %v", c.Loss.LoadBalance)
	}
	if c.Loss.ZLoss < 0 {
		p.add("loss.z_loss", "must be >= 0, got %v", c.Loss.ZLoss)
	}
}

func (c *Config) validateData(p *problems) {
	d := c.Data
	if d.Train == "" {
		p.add("data.train", "is required (a train manifest .jsonl)")
	}
	if d.MaxLen < 1 {
		p.add("data.max_len", "must be >= 1, got %d", d.MaxLen)
	}
	if d.Workers < 1 {
		p.add("data.workers", "must be >= 1, got %d", d.Workers)
	}
	if !(d.FPS > 0 && d.FPS <= 120) {
		p.add("data.fps", "must be in (0, 120] frames per second, got %v", d.FPS)
	}
	if !(d.MaxSeconds > 0 && d.MaxSeconds <= 86400) {
		p.add("data.max_seconds", "must be in (0, 86400], got %v", d.MaxSeconds)
	}
	if d.MaxFramePixels < 1 {
		p.add("data.max_frame_pixels", "must be >= 1, got %d", d.MaxFramePixels)
	}
	if d.MaxFrames < 1 {
		p.add("data.max_frames", "must be >= 1, got %d", d.MaxFrames)
	}
	if d.Synth != "" && d.SynthSamples < 1 {
		p.add("data.synth_samples", "must be >= 1, got %d", d.SynthSamples)
	}
}

func (c *Config) validateTrain(p *problems) {
	t := c.Train
	if t.MaxSteps < 0 {
		p.add("train.max_steps", "must be >= 0 (0 = use train.epochs), got %d", t.MaxSteps)
	}
	if t.MaxSteps == 0 && t.Epochs < 1 {
		p.add("train.epochs", "must be >= 1 when train.max_steps is 0, got %d", t.Epochs)
	} else if t.Epochs < 0 {
		p.add("train.epochs", "must be >= 0, got %d", t.Epochs)
	}
	if t.BatchSize < 1 {
		p.add("train.batch_size", "must be >= 1, got %d", t.BatchSize)
	}
	if t.GradAccum < 1 {
		p.add("train.grad_accum", "must be >= 1, got %d", t.GradAccum)
	}
	if !(t.LR > 0) {
		p.add("train.lr", "must be > 0, got %v", t.LR)
	}
	oneOf(p, "train.schedule", t.Schedule, Schedules)
	if t.WarmupSteps < 0 {
		p.add("train.warmup_steps", "must be >= 0, got %d", t.WarmupSteps)
	} else if t.MaxSteps > 0 && t.WarmupSteps > t.MaxSteps {
		p.add("train.warmup_steps", "must be <= train.max_steps (%d), got %d", t.MaxSteps, t.WarmupSteps)
	}
	if t.MinLR < 0 {
		p.add("train.min_lr", "must be >= 0, got %v", t.MinLR)
	} else if t.LR > 0 && t.MinLR > t.LR {
		p.add("train.min_lr", "must be <= train.lr (%v), got %v", t.LR, t.MinLR)
	}
	if t.WeightDecay < 0 {
		p.add("train.weight_decay", "must be >= 0, got %v", t.WeightDecay)
	}
	if len(t.Betas) != 2 {
		p.add("train.betas", "must be two numbers [beta1, beta2], got %v", t.Betas)
	}
	for i, b := range t.Betas {
		if !(b >= 0 && b < 1) {
			p.add("train.betas", "item %d must be in [0, 1), got %v", i, b)
		}
	}
	if !(t.Eps > 0) {
		p.add("train.eps", "must be > 0, got %v", t.Eps)
	}
	if t.MaxGradNorm < 0 {
		p.add("train.max_grad_norm", "must be >= 0 (0 = no clipping), got %v", t.MaxGradNorm)
	}
	for _, iv := range []struct {
		key string
		n   int
	}{{"train.log_every", t.LogEvery}, {"train.eval_every", t.EvalEvery}, {"train.save_every", t.SaveEvery}, {"train.early_stopping", t.EarlyStopping}} {
		if iv.n < 0 {
			p.add(iv.key, "must be >= 0 (0 = off), got %d", iv.n)
		}
	}
	if t.KeepLast < 1 {
		p.add("train.keep_last", "must be >= 1, got %d", t.KeepLast)
	}
	if t.KeepBestBy != "" {
		subset, metric, ok := strings.Cut(t.KeepBestBy, ".")
		switch {
		case !ok || !slices.Contains(EvalSubsets, subset) || !slices.Contains(EvalMetrics, metric):
			p.add("train.keep_best_by", "must be <subset>.<metric> with subset in %v and metric in %v (e.g. all.accuracy), got %q",
				EvalSubsets, EvalMetrics, t.KeepBestBy)
		case c.Data.Eval == "":
			p.add("train.keep_best_by", "needs data.eval (an eval manifest) to measure %s", t.KeepBestBy)
		}
	}
	if t.EarlyStopping > 0 {
		if t.KeepBestBy == "" {
			p.add("train.early_stopping", "needs train.keep_best_by, the metric to watch")
		}
		if t.EvalEvery == 0 {
			p.add("train.early_stopping", "needs train.eval_every > 0")
		}
	}
	if t.MaxNonFinite < 1 {
		p.add("train.max_nonfinite", "must be >= 1, got %d", t.MaxNonFinite)
	}
}

func (c *Config) validateEval(p *problems) {
	e := c.Eval
	oneOf(p, "eval.mode", e.Mode, EvalModes)
	if e.BatchSize < 0 {
		p.add("eval.batch_size", "must be >= 0 (0 = train.batch_size), got %d", e.BatchSize)
	}
	if e.MaxNewTokens < 1 {
		p.add("eval.max_new_tokens", "must be >= 1, got %d", e.MaxNewTokens)
	}
	if e.Temperature < 0 {
		p.add("eval.temperature", "must be >= 0 (0 = greedy), got %v", e.Temperature)
	}
	if e.TopP <= 0 || e.TopP > 1 {
		p.add("eval.top_p", "must be in (0, 1], got %v", e.TopP)
	}
	ar := e.AR
	if l := ar.Layers; len(l) != 0 && (len(l) != 2 || l[0] < 0 || l[0] > l[1]) {
		p.add("eval.ar.layers", "must be empty (all but the first two) or [first, last] with 0 <= first <= last, got %v", l)
	}
	if !(ar.Beta >= 0 && ar.Beta <= 1) {
		p.add("eval.ar.beta", "must be in [0, 1], got %v", ar.Beta)
	}
	oneOf(p, "eval.ar.tau", ar.Tau, TauModes)
	if !(ar.TauValue >= 0 && ar.TauValue <= 1) {
		p.add("eval.ar.tau_value", "must be in [0, 1] (a share of attention mass), got %v", ar.TauValue)
	}
}

func oneOf(p *problems, key, val string, allowed []string) {
	if !slices.Contains(allowed, val) {
		p.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), val)
	}
}
