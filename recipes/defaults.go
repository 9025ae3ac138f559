package recipes

// Defaults returns the lowest layer of every recipe: the values used for keys
// that neither the file, the environment nor --set gives. A few keys are
// derived after all layers are merged (see Load): run.name (from the recipe's
// file name), run.output_dir (runs/<name>) and eval.batch_size
// (train.batch_size). model.path and data.train have no default and must be
// set.
func Defaults() Config {
	return Config{
		Run: Run{
			Seed:        1,
			Device:      "cpu",
			TensorBoard: true,
		},
		Model: Model{
			DType:      "float32",
			Quantize:   "none",
			CreateSeed: 1,
		},
		Adapters: Adapters{
			Method:  "mose",
			Targets: []string{"q_proj", "v_proj"},
			Rank:    16,
			Alpha:   32,
			Dropout: 0.05,
			Experts: Experts{Visual: 3, NonVisual: 3, Omni: 1},
			Gate: Gate{
				TopK:        1,
				Temperature: 1,
				InitStd:     0.02,
			},
			ModalityWeights: "static",
		},
		Loss: Loss{LoadBalance: 0.01, ZLoss: 0.001},
		Data: Data{
			MaxLen:         1024,
			Workers:        2,
			SynthSamples:   2160,
			SynthSeed:      1,
			FPS:            2,
			EncoderCache:   true,
			MaxSeconds:     600,
			MaxFramePixels: 3840 * 2160,
			MaxFrames:      768,
		},
		Train: Train{
			Epochs:       1,
			BatchSize:    8,
			GradAccum:    1,
			LR:           1e-4,
			Schedule:     "cosine",
			Betas:        []float64{0.9, 0.999},
			Eps:          1e-8,
			MaxGradNorm:  1,
			LogEvery:     10,
			KeepLast:     3,
			MaxNonFinite: 5,
			// ActivationCheckpointing: false
		},
		Eval: Eval{
			Mode:         "score",
			MaxNewTokens: 8,
			TopP:         1,
			AR: AR{
				Beta:     0.5,
				Tau:      "adaptive",
				TauValue: 0.5,
				Kappa:    1,
			},
		},
	}
}
