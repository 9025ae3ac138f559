package export

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/memest"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Export formats.
const (
	FormatPEFT   = "peft"   // adapter_config.json + adapter_model.safetensors (+ MoSE sidecar)
	FormatMerged = "merged" // a new model dir with the deltas folded into W0
)

// mergeReportFile is the merged export's fidelity report.
const mergeReportFile = "merge_report.json"

// Options say what to export.
type Options struct {
	Checkpoint  string // a step-NNNNNNN directory
	Format      string // FormatPEFT or FormatMerged
	Out         string // output directory (must not exist unless Force)
	Force       bool
	Approximate bool   // merged: also fold routed experts, with expected coefficients
	Calibration string // merged --approximate: manifest the coefficients are measured on
	Log         logrus.FieldLogger
}

// Result is what an export wrote.
type Result struct {
	Out    string
	Report *MergeReport // merged exports with a calibration set
	Method string       // the adapters' method (experts.MethodMoSE or MethodLoRA)
	Omni   bool         // the base is a Qwen2.5-Omni thinker
}

// Export writes a checkpoint's adapters as a PEFT adapter (with the MoSE
// sidecar) or folds them into a merged model dir. It writes into a
// temporary directory renamed to opt.Out at the end: on any error nothing
// is left behind.
func Export(ctx context.Context, opt Options) (*Result, error) {
	if opt.Log == nil {
		opt.Log = logrus.StandardLogger()
	}
	if opt.Format != FormatPEFT && opt.Format != FormatMerged {
		return nil, fmt.Errorf("%w: --format %q (want peft or merged)", inputerr.ErrFlag, opt.Format)
	}
	if opt.Out == "" {
		return nil, fmt.Errorf("%w: --out is required", inputerr.ErrFlag)
	}
	if opt.Format == FormatMerged && opt.Approximate {
		if opt.Calibration == "" {
			return nil, fmt.Errorf("%w: --approximate needs --calibration MANIFEST to measure the expected expert coefficients on", inputerr.ErrFlag)
		}
		if err := fsutil.CheckRegular(opt.Calibration); err != nil {
			return nil, fmt.Errorf("%w: --calibration: %w", inputerr.ErrFlag, err)
		}
	}
	cfg, st, err := checkpoint.Open(opt.Checkpoint)
	if err != nil {
		return nil, err
	}
	replace, err := checkExportOut(opt, cfg)
	if err != nil {
		return nil, err
	}
	if err := memest.Preflight(cfg, memest.PreflightExport); err != nil {
		return nil, err
	}
	if opt.Format == FormatMerged && opt.Approximate && stack.IsOmniDir(cfg.Model.Path) {
		return nil, fmt.Errorf("%w: --approximate: the calibrated merge of routed experts is not supported on a Qwen2.5-Omni thinker yet (export --format peft, or merge a plain LoRA run)", inputerr.ErrFlag)
	}
	tmp, err := fsutil.TempDir(opt.Out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &Result{Out: opt.Out}
	err = torch.Run(func() error {
		build := stack.BuildAdaptersOnly // the base weights are streamed, not loaded
		if opt.Format == FormatMerged && (opt.Approximate || quantized(cfg)) {
			build = func(cfg *recipes.Config) (*stack.Stack, error) { return stack.Build(cfg, stack.NoData) }
		}
		c, err := build(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.LoadCheckpoint(opt.Checkpoint, st); err != nil {
			return err
		}
		if err := stack.CheckFinite(c.Params); err != nil {
			return err
		}
		if opt.Format == FormatPEFT {
			return writePEFT(c, tmp, st)
		}
		res.Report, err = writeMerged(ctx, c, tmp, opt)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Method, res.Omni = cfg.Adapters.Method, stack.IsOmniDir(cfg.Model.Path)
	if err := writeReadmeFor(tmp, opt, cfg.Adapters.Method, cfg.Model.TrainProjectors, res.Report, res.Omni); err != nil {
		return nil, err
	}
	if err := writeExportStamp(tmp, opt, cfg.Model.Quantize); err != nil {
		return nil, err
	}
	if err := fsutil.ReplaceDir(tmp, opt.Out, replace); err != nil {
		return nil, err
	}
	return res, nil
}

// writePEFT writes adapter_config.json and adapter_model.safetensors (plain
// LoRA, or MoSE's omni expert when it is a single expert), and for MoSE or
// trained projectors the sidecar mose_config.json + mose_adapter.safetensors.
func writePEFT(c *stack.Stack, dir string, st checkpoint.State) error {
	cfg := c.Cfg
	a := cfg.Adapters
	pc := stack.PEFTConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: cfg.Model.Path, R: a.Rank, LoraAlpha: a.Alpha,
		LoraDropout: a.Dropout, UseRSLoRA: a.RSLoRA, TargetModules: c.PEFTTargets(), Bias: "none", InferenceMode: true,
		InitLoraWeights: true, RankPattern: map[string]int{}, AlphaPattern: map[string]int{}}
	if err := fsutil.WriteJSON(filepath.Join(dir, stack.PEFTConfigFile), pc); err != nil {
		return err
	}
	s := torch.NewScope()
	defer s.Close()
	exported := c.Set.Export(s)
	var lora []checkpoint.Named
	part := "lora"
	if a.Method == experts.MethodLoRA {
		for _, n := range exported {
			lora = append(lora, checkpoint.Named{Name: stack.PEFTPrefix + c.PEFTName(n.Name), T: n.T})
		}
	} else {
		part = "omni"
		for _, m := range c.Set.Mixtures {
			A, B := findNamed(exported, m.Name+".mose.omni.lora_A.weight"), findNamed(exported, m.Name+".mose.omni.experts.0.lora_B.weight")
			if A == nil || B == nil || a.Experts.Omni != 1 {
				part = "none (no single-expert omni group): zero LoRA, use the sidecar"
				A = s.Zeros([]int64{int64(a.Rank), m.In}, torch.Float32, torch.CPU)
				B = s.Zeros([]int64{m.Out, int64(a.Rank)}, torch.Float32, torch.CPU)
			}
			peft := stack.PEFTPrefix + c.PEFTName(m.Name)
			lora = append(lora, checkpoint.Named{Name: peft + ".lora_A.weight", T: A}, checkpoint.Named{Name: peft + ".lora_B.weight", T: B})
		}
	}
	meta := map[string]string{"format": "pt"}
	if err := checkpoint.WriteTensors(s, filepath.Join(dir, stack.PEFTWeightsFile), lora, meta); err != nil {
		return err
	}
	if a.Method == experts.MethodLoRA && !cfg.Model.TrainProjectors {
		return nil
	}
	var side []checkpoint.Named
	for _, n := range exported {
		side = append(side, checkpoint.Named{Name: n.Name, T: n.T})
	}
	for _, p := range c.Params {
		if stack.IsProjector(p.Name) {
			side = append(side, checkpoint.Named{Name: p.Name, T: s.Detach(p.T)})
		}
	}
	if err := checkpoint.WriteTensors(s, filepath.Join(dir, stack.MoseWeightsFile), side, meta); err != nil {
		return err
	}
	return fsutil.WriteJSON(filepath.Join(dir, stack.MoseConfigFile), moseConfig(c, st, part))
}

func findNamed(ns []experts.Named, name string) *torch.Tensor {
	for _, n := range ns {
		if n.Name == name {
			return n.T
		}
	}
	return nil
}

// moseConfig describes the adapters for mose_config.json.
func moseConfig(c *stack.Stack, st checkpoint.State, part string) stack.MoseConfig {
	a := c.Cfg.Adapters
	names, K := c.Set.Config.Groups()
	mc := stack.MoseConfig{FormatVersion: 1, Method: a.Method, Rank: a.Rank, Alpha: a.Alpha, RSLoRA: a.RSLoRA,
		Scaling: c.Set.Config.Scaling(), Targets: a.Targets, Gate: stack.MoseGate{TopK: a.Gate.TopK, Temperature: a.Gate.Temperature},
		ModalityWeights: stack.MoseWeights{Mode: a.ModalityWeights, Visual: st.ModalityWeights[0], NonVisual: st.ModalityWeights[1]},
		ModalityIDs:     modality.IDs(),
		Inputs:          c.Spec.Inputs, PEFTPart: part, Projectors: c.Cfg.Model.TrainProjectors,
		TensorNames: map[string]string{
			"lora_A":    "<target>.mose.<group>.lora_A.weight  (r, in)",
			"lora_B":    "<target>.mose.<group>.experts.<k>.lora_B.weight  (out, r)",
			"gate":      "<target>.mose.<group>.gate.weight  (K, in), groups with K > 1",
			"projector": "projectors.<input>.weight|bias",
		}}
	if a.Method == experts.MethodLoRA {
		mc.TensorNames = map[string]string{"lora_A": "<target>.lora_A.weight", "lora_B": "<target>.lora_B.weight",
			"projector": "projectors.<input>.weight|bias"}
	}
	for i, g := range names {
		mods := map[string][]string{experts.Visual: {"visual"}, experts.NonVisual: {"text", "audio"}, experts.Omni: {"text", "visual", "audio"}}[g]
		mc.Groups = append(mc.Groups, stack.MoseGroup{Name: g, Experts: K[i], Modalities: mods, Gated: K[i] > 1})
	}
	return mc
}
