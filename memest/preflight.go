package memest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Kind says which command a preflight is for: what it must check.
type Kind int

// Preflight kinds.
const (
	PreflightTrain    Kind = iota // everything, output_dir included
	PreflightValidate             // everything but output_dir (validate writes nothing)
	PreflightEval                 // the eval set, not the train set; output dir checked by Evaluate
	PreflightExport               // model config and adapters only
)

// Preflight checks the recipe against the files it names, together, before
// anything is loaded onto a device or written: dtype against device, the
// tokenizer against the model's vocab_size and its pad token, eval.ar.layers
// against the model's layers, the adapters' rank and size against the
// model's dimensions, run.output_dir (train), and, streamed without cgo,
// every frozen weight and every feature value for NaN/Inf. Every refusal
// wraps recipes.ErrRecipe and names the key or file. It needs no tensor thread.
func Preflight(cfg *recipes.Config, kind Kind) error {
	dev := cfg.Run.Device
	if cfg.Model.DType == "float16" && (dev == "cpu" || dev == "") {
		return fmt.Errorf("%w: model.dtype float16 on run.device cpu: libtorch has no float16 CPU kernels for the decoder (it fails mid-forward); "+
			"use model.dtype float32 or bfloat16 on cpu, or float16 on cuda", recipes.ErrRecipe)
	}
	if stack.IsOmniDir(cfg.Model.Path) {
		return preflightOmni(cfg, kind)
	}
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	if err := checkAdapterSize(cfg, mc); err != nil {
		return err
	}
	if err := checkQuantize(cfg, mc); err != nil {
		return err
	}
	if l := cfg.Eval.AR.Layers; len(l) == 2 && l[1] >= mc.NumLayers {
		return fmt.Errorf("%w: eval.ar.layers %v: the model (%s) has %d layers, 0 to %d", recipes.ErrRecipe, l,
			filepath.Join(cfg.Model.Path, "config.json"), mc.NumLayers, mc.NumLayers-1)
	}
	if kind == PreflightTrain {
		if err := CheckWritableDir("run.output_dir", cfg.Run.OutputDir); err != nil {
			return err
		}
	}
	if kind == PreflightExport {
		return nil
	}
	spec, err := data.ReadModelSpec(cfg.Model.Path)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	tokPath := filepath.Join(cfg.Model.Path, "tokenizer.json")
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	pad, err := tokenizerPad(tok, tokPath, cfg.Model.Path, mc.VocabSize)
	if err != nil {
		return err
	}
	for _, s := range preflightSets(cfg, kind) {
		ds, err := data.Open(s.path, spec, tok, data.Options{Root: cfg.Data.Root, MaxLen: cfg.Data.MaxLen, PadID: pad})
		if err == nil {
			err = ds.ScanFeatures(cfg.Data.Workers)
		}
		if err != nil {
			return stack.DataErr(s.key, err)
		}
		if n := slices.Max(append(ds.Lengths(), 0)); mc.MaxPositionEmbeddings > 0 && n > mc.MaxPositionEmbeddings {
			return fmt.Errorf("%w: %s %s: samples reach %d tokens (feature slots included), beyond the model's max_position_embeddings %d: "+
				"lower data.max_len to at most %d", recipes.ErrRecipe, s.key, s.path, n, mc.MaxPositionEmbeddings, mc.MaxPositionEmbeddings)
		}
		if world := max(cfg.Run.WorldSize, 1); s.key == "data.train" && ds.Len() < cfg.Train.BatchSize*world {
			if world == 1 {
				return fmt.Errorf("%w: train.batch_size %d: data.train %s has only %d samples (batches are full, the rest of an epoch is dropped)",
					recipes.ErrRecipe, cfg.Train.BatchSize, s.path, ds.Len())
			}
			return fmt.Errorf("%w: train.batch_size %d × %d processes (--nproc, or the launcher's WORLD_SIZE) is a global batch of %d, but data.train %s has only %d samples: lower train.batch_size or the process count",
				recipes.ErrRecipe, cfg.Train.BatchSize, world, cfg.Train.BatchSize*world, s.path, ds.Len())
		}
	}
	ck, err := model.OpenWeights(cfg.Model.Path)
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	defer ck.Close()
	if err := ck.CheckFinite(0); err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	return nil
}

// checkAdapterSize bounds adapters.rank by the target linears' dimensions
// (a LoRA of rank r > min(in, out) adds nothing but memory) and refuses
// adapters with more parameters than the frozen model itself, before
// anything is allocated.
func checkAdapterSize(cfg *recipes.Config, mc model.Config) error {
	a := cfg.Adapters
	ecfg := experts.Config{Method: a.Method, Targets: a.Targets, Rank: a.Rank, VisualExperts: a.Experts.Visual,
		NonVisualExperts: a.Experts.NonVisual, OmniExperts: a.Experts.Omni}
	shapes := map[string][]int64{}
	var names []string
	var base int64
	for _, t := range mc.Tensors() {
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		base += n
		if strings.HasSuffix(t.Name, "_proj.weight") && len(t.Shape) == 2 {
			name := strings.TrimSuffix(t.Name, ".weight")
			shapes[name] = t.Shape
			names = append(names, name)
		}
	}
	sel, err := ecfg.Select(names)
	if err != nil {
		return fmt.Errorf("%w: adapters.targets: %v", recipes.ErrRecipe, err)
	}
	_, K := ecfg.Groups()
	r := int64(a.Rank)
	var params int64
	for _, n := range sel {
		out, in := shapes[n][0], shapes[n][1]
		if r > min(in, out) {
			return fmt.Errorf("%w: adapters.rank %d is larger than %s's dimensions (%d x %d): a rank above min(in, out) = %d adds nothing",
				recipes.ErrRecipe, a.Rank, n, out, in, min(in, out))
		}
		for _, k := range K {
			k := int64(k)
			params += r*in + k*out*r
			if k > 1 {
				params += k * in
			}
		}
	}
	if params > base {
		return fmt.Errorf("%w: adapters (rank %d, experts %v on %d linears) would have %d parameters, more than the frozen model's %d: lower adapters.rank or adapters.experts",
			recipes.ErrRecipe, a.Rank, K, len(sel), params, base)
	}
	return nil
}

// CheckWritableDir refuses a directory key that is a file, lies under a
// file, or cannot be written, without creating anything.
func CheckWritableDir(key, dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: %s is empty", recipes.ErrRecipe, key)
	}
	p := filepath.Clean(dir)
	for {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				if p == filepath.Clean(dir) {
					return fmt.Errorf("%w: %s %s exists and is not a directory", recipes.ErrRecipe, key, dir)
				}
				return fmt.Errorf("%w: %s %s: %s is a file, not a directory", recipes.ErrRecipe, key, dir, p)
			}
			if err := syscall.Access(p, 0x2|0x1); err != nil { // W_OK|X_OK
				return fmt.Errorf("%w: %s %s: %s is not writable (%v)", recipes.ErrRecipe, key, dir, p, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%w: %s %s: %w", recipes.ErrRecipe, key, dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// tokenizerPad checks that tok (at tokPath) has no id beyond the model's
// vocabulary (vocab rows) and returns its pad id.
func tokenizerPad(tok *tokenizer.Tokenizer, tokPath, modelDir string, vocab int) (int32, error) {
	if n := tok.VocabSize(); n > vocab {
		return 0, fmt.Errorf("%w: %s has %d tokens (ids up to %d) but %s says vocab_size %d: ids from %d on have no embedding row",
			inputerr.ErrModel, tokPath, n, n-1, filepath.Join(modelDir, "config.json"), vocab, vocab)
	}
	return stack.PadID(tok, tokPath)
}

// dataSet is a manifest a preflight reads, with its recipe key.
type dataSet struct{ key, path string }

// preflightSets are the manifests a preflight of kind reads: data.train
// (not for eval) and data.eval, when set.
func preflightSets(cfg *recipes.Config, kind Kind) []dataSet {
	var sets []dataSet
	if kind != PreflightEval && cfg.Data.Train != "" {
		sets = append(sets, dataSet{"data.train", cfg.Data.Train})
	}
	if cfg.Data.Eval != "" {
		sets = append(sets, dataSet{"data.eval", cfg.Data.Eval})
	}
	return sets
}
