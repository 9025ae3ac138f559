package memest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// defaultAnswerTokens is the answer length assumed when the data is not
// read (a label and </s> take a few tokens).
const defaultAnswerTokens = 8

// FromConfig estimates cfg's peak memory from the model's
// config.json alone (no weights, no tokenizer, no data): a micro-batch of
// data.max_len tokens (capped by max_position_embeddings), the worst case.
// It is what `mose validate --memory-only` prints, for a model too large to
// load where validate runs.
func FromConfig(cfg *recipes.Config) (string, error) {
	if stack.IsOmniDir(cfg.Model.Path) {
		return omniFromConfig(cfg)
	}
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		return "", fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	sh := Shape{Model: mc, T: cfg.Data.MaxLen, Answer: defaultAnswerTokens}
	if mc.MaxPositionEmbeddings > 0 {
		sh.T = min(sh.T, mc.MaxPositionEmbeddings)
	}
	if len(mc.Projectors) > 0 {
		spec, err := data.ReadModelSpec(cfg.Model.Path)
		if err != nil {
			return "", fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
		}
		if sh.Tokens, err = specTokens(spec, mc); err != nil {
			return "", err
		}
	}
	dev, err := torch.ParseDevice(cfg.Run.Device)
	if err != nil {
		return "", fmt.Errorf("%w: run.device: %v", recipes.ErrRecipe, err)
	}
	sh.CUDA = dev.IsCUDA()
	est, err := Compute(cfg, sh)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "recipe %s: memory estimate from %s/config.json only (no weights or data read; T = data.max_len %d, %d answer tokens assumed)\n",
		cfg.Run.Name, cfg.Model.Path, sh.T, sh.Answer)
	var avail *deviceMem
	if torch.CUDAAvailable() || !dev.IsCUDA() {
		if err := torch.Run(func() error { avail = availableMemory(dev); return nil }); err != nil {
			return "", err
		}
	}
	est.Format(&b, cfg, dev, avail)
	return b.String(), nil
}

// specTokens lists the feature tokens of each projector's input.
func specTokens(spec data.Spec, mc model.Config) ([]int, error) {
	byName := map[string]int{}
	for _, in := range spec.Inputs {
		byName[in.Name] = in.Tokens
	}
	out := make([]int, len(mc.Projectors))
	for i, p := range mc.Projectors {
		n, ok := byName[p.Name]
		if !ok {
			return nil, fmt.Errorf("%w: model.path: projector %q has no input in the mose section", inputerr.ErrModel, p.Name)
		}
		out[i] = n
	}
	return out, nil
}

// batchShape is the largest micro-batch of the training set: its longest
// sample and longest answer.
func batchShape(ds *data.Dataset) (T, answer int) {
	for i := range ds.Examples {
		ex := &ds.Examples[i]
		T = max(T, ex.Len())
		answer = max(answer, len(ex.IDs)-ex.AnswerStart)
	}
	return T, answer
}

// deviceMem is the memory a run can still use on its device.
type deviceMem struct {
	bytes  int64
	source string
}

// availableMemory is CUDA's free memory (cudaMemGetInfo) or the CPU's
// MemAvailable (/proc/meminfo); nil when neither can be read. Call it on
// the tensor thread.
func availableMemory(dev torch.Device) *deviceMem {
	if dev.IsCUDA() {
		if free, total, ok := torch.CUDAMemInfo(dev); ok {
			return &deviceMem{free, fmt.Sprintf("free of %s total on %s (cudaMemGetInfo)", gib(total), dev)}
		}
		return nil
	}
	if n, ok := memAvailable("/proc/meminfo"); ok {
		return &deviceMem{n, "MemAvailable in /proc/meminfo"}
	}
	return nil
}

// memAvailable reads MemAvailable from a /proc/meminfo file.
func memAvailable(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "MemAvailable:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10, err == nil && kb >= 0
		}
	}
	return 0, false
}

// gib formats bytes as GiB (or MiB below 1 GiB).
func gib(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
}

// Format writes the estimate's breakdown and totals, and a warning when the
// recipe's setting does not fit in avail (nil: unknown).
func (e Estimate) Format(w io.Writer, cfg *recipes.Config, dev torch.Device, avail *deviceMem) {
	sh := e.Shape
	fmt.Fprintf(w, "  memory  estimated peak on %s, micro-batch %d × %d tokens (%d answer), %s:\n",
		dev, cfg.Train.BatchSize, sh.T, sh.Answer, cfg.Model.DType)
	fmt.Fprintf(w, "    frozen weights             %10s%s\n", gib(e.Weights), quantNote(cfg))
	if e.TowerWeights > 0 {
		fmt.Fprintf(w, "      of which the towers      %10s  (audio and vision, frozen)\n", gib(e.TowerWeights))
	}
	if e.Dequant > 0 {
		fmt.Fprintf(w, "    dequantization scratch     %10s  (buffers the linears dequantize into, one at a time: the largest in %s)\n", gib(e.Dequant), cfg.Model.DType)
	}
	fmt.Fprintf(w, "    trainable (%.1fM, fp32)     %10s  + grads %s + AdamW %s\n", float64(e.Params)/1e6, gib(e.Adapters), gib(e.Grads), gib(e.Optimizer))
	if e.Loader > 0 {
		fmt.Fprintf(w, "    runtime allowance          %10s  (of which %s the loader's batches of media)\n", gib(e.Runtime), gib(e.Loader))
	} else {
		fmt.Fprintf(w, "    runtime allowance          %10s\n", gib(e.Runtime))
	}
	fmt.Fprintf(w, "    inputs and embeddings      %10s\n", gib(e.Inputs))
	fmt.Fprintf(w, "    per decoder layer          %10s  (× %d layers; backward working set %s)\n", gib(e.Layer), e.Layers, gib(e.LayerBack))
	fmt.Fprintf(w, "    head (logits, CE)          %10s\n", gib(e.Head))
	if ts := e.TowerShape; ts != nil {
		fmt.Fprintf(w, "    towers' forward (no grad)  %10s  (before the decoder; %d visual tokens/row, frames of %d patches; %d audio tokens/row)\n",
			gib(e.Towers), ts.Visual, ts.FramePatches, ts.Audio)
	}
	held := ""
	if e.Held > 1 {
		held = fmt.Sprintf(" (× %d micro-batches: the step keeps each micro-batch's tensors until it ends)", e.Held)
	}
	fmt.Fprintf(w, "    activations                %10s without checkpointing%s, %s with\n", gib(e.Activations(false)), held, gib(e.Activations(true)))
	mark := func(on bool) string {
		if on == e.Checkpointed {
			return "  <- train.activation_checkpointing: " + strconv.FormatBool(on)
		}
		return ""
	}
	fmt.Fprintf(w, "    total                      %10s without checkpointing%s\n", gib(e.Total(false)), mark(false))
	fmt.Fprintf(w, "                               %10s with checkpointing%s\n", gib(e.Total(true)), mark(true))
	if avail == nil {
		fmt.Fprintf(w, "    device memory: unknown (not compared)\n")
		return
	}
	fmt.Fprintf(w, "    device memory              %10s %s\n", gib(avail.bytes), avail.source)
	need := e.Total(e.Checkpointed)
	switch {
	case need <= avail.bytes:
		fmt.Fprintf(w, "    fits (%.0f%% of it)\n", 100*float64(need)/float64(avail.bytes))
	case !e.Checkpointed && e.Total(true) <= avail.bytes:
		fmt.Fprintf(w, "    WARNING: the estimate exceeds the device's memory; it fits with --set train.activation_checkpointing=true\n")
	default:
		fmt.Fprintf(w, "    WARNING: the estimate exceeds the device's memory even with activation checkpointing: lower train.batch_size (raise grad_accum) or data.max_len\n")
	}
}

// availableBefore is the run device's available memory, read before
// anything is loaded (nil when it cannot be read). On the tensor thread.
func availableBefore(cfg *recipes.Config) *deviceMem {
	dev, err := torch.ParseDevice(cfg.Run.Device)
	if err != nil || (dev.IsCUDA() && !torch.CUDAAvailable()) {
		return nil
	}
	return availableMemory(dev)
}

// memoryEstimate writes the estimate of c's recipe: the loaded model's
// config, the training set's longest sample and answer.
func memoryEstimate(c *stack.Stack, w io.Writer, avail *deviceMem) error {
	sh := Shape{Model: c.Model.Config, CUDA: c.Dev.IsCUDA()}
	sh.T, sh.Answer = batchShape(c.Train)
	var err error
	if sh.Tokens, err = specTokens(c.Spec, c.Model.Config); err != nil {
		return err
	}
	est, err := Compute(c.Cfg, sh)
	if err != nil {
		return err
	}
	if c.OmniConfig != nil {
		if err := omniTowers(&est, c.Cfg, *c.OmniConfig, omniTowerShape(c.Train, *c.OmniConfig)); err != nil {
			return err
		}
	}
	est.Format(w, c.Cfg, c.Dev, avail)
	return nil
}
