package omni

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// Thinker is a loaded Qwen2.5-Omni thinker: the text decoder (a
// model.Model, so adapters attach to its Linears as to any decoder) and the
// frozen weights of the audio and vision towers. Use it on the tensor
// thread only, and Close it.
type Thinker struct {
	Config  Config
	Decoder *model.Model
	// Audio and Vision hold the towers' weights, keyed by their names
	// under audio_tower. and visual. (see AudioForward, VisionForward).
	Audio, Vision map[string]*torch.Tensor

	towers *torch.Scope
}

// Close frees the thinker's tensors.
func (th *Thinker) Close() {
	if th.Decoder != nil {
		th.Decoder.Close()
	}
	th.towers.Close()
}

// Load reads a Qwen2.5-Omni model directory (config.json and safetensors
// weights, single or sharded): the full model, whose talker.* and
// token2wav.* tensors are never read, or a thinker-only save. Every
// missing, misshapen, non-float or unknown tensor is reported at once
// before anything is loaded; weights are converted to opt.DType (bf16
// weights load as bf16 with DType BFloat16) one tensor at a time. Call it
// on the tensor thread.
func Load(dir string, opt model.Options) (*Thinker, error) {
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
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	defer ck.Close()
	src := prefixed{ck, cfg.Prefix}
	if err := checkTensors(cfg, ck); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	dec, err := model.NewDecoder(cfg.Decoder(), src, opt)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	th := &Thinker{Config: cfg, Decoder: dec, Audio: map[string]*torch.Tensor{}, Vision: map[string]*torch.Tensor{}, towers: torch.NewScope()}
	r := ckpt.NewReader(src)
	for _, t := range append(cfg.Audio.tensors(), cfg.Vision.tensors()...) {
		w := r.Read(th.towers, t.Name, opt.DType, opt.Device)
		if name, ok := strings.CutPrefix(t.Name, audioPrefix); ok {
			th.Audio[name] = w
		} else {
			th.Vision[strings.TrimPrefix(t.Name, visionPrefix)] = w
		}
	}
	if err := th.towers.Err(); err != nil {
		th.Close()
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	return th, nil
}

// prefixed reads a checkpoint's tensors under a name prefix ("thinker."
// in a full model), so that the rest of mose sees thinker-only names.
type prefixed struct {
	src    ckpt.Source
	prefix string
}

// Info describes tensor name, looked up under the prefix.
func (p prefixed) Info(name string) (safetensors.TensorInfo, error) {
	info, err := p.src.Info(p.prefix + name)
	if err == nil {
		info.Name = name
	}
	return info, err
}

// ReadInto reads tensor name, looked up under the prefix, into dst.
func (p prefixed) ReadInto(name string, dst []byte) error { return p.src.ReadInto(p.prefix+name, dst) }

// skipped reports whether a checkpoint tensor belongs to the speech parts
// of a full model, which mose never reads.
func skipped(cfg Config, name string) bool {
	return cfg.Prefix != "" && (strings.HasPrefix(name, "talker.") || strings.HasPrefix(name, "token2wav."))
}

// floatDTypes are the weight dtypes mose converts to the run dtype.
var floatDTypes = []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16}

// checkTensors compares the checkpoint with the config and lists every
// problem: a missing tensor, a shape that disagrees, a non-float weight, and
// a tensor mose does not know (outside the speech parts).
func checkTensors(cfg Config, ck *safetensors.Checkpoint) error {
	want := map[string][]int64{}
	for _, t := range cfg.Tensors() {
		want[t.Name] = t.Shape
	}
	var problems []string
	seen := map[string]bool{}
	for _, info := range ck.Tensors() {
		if skipped(cfg, info.Name) {
			continue
		}
		name, ok := strings.CutPrefix(info.Name, cfg.Prefix)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (in %s): not under %q, talker. or token2wav.", info.Name, info.Path, cfg.Prefix))
			continue
		}
		shape, known := want[name]
		switch {
		case unusedTensors[name] || strings.HasSuffix(name, "rotary_emb.inv_freq") ||
			(cfg.TieWordEmbeddings && name == "lm_head.weight"):
			continue
		case !known:
			problems = append(problems, fmt.Sprintf("%s (in %s): not a tensor of this config's thinker", info.Name, info.Path))
			continue
		}
		seen[name] = true
		if !slices.Equal(info.Shape, shape) {
			problems = append(problems, fmt.Sprintf("%s: config wants %v, %s has %v", info.Name, shape, info.Path, info.Shape))
		}
		if !slices.Contains(floatDTypes, info.DType) {
			problems = append(problems, fmt.Sprintf("%s: dtype %s in %s, want F32, F16 or BF16", info.Name, info.DType, info.Path))
		}
	}
	var missing []string
	for name, shape := range want {
		if !seen[name] {
			missing = append(missing, fmt.Sprintf("missing %s%s (config wants %v)", cfg.Prefix, name, shape))
		}
	}
	sort.Strings(missing)
	problems = append(problems, missing...)
	if len(problems) > 0 {
		return fmt.Errorf("%w: %d problem(s):\n  %s", ErrWeights, len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}
