package trainer

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// maxSidecarJSON bounds the JSON files of an export read back.
const maxSidecarJSON = 16 << 20

// readMoseConfig reads mose_config.json strictly: every field present and
// not null, no unknown or repeated key. Nothing is defaulted: a missing
// modality weight would otherwise read as 0 and switch experts off.
func readMoseConfig(path string) (MoseConfig, error) {
	var mc MoseConfig
	b, err := fsutil.ReadRegularLimit(path, maxSidecarJSON)
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
func (c *components) checkMoseConfig(mc MoseConfig, path string) error {
	a := c.cfg.Adapters
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
	if want := c.set.Config.Scaling(); math.Abs(mc.Scaling-want) > 1e-12*math.Max(1, math.Abs(want)) {
		return bad("scaling", "%v, but rank %d and alpha %g give %v", mc.Scaling, a.Rank, a.Alpha, want)
	}
	names, K := c.set.Config.Groups()
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
	if mc.Projectors != c.cfg.Model.TrainProjectors {
		return bad("projectors_trained", "%v, the recipe's model.train_projectors is %v", mc.Projectors, c.cfg.Model.TrainProjectors)
	}
	return nil
}

// checkPEFTConfig refuses adapter_config.json fields that change the math
// in ways mose does not implement (DoRA, biases, per-module ranks, ...):
// reading such an adapter as plain LoRA would silently compute something
// else.
func checkPEFTConfig(pc peftConfig, path string) error {
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
