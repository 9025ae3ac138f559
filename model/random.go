package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/internal/safetensors"
)

// RandomOptions say how WriteRandom draws weights.
type RandomOptions struct {
	Seed uint64
	// Std of the normal init of embeddings and linear weights (transformers'
	// initializer_range; 0 means 0.02). Norm weights are 1, biases 0, and
	// projector weights N(0, 1/feature_dim) so projected features have unit scale.
	Std float64
	// DType of the written weights: safetensors.F32 (default) or BF16.
	DType safetensors.DType
	// Mose is the raw "mose" section to write into config.json, if any.
	Mose json.RawMessage
	// MaxShardSize splits the weights into shards with an index (0: one file).
	MaxShardSize int64
	// Extra are more config.json keys (bos_token_id, ...).
	Extra map[string]any
}

// WriteRandom writes a complete HF-layout model dir with random weights for
// cfg: config.json and model.safetensors (or shards and an index). Weights are
// generated and written one tensor at a time, so any size fits in memory.
// The dir must not exist or be empty; on error nothing is left behind.
func WriteRandom(dir string, cfg Config, opt RandomOptions) (err error) {
	if opt.Std == 0 {
		opt.Std = 0.02
	}
	if opt.DType == "" {
		opt.DType = safetensors.F32
	}
	if opt.DType != safetensors.F32 && opt.DType != safetensors.BF16 {
		return fmt.Errorf("%w: random weights in %s (want F32 or BF16)", ErrConfig, opt.DType)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := writeConfig(filepath.Join(dir, "config.json"), cfg, opt); err != nil {
		return err
	}
	shapes := cfg.Tensors()
	specs := make([]safetensors.TensorSpec, len(shapes))
	for i, t := range shapes {
		specs[i] = safetensors.TensorSpec{Name: t.Name, DType: opt.DType, Shape: t.Shape}
	}
	maxShard := opt.MaxShardSize
	if maxShard <= 0 {
		maxShard = math.MaxInt64
	}
	// transformers refuses safetensors files without format "pt" metadata.
	w, err := safetensors.CreateSharded(dir, specs, safetensors.ShardOptions{MaxShardSize: maxShard, Metadata: map[string]string{"format": "pt"}})
	if err != nil {
		return err
	}
	defer w.Abort()
	rng := rand.New(rand.NewPCG(opt.Seed, 0x6d6f7365))
	for _, t := range shapes {
		vals := randomValues(rng, cfg, t, opt.Std)
		var data []byte
		if opt.DType == safetensors.BF16 {
			data = bf16Bytes(vals)
		} else {
			data = safetensors.Float32sToBytes(vals)
		}
		if err := w.WriteTensor(t.Name, data); err != nil {
			return err
		}
	}
	return w.Close()
}

// randomValues draws one tensor's initial values.
func randomValues(rng *rand.Rand, cfg Config, t TensorShape, std float64) []float32 {
	n := 1
	for _, d := range t.Shape {
		n *= int(d)
	}
	v := make([]float32, n)
	switch {
	case strings.HasSuffix(t.Name, "norm.weight"):
		for i := range v {
			v[i] = 1
		}
	case strings.HasSuffix(t.Name, ".bias"):
	case strings.HasPrefix(t.Name, "projectors."):
		s := 1 / math.Sqrt(float64(t.Shape[len(t.Shape)-1]))
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
	default:
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
	}
	return v
}

func bf16Bytes(v []float32) []byte {
	out := make([]byte, 2*len(v))
	for i, f := range v {
		b := safetensors.Float32ToBF16(f)
		out[2*i], out[2*i+1] = byte(b), byte(b>>8)
	}
	return out
}

// writeConfig writes config.json with HF's keys, plus the "mose" section.
func writeConfig(path string, cfg Config, opt RandomOptions) error {
	m := map[string]any{}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if cfg.RopeScaling == nil {
		m["rope_scaling"] = nil
	}
	m["architectures"] = []string{"LlamaForCausalLM"}
	m["torch_dtype"] = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16"}[opt.DType]
	m["initializer_range"] = opt.Std
	for k, v := range opt.Extra {
		m[k] = v
	}
	if len(opt.Mose) > 0 {
		var mose any // decoded, so that the encoder below re-encodes it unescaped
		if err := json.Unmarshal(opt.Mose, &mose); err != nil {
			return fmt.Errorf("%w: mose section: %v", ErrConfig, err)
		}
		m["mose"] = mose
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<s>" and "<VideoHere>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
