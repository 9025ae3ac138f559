package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
)

// Export formats.
const (
	FormatPEFT   = "peft"   // adapter_config.json + adapter_model.safetensors (+ MoSE sidecar)
	FormatMerged = "merged" // a new model dir with the deltas folded into W0
)

// Files of a PEFT export.
const (
	peftConfigFile  = "adapter_config.json"
	peftWeightsFile = "adapter_model.safetensors"
	moseConfigFile  = "mose_config.json"
	moseWeightsFile = "mose_adapter.safetensors"
	mergeReportFile = "merge_report.json"
	peftPrefix      = "base_model.model."
)

// ExportOptions say what to export.
type ExportOptions struct {
	Checkpoint  string // a step-NNNNNNN directory
	Format      string // FormatPEFT or FormatMerged
	Out         string // output directory (must not exist unless Force)
	Force       bool
	Approximate bool   // merged: also fold routed experts, with expected coefficients
	Calibration string // merged --approximate: manifest the coefficients are measured on
	Log         logrus.FieldLogger
}

// ExportResult is what an export wrote.
type ExportResult struct {
	Out    string
	Report *MergeReport // merged exports with a calibration set
}

// Export writes a checkpoint's adapters as a PEFT adapter (with the MoSE
// sidecar) or folds them into a merged model dir. It writes into a
// temporary directory renamed to opt.Out at the end: on any error nothing
// is left behind.
func Export(ctx context.Context, opt ExportOptions) (*ExportResult, error) {
	if opt.Log == nil {
		opt.Log = logrus.StandardLogger()
	}
	if opt.Format != FormatPEFT && opt.Format != FormatMerged {
		return nil, fmt.Errorf("%w: --format %q (want peft or merged)", ErrRecipe, opt.Format)
	}
	if opt.Out == "" {
		return nil, fmt.Errorf("%w: --out is required", ErrRecipe)
	}
	if opt.Format == FormatMerged && opt.Approximate {
		if opt.Calibration == "" {
			return nil, fmt.Errorf("%w: --approximate needs --calibration MANIFEST to measure the expected expert coefficients on", ErrRecipe)
		}
		if err := fsutil.CheckRegular(opt.Calibration); err != nil {
			return nil, fmt.Errorf("%w: calibration manifest: %w", ErrRecipe, err)
		}
	}
	cfg, st, err := readCheckpoint(opt.Checkpoint)
	if err != nil {
		return nil, err
	}
	replace, err := checkExportOut(opt, cfg)
	if err != nil {
		return nil, err
	}
	if err := Preflight(cfg, PreflightExport); err != nil {
		return nil, err
	}
	tmp, err := fsutil.TempDir(opt.Out)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &ExportResult{Out: opt.Out}
	err = torch.Run(func() error {
		build := buildAdaptersOnly // the base weights are streamed, not loaded
		if opt.Format == FormatMerged && opt.Approximate {
			build = func(cfg *recipes.Config) (*components, error) { return buildComponents(cfg, noData) }
		}
		c, err := build(cfg)
		if err != nil {
			return err
		}
		defer c.close()
		if err := c.set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1]); err != nil {
			return err
		}
		if err := c.loadAdapters(filepath.Join(opt.Checkpoint, adapterFile)); err != nil {
			return fmt.Errorf("%w: the checkpoint's adapters do not fit the model: %w", ErrRecipe, err)
		}
		if err := checkFinite(c.params); err != nil {
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
	if err := writeExportStamp(tmp, opt); err != nil {
		return nil, err
	}
	if err := fsutil.ReplaceDir(tmp, opt.Out, replace); err != nil {
		return nil, err
	}
	return res, nil
}

// readCheckpoint reads a checkpoint's recipe (as saved, without MOSE_*
// variables) and state.
func readCheckpoint(dir string) (*recipes.Config, State, error) {
	for _, f := range []string{adapterFile, recipeFile, stateFile} {
		if err := fsutil.CheckRegular(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			return nil, State{}, fmt.Errorf("%w: %s is not a mose checkpoint (no %s)", ErrRecipe, dir, f)
		} else if err != nil {
			return nil, State{}, fmt.Errorf("%w: %w", ErrRecipe, err)
		}
	}
	path := filepath.Join(dir, recipeFile)
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		return nil, State{}, fmt.Errorf("%w: %w", ErrRecipe, err)
	}
	cfg, err := recipes.Parse(b, path)
	if err != nil {
		return nil, State{}, fmt.Errorf("%w: %v", ErrRecipe, err)
	}
	st, err := readState(dir)
	if err != nil {
		return nil, State{}, fmt.Errorf("%w: %w", ErrRecipe, err)
	}
	return cfg, st, nil
}

// checkFinite refuses to export non-finite weights.
func checkFinite(params []Param) error {
	s := torch.NewScope()
	defer s.Close()
	for _, p := range params {
		ok, err := s.AllFinite(p.T)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s holds NaN or Inf values: refusing to export it", ErrRecipe, p.Name)
		}
	}
	return nil
}

// peftConfig is adapter_config.json, with the fields PEFT's LoraConfig reads.
type peftConfig struct {
	PeftType          string         `json:"peft_type"`
	TaskType          string         `json:"task_type"`
	BaseModel         string         `json:"base_model_name_or_path"`
	R                 int            `json:"r"`
	LoraAlpha         float64        `json:"lora_alpha"`
	LoraDropout       float64        `json:"lora_dropout"`
	UseRSLoRA         bool           `json:"use_rslora"`
	TargetModules     []string       `json:"target_modules"`
	Bias              string         `json:"bias"`
	FanInFanOut       bool           `json:"fan_in_fan_out"`
	InferenceMode     bool           `json:"inference_mode"`
	InitLoraWeights   bool           `json:"init_lora_weights"`
	UseDoRA           bool           `json:"use_dora"`
	ModulesToSave     []string       `json:"modules_to_save"`
	LayersToTransform []int          `json:"layers_to_transform"`
	LayersPattern     *string        `json:"layers_pattern"`
	RankPattern       map[string]int `json:"rank_pattern"`
	AlphaPattern      map[string]int `json:"alpha_pattern"`
	Revision          *string        `json:"revision"`
}

// MoseConfig is mose_config.json, the sidecar describing everything PEFT's
// LoRA cannot: expert groups, gates, modality weights and inputs.
type MoseConfig struct {
	FormatVersion   int               `json:"format_version"`
	Method          string            `json:"method"`
	Rank            int               `json:"rank"`
	Alpha           float64           `json:"alpha"`
	RSLoRA          bool              `json:"rslora"`
	Scaling         float64           `json:"scaling"`
	Targets         []string          `json:"target_modules"`
	Groups          []MoseGroup       `json:"groups"`
	Gate            MoseGate          `json:"gate"`
	ModalityWeights MoseWeights       `json:"modality_weights"`
	ModalityIDs     map[string]int    `json:"modality_ids"`
	Inputs          any               `json:"modality_inputs"`
	PEFTPart        string            `json:"peft_part"` // what adapter_model.safetensors holds
	Projectors      bool              `json:"projectors_trained"`
	TensorNames     map[string]string `json:"tensor_names"`
}

// MoseWeights are the modality weights the adapters were last trained with.
type MoseWeights struct {
	Mode      string  `json:"mode"`
	Visual    float64 `json:"visual"`
	NonVisual float64 `json:"nonvisual"`
}

// MoseGroup is one expert group of the sidecar.
type MoseGroup struct {
	Name       string   `json:"name"`
	Experts    int      `json:"experts"`
	Modalities []string `json:"modalities"`
	Gated      bool     `json:"gated"`
}

// MoseGate is the routers' configuration.
type MoseGate struct {
	TopK        int     `json:"top_k"`
	Temperature float64 `json:"temperature"`
}

// writePEFT writes adapter_config.json and adapter_model.safetensors (plain
// LoRA, or MoSE's omni expert when it is a single expert), and for MoSE or
// trained projectors the sidecar mose_config.json + mose_adapter.safetensors.
func writePEFT(c *components, dir string, st State) error {
	cfg := c.cfg
	a := cfg.Adapters
	pc := peftConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModel: cfg.Model.Path, R: a.Rank, LoraAlpha: a.Alpha,
		LoraDropout: a.Dropout, UseRSLoRA: a.RSLoRA, TargetModules: a.Targets, Bias: "none", InferenceMode: true,
		InitLoraWeights: true, RankPattern: map[string]int{}, AlphaPattern: map[string]int{}}
	if err := writeJSON(filepath.Join(dir, peftConfigFile), pc); err != nil {
		return err
	}
	s := torch.NewScope()
	defer s.Close()
	exported := c.set.Export(s)
	var lora []named
	part := "lora"
	if a.Method == experts.MethodLoRA {
		for _, n := range exported {
			lora = append(lora, named{peftPrefix + n.Name, n.T})
		}
	} else {
		part = "omni"
		for _, m := range c.set.Mixtures {
			A, B := findNamed(exported, m.Name+".mose.omni.lora_A.weight"), findNamed(exported, m.Name+".mose.omni.experts.0.lora_B.weight")
			if A == nil || B == nil || a.Experts.Omni != 1 {
				part = "none (no single-expert omni group): zero LoRA, use the sidecar"
				A = s.Zeros([]int64{int64(a.Rank), m.In}, torch.Float32, torch.CPU)
				B = s.Zeros([]int64{m.Out, int64(a.Rank)}, torch.Float32, torch.CPU)
			}
			lora = append(lora, named{peftPrefix + m.Name + ".lora_A.weight", A}, named{peftPrefix + m.Name + ".lora_B.weight", B})
		}
	}
	meta := map[string]string{"format": "pt"}
	if err := writeTensors(s, filepath.Join(dir, peftWeightsFile), lora, meta); err != nil {
		return err
	}
	if a.Method == experts.MethodLoRA && !cfg.Model.TrainProjectors {
		return nil
	}
	var side []named
	for _, n := range exported {
		side = append(side, named{n.Name, n.T})
	}
	for _, p := range c.params {
		if isProjector(p.Name) {
			side = append(side, named{p.Name, s.Detach(p.T)})
		}
	}
	if err := writeTensors(s, filepath.Join(dir, moseWeightsFile), side, meta); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, moseConfigFile), moseConfig(c, st, part))
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
func moseConfig(c *components, st State, part string) MoseConfig {
	a := c.cfg.Adapters
	names, K := c.set.Config.Groups()
	mc := MoseConfig{FormatVersion: 1, Method: a.Method, Rank: a.Rank, Alpha: a.Alpha, RSLoRA: a.RSLoRA,
		Scaling: c.set.Config.Scaling(), Targets: a.Targets, Gate: MoseGate{TopK: a.Gate.TopK, Temperature: a.Gate.Temperature},
		ModalityWeights: MoseWeights{Mode: a.ModalityWeights, Visual: st.ModalityWeights[0], NonVisual: st.ModalityWeights[1]},
		ModalityIDs:     map[string]int{"text": 0, "visual": 1, "audio": 2, "pad": 3},
		Inputs:          c.spec.Inputs, PEFTPart: part, Projectors: c.cfg.Model.TrainProjectors,
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
		mc.Groups = append(mc.Groups, MoseGroup{Name: g, Experts: K[i], Modalities: mods, Gated: K[i] > 1})
	}
	return mc
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteBytes(path, append(b, '\n'))
}

// isExport reports whether dir is a PEFT export (rather than a checkpoint).
func isExport(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, peftConfigFile))
	return err == nil
}

// loadExport loads an exported adapter (checking it matches the recipe):
// the sidecar when there is one, else the PEFT LoRA weights.
func (c *components) loadExport(dir string) error {
	var pc peftConfig
	pcPath := filepath.Join(dir, peftConfigFile)
	b, err := fsutil.ReadRegularLimit(pcPath, maxSidecarJSON)
	if err == nil {
		err = strictjson.Unmarshal(b, &pc, pcPath)
	}
	if err != nil {
		return err
	}
	if err := checkPEFTConfig(pc, pcPath); err != nil {
		return err
	}
	a := c.cfg.Adapters
	if pc.R != a.Rank || pc.LoraAlpha != a.Alpha || pc.UseRSLoRA != a.RSLoRA || strings.Join(pc.TargetModules, ",") != strings.Join(a.Targets, ",") {
		return fmt.Errorf("%s (r=%d, alpha=%g, rslora=%v, targets=%v) does not match the recipe's adapters (r=%d, alpha=%g, rslora=%v, targets=%v)",
			filepath.Join(dir, peftConfigFile), pc.R, pc.LoraAlpha, pc.UseRSLoRA, pc.TargetModules, a.Rank, a.Alpha, a.RSLoRA, a.Targets)
	}
	side := filepath.Join(dir, moseWeightsFile)
	_, sideErr := os.Lstat(side)
	_, mcErr := os.Lstat(filepath.Join(dir, moseConfigFile))
	if (sideErr == nil) != (mcErr == nil) {
		return fmt.Errorf("%s holds only one of %s and %s: an incomplete export", dir, moseWeightsFile, moseConfigFile)
	}
	if sideErr == nil {
		mc, err := readMoseConfig(filepath.Join(dir, moseConfigFile))
		if err != nil {
			return err
		}
		if err := c.checkMoseConfig(mc, filepath.Join(dir, moseConfigFile)); err != nil {
			return err
		}
		if err := c.set.SetModalityWeights(mc.ModalityWeights.Visual, mc.ModalityWeights.NonVisual); err != nil {
			return err
		}
		return c.loadAdapters(side)
	}
	if a.Method != experts.MethodLoRA {
		return errors.New("a PEFT export without mose_adapter.safetensors holds plain LoRA only")
	}
	return c.loadPEFT(filepath.Join(dir, peftWeightsFile))
}
