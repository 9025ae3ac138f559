package recipes

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func validConfig() *Config {
	c := Defaults()
	c.Run.Name, c.Run.OutputDir = "x", "/runs/x"
	c.Model.Path, c.Data.Train, c.Data.Eval = "/m", "/d/train.jsonl", "/d/eval.jsonl"
	return &c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"lora ignores experts", func(c *Config) {
			c.Adapters.Method, c.Adapters.Experts = "lora", Experts{}
			c.Adapters.Gate.TopK = 9
		}, ""},
		{"dense gate", func(c *Config) { c.Adapters.Gate.TopK = 0 }, ""},
		{"top_k equal to smallest routed group", func(c *Config) { c.Adapters.Gate.TopK = 3 }, ""},
		{"single-expert groups have no router", func(c *Config) {
			c.Adapters.Experts = Experts{Visual: 1, NonVisual: 1}
			c.Adapters.Gate.TopK = 4
		}, ""},
		{"epochs used", func(c *Config) { c.Train.MaxSteps, c.Train.Epochs = 0, 2 }, ""},
		{"epochs unused", func(c *Config) { c.Train.MaxSteps, c.Train.Epochs = 10, 0 }, ""},
		{"keep_best_by", func(c *Config) { c.Train.KeepBestBy = "audio-aligned.conflict_gap" }, ""},
		{"ar layers", func(c *Config) { c.Eval.AR.Layers = []int{0, 0} }, ""},
		{"cuda:N", func(c *Config) { c.Run.Device = "cuda:12" }, ""},

		{"no name", func(c *Config) { c.Run.Name = "" }, "run.name"},
		{"name with slash", func(c *Config) { c.Run.Name = "a/b" }, "run.name"},
		{"no output dir", func(c *Config) { c.Run.OutputDir = "" }, "run.output_dir"},
		{"device cuda:", func(c *Config) { c.Run.Device = "cuda:" }, "run.device"},
		{"threads", func(c *Config) { c.Run.Threads = -1 }, "run.threads"},
		{"dtype", func(c *Config) { c.Model.DType = "fp16" }, "model.dtype"},
		{"no targets", func(c *Config) { c.Adapters.Targets = nil }, "adapters.targets"},
		{"rank", func(c *Config) { c.Adapters.Rank = 0 }, "adapters.rank"},
		{"alpha", func(c *Config) { c.Adapters.Alpha = 0 }, "adapters.alpha"},
		{"dropout 1", func(c *Config) { c.Adapters.Dropout = 1 }, "adapters.dropout"},
		{"negative experts", func(c *Config) { c.Adapters.Experts.Omni = -1 }, "adapters.experts.omni"},
		{"mose without experts", func(c *Config) { c.Adapters.Experts = Experts{} }, "adapters.experts"},
		{"negative top_k", func(c *Config) { c.Adapters.Gate.TopK = -1 }, "adapters.gate.top_k"},
		{"top_k above smallest group", func(c *Config) {
			c.Adapters.Experts = Experts{Visual: 4, NonVisual: 2, Omni: 1}
			c.Adapters.Gate.TopK = 3
		}, "adapters.gate.top_k"},
		{"temperature", func(c *Config) { c.Adapters.Gate.Temperature = 0 }, "adapters.gate.temperature"},
		{"noise", func(c *Config) { c.Adapters.Gate.Noise = -0.1 }, "adapters.gate.noise"},
		{"modality weights", func(c *Config) { c.Adapters.ModalityWeights = "dynamic" }, "adapters.modality_weights"},
		{"load balance", func(c *Config) { c.Loss.LoadBalance = -1 }, "loss.load_balance"},
		{"max_len", func(c *Config) { c.Data.MaxLen = 0 }, "data.max_len"},
		{"workers", func(c *Config) { c.Data.Workers = 0 }, "data.workers"},
		{"fps 0", func(c *Config) { c.Data.FPS = 0 }, "data.fps"},
		{"fps NaN", func(c *Config) { c.Data.FPS = math.NaN() }, "data.fps"},
		{"fps beyond 120", func(c *Config) { c.Data.FPS = 121 }, "data.fps"},
		{"max_seconds 0", func(c *Config) { c.Data.MaxSeconds = 0 }, "data.max_seconds"},
		{"max_frame_pixels 0", func(c *Config) { c.Data.MaxFramePixels = 0 }, "data.max_frame_pixels"},
		{"max_frame_pixels beyond bound", func(c *Config) { c.Data.MaxFramePixels = 1<<30 + 1 }, "data.max_frame_pixels"},
		{"max_frames 0", func(c *Config) { c.Data.MaxFrames = 0 }, "data.max_frames"},
		{"max_steps", func(c *Config) { c.Train.MaxSteps = -1 }, "train.max_steps"},
		{"epochs when max_steps is 0", func(c *Config) { c.Train.MaxSteps, c.Train.Epochs = 0, 0 }, "train.epochs"},
		{"batch", func(c *Config) { c.Train.BatchSize = 0 }, "train.batch_size"},
		{"grad accum", func(c *Config) { c.Train.GradAccum = 0 }, "train.grad_accum"},
		{"lr 0", func(c *Config) { c.Train.LR = 0 }, "train.lr"},
		{"lr NaN", func(c *Config) { c.Train.LR = math.NaN() }, "train.lr"},
		{"warmup", func(c *Config) { c.Train.WarmupSteps = -1 }, "train.warmup_steps"},
		{"warmup beyond max_steps", func(c *Config) { c.Train.MaxSteps, c.Train.WarmupSteps = 10, 11 }, "train.warmup_steps"},
		{"negative min_lr", func(c *Config) { c.Train.MinLR = -1e-9 }, "train.min_lr"},
		{"weight decay", func(c *Config) { c.Train.WeightDecay = -0.1 }, "train.weight_decay"},
		{"one beta", func(c *Config) { c.Train.Betas = []float64{0.9} }, "train.betas"},
		{"beta 1", func(c *Config) { c.Train.Betas = []float64{0.9, 1} }, "train.betas"},
		{"beta Inf", func(c *Config) { c.Train.Betas = []float64{0.9, math.Inf(1)} }, "train.betas"},
		{"eps", func(c *Config) { c.Train.Eps = 0 }, "train.eps"},
		{"grad norm", func(c *Config) { c.Train.MaxGradNorm = -1 }, "train.max_grad_norm"},
		{"eval_every", func(c *Config) { c.Train.EvalEvery = -1 }, "train.eval_every"},
		{"keep_last", func(c *Config) { c.Train.KeepLast = 0 }, "train.keep_last"},
		{"keep_best_by subset", func(c *Config) { c.Train.KeepBestBy = "train.accuracy" }, "train.keep_best_by"},
		{"keep_best_by without dot", func(c *Config) { c.Train.KeepBestBy = "accuracy" }, "train.keep_best_by"},
		{"early stopping without metric", func(c *Config) { c.Train.EarlyStopping, c.Train.EvalEvery = 3, 10 }, "train.early_stopping"},
		{"max_nonfinite", func(c *Config) { c.Train.MaxNonFinite = 0 }, "train.max_nonfinite"},
		{"eval mode", func(c *Config) { c.Eval.Mode = "rank" }, "eval.mode"},
		{"max_new_tokens", func(c *Config) { c.Eval.MaxNewTokens = 0 }, "eval.max_new_tokens"},
		{"temperature", func(c *Config) { c.Eval.Temperature = -1 }, "eval.temperature"},
		{"top_p", func(c *Config) { c.Eval.TopP = 0 }, "eval.top_p"},
		{"ar layers of three", func(c *Config) { c.Eval.AR.Layers = []int{1, 2, 3} }, "eval.ar.layers"},
		{"ar negative layer", func(c *Config) { c.Eval.AR.Layers = []int{-1, 2} }, "eval.ar.layers"},
		{"ar beta", func(c *Config) { c.Eval.AR.Beta = 1.5 }, "eval.ar.beta"},
		{"ar tau", func(c *Config) { c.Eval.AR.Tau = "auto" }, "eval.ar.tau"},
		{"ar tau value", func(c *Config) { c.Eval.AR.TauValue = -0.1 }, "eval.ar.tau_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			kes := keyErrors(err)
			if len(kes) != 1 || kes[0].Key != tt.key || kes[0].Source != "" || !isRecipeErr(err) {
				t.Fatalf("want one problem with %s, got %v", tt.key, err)
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("message %q does not start with the key", err)
			}
		})
	}
}

func TestSizeBounds(t *testing.T) {
	for _, b := range sizeBounds {
		c, err := Load("demo-tiny", []string{b.key + "=2000000000"})
		if err == nil || !strings.Contains(err.Error(), b.key) || !strings.Contains(err.Error(), "must be <=") {
			t.Errorf("%s=2e9: got %v (%v)", b.key, err, c != nil)
		}
	}
}

// data.fps and data.use_audio_in_video change a media sample's processor
// outputs: they break exact resume; data.cache_dir and the media limits
// (which refuse a file, never change one) do not.
func TestMediaKeysExactness(t *testing.T) {
	base := Defaults()
	for _, c := range []struct {
		key   string
		edit  func(*Config)
		exact bool
	}{
		{"data.fps", func(c *Config) { c.Data.FPS = 4 }, true},
		{"data.use_audio_in_video", func(c *Config) { c.Data.UseAudioInVideo = true }, true},
		{"data.cache_dir", func(c *Config) { c.Data.CacheDir = "/elsewhere" }, false},
		{"data.max_seconds", func(c *Config) { c.Data.MaxSeconds = 30 }, false},
		{"data.max_frames", func(c *Config) { c.Data.MaxFrames = 8 }, false},
	} {
		cur := Defaults()
		c.edit(&cur)
		diff := ExactnessDiff(&base, &cur)
		if got := slices.Contains(diff, c.key); got != c.exact {
			t.Errorf("%s changed: in ExactnessDiff %v = %v, want %v", c.key, diff, got, c.exact)
		}
	}
}
