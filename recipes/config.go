// Package recipes defines mose's training recipe: a typed Config read from
// YAML with defaults, `--set key=value` overrides and MOSE_* environment
// variables (precedence: flag > env > file > default), validated with errors
// that name the key and the file. It has no cgo and no libtorch.
//
// Load reads and validates a recipe (a file, or an embedded preset such as
// "demo-tiny"); Parse reads a saved one without the environment; YAML and
// Hash give the resolved recipe saved with each run; ExactnessDiff says which
// changes break an exact resume. Relative paths in a recipe are relative to
// the working directory (mose runs from the repository root), not to the
// recipe file, and Load makes them absolute.
package recipes

// Config is a resolved recipe. The yaml/mapstructure keys are the recipe's
// keys; docs and scripts rely on them. Defaults are listed field by field and
// returned by Defaults; keys without a stated default default to the zero
// value.
type Config struct {
	Run      Run      `mapstructure:"run" yaml:"run"`
	Model    Model    `mapstructure:"model" yaml:"model"`
	Adapters Adapters `mapstructure:"adapters" yaml:"adapters"`
	Loss     Loss     `mapstructure:"loss" yaml:"loss"`
	Data     Data     `mapstructure:"data" yaml:"data"`
	Train    Train    `mapstructure:"train" yaml:"train"`
	Eval     Eval     `mapstructure:"eval" yaml:"eval"`
}

// Run names the run and where it writes.
type Run struct {
	Name      string `mapstructure:"name" yaml:"name"`             // default: recipe file name without extension
	OutputDir string `mapstructure:"output_dir" yaml:"output_dir"` // default: runs/<name>; made absolute
	Seed      int64  `mapstructure:"seed" yaml:"seed"`             // default 1
	Device    string `mapstructure:"device" yaml:"device"`         // cpu | cuda | cuda:N (default cpu)
	Threads   int    `mapstructure:"threads" yaml:"threads"`       // libtorch intra-op threads; 0 = libtorch's default
	// TensorBoard writes every metrics.jsonl scalar as TensorBoard event
	// files under <output_dir>/tensorboard/ as training goes (default true).
	TensorBoard bool `mapstructure:"tensorboard" yaml:"tensorboard"`
	// WorldSize is the number of data-parallel processes (ranks), each with
	// train.batch_size samples per micro-batch. mose records the launch's
	// world size here in the recipe it saves; in a recipe, 0 (the default)
	// takes the launch's, and any other value must equal it.
	WorldSize int `mapstructure:"world_size" yaml:"world_size"`
}

// Model is the frozen MLLM.
type Model struct {
	Path            string `mapstructure:"path" yaml:"path"`                         // HF-layout model dir (required; made absolute)
	DType           string `mapstructure:"dtype" yaml:"dtype"`                       // float32 | bfloat16 | float16 (default float32)
	TrainProjectors bool   `mapstructure:"train_projectors" yaml:"train_projectors"` // train the modality projectors too (default false)
	// Quantize stores the frozen decoder linears quantized: none (default),
	// nf4 (torchao's to_nf4 layout) or int8 (per output channel).
	Quantize string `mapstructure:"quantize" yaml:"quantize"`
	// Create makes a random model with `mose init-model --preset <create>` at
	// Path when Path does not exist yet ("" = never; the demo uses "tiny").
	Create     string `mapstructure:"create" yaml:"create"`
	CreateSeed int64  `mapstructure:"create_seed" yaml:"create_seed"` // seed of that random model (default 1)
}

// Adapters configures LoRA / MoSE. With method lora (one plain LoRA per
// target, PEFT-compatible) Experts, Gate, ModalityWeights and Loss are unused.
type Adapters struct {
	Method  string   `mapstructure:"method" yaml:"method"`   // mose | lora (default mose)
	Targets []string `mapstructure:"targets" yaml:"targets"` // default [q_proj, v_proj]
	Rank    int      `mapstructure:"rank" yaml:"rank"`       // default 16
	Alpha   float64  `mapstructure:"alpha" yaml:"alpha"`     // default 32
	RSLoRA  bool     `mapstructure:"rslora" yaml:"rslora"`   // scale by alpha/sqrt(rank) instead of alpha/rank (default false)
	Dropout float64  `mapstructure:"dropout" yaml:"dropout"` // default 0.05
	Experts Experts  `mapstructure:"experts" yaml:"experts"`
	Gate    Gate     `mapstructure:"gate" yaml:"gate"`
	// ModalityWeights: static | token-balanced | contribution (default static).
	ModalityWeights string `mapstructure:"modality_weights" yaml:"modality_weights"`
}

// Experts are the expert counts per group (0 disables a group; mose only).
type Experts struct {
	Visual    int `mapstructure:"visual" yaml:"visual"`       // default 3
	NonVisual int `mapstructure:"nonvisual" yaml:"nonvisual"` // default 3
	Omni      int `mapstructure:"omni" yaml:"omni"`           // default 1
}

// Gate configures the routers of multi-expert groups.
type Gate struct {
	TopK        int     `mapstructure:"top_k" yaml:"top_k"`             // default 1; 0 = dense
	Temperature float64 `mapstructure:"temperature" yaml:"temperature"` // default 1
	Noise       float64 `mapstructure:"noise" yaml:"noise"`             // default 0
	InitStd     float64 `mapstructure:"init_std" yaml:"init_std"`       // default 0.02
}

// Loss weights the auxiliary router losses.
type Loss struct {
	LoadBalance float64 `mapstructure:"load_balance" yaml:"load_balance"` // λ_lb, default 0.01
	ZLoss       float64 `mapstructure:"z_loss" yaml:"z_loss"`             // λ_z, default 0.001
}

// Data says where samples come from.
type Data struct {
	Train   string `mapstructure:"train" yaml:"train"`     // train manifest (required; made absolute)
	Eval    string `mapstructure:"eval" yaml:"eval"`       // eval manifest ("" = no eval; made absolute)
	Root    string `mapstructure:"root" yaml:"root"`       // feature root; "" (default) = each manifest's directory
	MaxLen  int    `mapstructure:"max_len" yaml:"max_len"` // default 1024
	Workers int    `mapstructure:"workers" yaml:"workers"` // loader goroutines, default 2
	// Synth generates the synthetic dataset (`mose synth-data`) at the
	// manifests' directory when Train does not exist ("" = never).
	Synth        string `mapstructure:"synth" yaml:"synth"`
	SynthSamples int    `mapstructure:"synth_samples" yaml:"synth_samples"` // default 2160
	SynthSeed    uint64 `mapstructure:"synth_seed" yaml:"synth_seed"`       // default 1
	// The media samples of a Qwen2.5-Omni model's manifest (video, audio,
	// image files): FPS is the rate frames are sampled at (default 2, as
	// qwen-omni-utils); UseAudioInVideo takes a video's own audio track when
	// the sample has no separate audio (default false); CacheDir holds the
	// data cache, processor outputs and encoder outputs ("" = the default,
	// ${MOSE_CACHE:-$HOME/.cache/mose}/data); MaxSeconds, MaxFramePixels and
	// MaxFrames bound what a media file may hold (defaults 600 s, 3840×2160,
	// 768 frames, package media's).
	FPS             float64 `mapstructure:"fps" yaml:"fps"`
	UseAudioInVideo bool    `mapstructure:"use_audio_in_video" yaml:"use_audio_in_video"`
	CacheDir        string  `mapstructure:"cache_dir" yaml:"cache_dir"`
	// EncoderCache keeps the frozen towers' outputs in the data cache
	// (default true); false runs the towers on every batch and reads and
	// writes no encoder entry. Either way each sample's outputs are computed
	// on its own, so the numbers are the same.
	EncoderCache   bool    `mapstructure:"encoder_cache" yaml:"encoder_cache"`
	MaxSeconds     float64 `mapstructure:"max_seconds" yaml:"max_seconds"`
	MaxFramePixels int     `mapstructure:"max_frame_pixels" yaml:"max_frame_pixels"`
	MaxFrames      int     `mapstructure:"max_frames" yaml:"max_frames"`
}

// Train is the optimisation schedule and the bookkeeping intervals.
type Train struct {
	MaxSteps    int       `mapstructure:"max_steps" yaml:"max_steps"`         // optimizer steps; 0 = use epochs
	Epochs      int       `mapstructure:"epochs" yaml:"epochs"`               // used when max_steps is 0 (default 1)
	BatchSize   int       `mapstructure:"batch_size" yaml:"batch_size"`       // samples per micro-batch, default 8
	GradAccum   int       `mapstructure:"grad_accum" yaml:"grad_accum"`       // micro-batches per step, default 1
	LR          float64   `mapstructure:"lr" yaml:"lr"`                       // peak learning rate, default 1e-4
	Schedule    string    `mapstructure:"schedule" yaml:"schedule"`           // cosine | constant | linear (default cosine)
	WarmupSteps int       `mapstructure:"warmup_steps" yaml:"warmup_steps"`   // linear warmup from 0, default 0
	MinLR       float64   `mapstructure:"min_lr" yaml:"min_lr"`               // end of the cosine/linear decay, default 0
	WeightDecay float64   `mapstructure:"weight_decay" yaml:"weight_decay"`   // AdamW decoupled, default 0
	Betas       []float64 `mapstructure:"betas" yaml:"betas"`                 // default [0.9, 0.999]
	Eps         float64   `mapstructure:"eps" yaml:"eps"`                     // default 1e-8
	MaxGradNorm float64   `mapstructure:"max_grad_norm" yaml:"max_grad_norm"` // 0 = no clipping; default 1
	LogEvery    int       `mapstructure:"log_every" yaml:"log_every"`         // default 10
	EvalEvery   int       `mapstructure:"eval_every" yaml:"eval_every"`       // 0 = off
	SaveEvery   int       `mapstructure:"save_every" yaml:"save_every"`       // 0 = only at the end
	KeepLast    int       `mapstructure:"keep_last" yaml:"keep_last"`         // default 3
	// KeepBestBy is the eval metric whose best checkpoint rotation keeps,
	// "<subset>.<metric>" (e.g. "all.accuracy", see EvalSubsets and
	// EvalMetrics; needs data.eval); "" = none (default).
	KeepBestBy    string `mapstructure:"keep_best_by" yaml:"keep_best_by"`
	EarlyStopping int    `mapstructure:"early_stopping" yaml:"early_stopping"` // evals of keep_best_by without improvement before stopping; 0 = off
	MaxNonFinite  int    `mapstructure:"max_nonfinite" yaml:"max_nonfinite"`   // consecutive skipped steps before aborting, default 5
	// ActivationCheckpointing drops each decoder layer's activations in the
	// forward pass and recomputes them, layer by layer, during backward
	// (default false). The gradients are the same bit for bit, so it is not an
	// exactness key: a resume may turn it on or off.
	ActivationCheckpointing bool `mapstructure:"activation_checkpointing" yaml:"activation_checkpointing"`
}

// Eval configures evaluation.
type Eval struct {
	Mode         string `mapstructure:"mode" yaml:"mode"`                     // score | generate (default score)
	BatchSize    int    `mapstructure:"batch_size" yaml:"batch_size"`         // default: train.batch_size
	MaxNewTokens int    `mapstructure:"max_new_tokens" yaml:"max_new_tokens"` // generate mode, default 8
	// Temperature 0 decodes greedily; > 0 samples (seeded by run.seed) from
	// softmax(logits/temperature) restricted to the top-p nucleus.
	Temperature float64 `mapstructure:"temperature" yaml:"temperature"` // generate mode, default 0 (greedy)
	TopP        float64 `mapstructure:"top_p" yaml:"top_p"`             // nucleus mass in (0, 1], default 1
	AR          AR      `mapstructure:"ar" yaml:"ar"`
}

// AR configures Attention Reallocation at inference.
type AR struct {
	Enabled   bool    `mapstructure:"enabled" yaml:"enabled"`       // default false
	Layers    []int   `mapstructure:"layers" yaml:"layers"`         // [first, last] inclusive; default: all but the first two
	Beta      float64 `mapstructure:"beta" yaml:"beta"`             // fraction of audio mass moved, default 0.5
	Tau       string  `mapstructure:"tau" yaml:"tau"`               // fixed | adaptive (default adaptive)
	TauValue  float64 `mapstructure:"tau_value" yaml:"tau_value"`   // fixed threshold on ρ, default 0.5
	Kappa     float64 `mapstructure:"kappa" yaml:"kappa"`           // adaptive: mean + κ·std, default 1
	DumpStats bool    `mapstructure:"dump_stats" yaml:"dump_stats"` // write attention mass per layer/head (default false)
}
