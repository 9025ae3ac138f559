package stack

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// Files of a PEFT export (`mose export --format peft`).
const (
	PEFTConfigFile  = "adapter_config.json"
	PEFTWeightsFile = "adapter_model.safetensors"
	MoseConfigFile  = "mose_config.json"
	MoseWeightsFile = "mose_adapter.safetensors"
	// PEFTPrefix starts every tensor name of adapter_model.safetensors.
	PEFTPrefix = "base_model.model."
)

// MaxSidecarJSON bounds the JSON files of an export read back.
const MaxSidecarJSON = 16 << 20

// ReadMoseConfig reads mose_config.json strictly: every field present and
// not null, no unknown or repeated key. Nothing is defaulted: a missing
// modality weight would otherwise read as 0 and switch experts off.
func ReadMoseConfig(path string) (MoseConfig, error) {
	var mc MoseConfig
	b, err := fsutil.ReadRegularLimit(path, MaxSidecarJSON)
	if err != nil {
		return mc, err
	}
	if err := strictjson.Decode(b, &mc, path); err != nil {
		return mc, err
	}
	return mc, nil
}

// checkMoseConfig refuses a sidecar that does not describe the adapters the
// recipe builds (each mismatch changes the math), or whose values are out
// of range.
func (c *Stack) checkMoseConfig(mc MoseConfig, path string) error {
	a := c.Cfg.Adapters
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", path, key, fmt.Sprintf(format, args...))
	}
	if mc.FormatVersion != 1 {
		return bad("format_version", "%d is not a version this mose reads (1)", mc.FormatVersion)
	}
	if mc.Method != a.Method {
		return bad("method", "the export is a %s adapter, the recipe says %s", mc.Method, a.Method)
	}
	if mc.Rank != a.Rank || mc.Alpha != a.Alpha || mc.RSLoRA != a.RSLoRA || strings.Join(mc.Targets, ",") != strings.Join(a.Targets, ",") {
		return bad("rank/alpha/rslora/target_modules", "(%d, %g, %v, %v) do not match the recipe's adapters (%d, %g, %v, %v)",
			mc.Rank, mc.Alpha, mc.RSLoRA, mc.Targets, a.Rank, a.Alpha, a.RSLoRA, a.Targets)
	}
	if want := c.Set.Config.Scaling(); math.Abs(mc.Scaling-want) > 1e-12*math.Max(1, math.Abs(want)) {
		return bad("scaling", "%v, but rank %d and alpha %g give %v", mc.Scaling, a.Rank, a.Alpha, want)
	}
	names, K := c.Set.Config.Groups()
	var gotNames []string
	var gotK []int
	for _, g := range mc.Groups {
		gotNames, gotK = append(gotNames, g.Name), append(gotK, g.Experts)
	}
	if !slices.Equal(names, gotNames) || !slices.Equal(K, gotK) {
		return bad("groups", "%v with experts %v, the recipe builds %v with %v", gotNames, gotK, names, K)
	}
	if mc.Gate.TopK != a.Gate.TopK || mc.Gate.Temperature != a.Gate.Temperature {
		return bad("gate", "top_k %d, temperature %g; the recipe says top_k %d, temperature %g", mc.Gate.TopK, mc.Gate.Temperature, a.Gate.TopK, a.Gate.Temperature)
	}
	w := mc.ModalityWeights
	if w.Mode != a.ModalityWeights {
		return bad("modality_weights.mode", "%q, the recipe says %q", w.Mode, a.ModalityWeights)
	}
	for _, v := range []struct {
		key string
		x   float64
	}{{"modality_weights.visual", w.Visual}, {"modality_weights.nonvisual", w.NonVisual}} {
		if !(v.x > 0) || math.IsInf(v.x, 0) {
			return bad(v.key, "must be a finite number > 0, got %v", v.x)
		}
	}
	if mc.Projectors != c.Cfg.Model.TrainProjectors {
		return bad("projectors_trained", "%v, the recipe's model.train_projectors is %v", mc.Projectors, c.Cfg.Model.TrainProjectors)
	}
	return nil
}

// checkPEFTConfig refuses adapter_config.json fields that change the math
// in ways mose does not implement (DoRA, biases, per-module ranks, ...):
// reading such an adapter as plain LoRA would silently compute something
// else.
func checkPEFTConfig(pc PEFTConfig, path string) error {
	bad := func(key string, v any) error {
		return fmt.Errorf("%s: %s: %v is not supported (mose reads plain LoRA adapters)", path, key, v)
	}
	switch {
	case pc.PeftType != "LORA":
		return bad("peft_type", pc.PeftType)
	case pc.UseDoRA:
		return bad("use_dora", true)
	case pc.Bias != "none" && pc.Bias != "":
		return bad("bias", pc.Bias)
	case pc.FanInFanOut:
		return bad("fan_in_fan_out", true)
	case len(pc.LayersToTransform) > 0:
		return bad("layers_to_transform", pc.LayersToTransform)
	case len(pc.RankPattern) > 0:
		return bad("rank_pattern", pc.RankPattern)
	case len(pc.AlphaPattern) > 0:
		return bad("alpha_pattern", pc.AlphaPattern)
	case len(pc.ModulesToSave) > 0:
		return bad("modules_to_save", pc.ModulesToSave)
	case pc.R < 1:
		return bad("r", pc.R)
	case !(pc.LoraAlpha > 0) || math.IsInf(pc.LoraAlpha, 0):
		return bad("lora_alpha", pc.LoraAlpha)
	}
	return nil
}

// PEFTConfig is adapter_config.json, with the fields PEFT's LoraConfig reads.
type PEFTConfig struct {
	PeftType    string  `json:"peft_type"`
	TaskType    string  `json:"task_type"`
	BaseModel   string  `json:"base_model_name_or_path"`
	R           int     `json:"r"`
	LoraAlpha   float64 `json:"lora_alpha"`
	LoraDropout float64 `json:"lora_dropout"`
	UseRSLoRA   bool    `json:"use_rslora"`
	// TargetModules is PEFT's target_modules: a list of module names (each
	// matching a module whose name ends with it), as mose writes for a
	// LLaMA-family model, or one regular expression that must match a
	// module's whole name, as mose writes for a Qwen2.5-Omni thinker
	// (PEFTTargets).
	TargetModules     any            `json:"target_modules"`
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

// IsExport reports whether dir is a PEFT export (rather than a checkpoint).
func IsExport(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, PEFTConfigFile))
	return err == nil
}

// LoadExport loads an exported adapter (checking it matches the recipe):
// the sidecar when there is one, else the PEFT LoRA weights.
func (c *Stack) LoadExport(dir string) error {
	var pc PEFTConfig
	pcPath := filepath.Join(dir, PEFTConfigFile)
	b, err := fsutil.ReadRegularLimit(pcPath, MaxSidecarJSON)
	if err == nil {
		err = strictjson.Unmarshal(b, &pc, pcPath)
	}
	if err != nil {
		return err
	}
	if err := checkPEFTConfig(pc, pcPath); err != nil {
		return err
	}
	if err := checkPEFTFields(b, pcPath); err != nil {
		return err
	}
	a := c.Cfg.Adapters
	if pc.R != a.Rank || pc.LoraAlpha != a.Alpha || pc.UseRSLoRA != a.RSLoRA || !sameTargets(pc.TargetModules, c.PEFTTargets()) {
		return fmt.Errorf("%s (r=%d, alpha=%g, rslora=%v, targets=%v) does not match the recipe's adapters (r=%d, alpha=%g, rslora=%v, targets=%v)",
			filepath.Join(dir, PEFTConfigFile), pc.R, pc.LoraAlpha, pc.UseRSLoRA, pc.TargetModules, a.Rank, a.Alpha, a.RSLoRA, a.Targets)
	}
	side := filepath.Join(dir, MoseWeightsFile)
	_, sideErr := os.Lstat(side)
	_, mcErr := os.Lstat(filepath.Join(dir, MoseConfigFile))
	if (sideErr == nil) != (mcErr == nil) {
		return fmt.Errorf("%s holds only one of %s and %s: an incomplete export", dir, MoseWeightsFile, MoseConfigFile)
	}
	if sideErr == nil {
		mc, err := ReadMoseConfig(filepath.Join(dir, MoseConfigFile))
		if err != nil {
			return err
		}
		if err := c.checkMoseConfig(mc, filepath.Join(dir, MoseConfigFile)); err != nil {
			return err
		}
		if err := c.Set.SetModalityWeights(mc.ModalityWeights.Visual, mc.ModalityWeights.NonVisual); err != nil {
			return err
		}
		return c.LoadAdapters(side)
	}
	if a.Method != experts.MethodLoRA {
		return errors.New("a PEFT export without mose_adapter.safetensors holds plain LoRA only")
	}
	return c.LoadPEFT(filepath.Join(dir, PEFTWeightsFile))
}

// sameTargets reports whether target_modules as read (a list of strings or
// a string) is want (PEFTTargets: []string or string).
func sameTargets(got, want any) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case []string:
		l, ok := got.([]any)
		if !ok || len(l) != len(w) {
			return false
		}
		for i, v := range l {
			if s, ok := v.(string); !ok || s != w[i] {
				return false
			}
		}
		return true
	}
	return false
}
