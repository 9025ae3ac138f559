package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/safetensors"
)

// The attached layout: `mose attach` turns a plain HF model dir (the base)
// into a mose model dir without copying or rewriting its weights. The new
// dir holds
//
//	config.json                    the base's, plus the "mose" section
//	model.safetensors.index.json   base tensors -> links, projectors.* -> AttachedProjectors
//	<base shard names>             symlinks to the base's weight files (a single
//	                               model.safetensors is linked as AttachedBaseWeights)
//	AttachedProjectors             the freshly initialised projectors (float32)
//	tokenizer.json, ...            symlinks to the base's other files
//	AttachRecord                   what was linked: targets, sizes, the base config's hash
//
// transformers loads it as it is (the projectors are unexpected keys); mose
// checks AttachRecord on every Load, so a base that moved or changed is an
// error naming the file rather than a silently different model.
const (
	AttachRecord        = "mose_attach.json"
	AttachedProjectors  = "mose-projectors.safetensors"
	AttachedBaseWeights = "base-model.safetensors"
)

// AttachOptions say what Attach adds to a base model.
type AttachOptions struct {
	Mose json.RawMessage // the "mose" section: inputs, prompt, labels
	Seed uint64          // of the projectors' init
}

// attachRecord is AttachRecord's content.
type attachRecord struct {
	FormatVersion    int                   `json:"format_version"`
	Base             string                `json:"base"`
	BaseConfigSHA256 string                `json:"base_config_sha256"`
	Seed             uint64                `json:"seed"`
	Projectors       string                `json:"projectors"`
	Links            map[string]attachLink `json:"links"`
}

type attachLink struct {
	Target string `json:"target"`
	Size   int64  `json:"size"`
}

// Attach writes the attached layout for base into out (which must not
// exist, or be empty), with the mose section and projectors whose weights
// and biases are drawn, as PyTorch's nn.Linear does, from U(±1/√fan_in)
// with a generator seeded by opt.Seed. It writes into a temporary dir
// renamed at the end: on error nothing is left. It returns the new config.
func Attach(base, out string, opt AttachOptions) (Config, error) {
	base, err := filepath.Abs(base)
	if err != nil {
		return Config{}, err
	}
	raw, newRaw, cfg, baseCfg, err := attachConfig(base, opt)
	if err != nil {
		return Config{}, err
	}
	weightMap, links, err := baseFiles(base, baseCfg)
	if err != nil {
		return Config{}, err
	}
	proj := newProjectors(cfg, opt.Seed, weightMap)
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return Config{}, fmt.Errorf("%w: %s exists and is not empty", ErrConfig, out)
	}
	rec := attachRecord{FormatVersion: 1, Base: base, Seed: opt.Seed, Projectors: AttachedProjectors, Links: map[string]attachLink{}}
	sum := sha256.Sum256(raw)
	rec.BaseConfigSHA256 = hex.EncodeToString(sum[:])
	return cfg, writeAttached(out, rec, links, proj, weightMap, newRaw)
}

// attachConfig reads base's config.json (raw) and returns it with opt's
// "mose" section added (newRaw), parsed (cfg), and the base's own config.
func attachConfig(base string, opt AttachOptions) (raw, newRaw []byte, cfg, baseCfg Config, err error) {
	cfgPath := filepath.Join(base, "config.json")
	if raw, err = os.ReadFile(cfgPath); err != nil {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%w: %s: %v", ErrConfig, cfgPath, err)
	}
	if _, ok := keys["mose"]; ok {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%w: %s already has a \"mose\" section: attach to a plain HF model dir", ErrConfig, cfgPath)
	}
	if _, err := os.Stat(filepath.Join(base, AttachRecord)); err == nil {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%w: %s is itself an attached dir", ErrConfig, base)
	}
	if baseCfg, err = ParseConfig(raw); err != nil {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%s: %w", cfgPath, err)
	}
	keys["mose"] = opt.Mose
	if newRaw, err = json.MarshalIndent(keys, "", "  "); err != nil {
		return nil, nil, cfg, baseCfg, err
	}
	if cfg, err = ParseConfig(newRaw); err != nil {
		return nil, nil, cfg, baseCfg, fmt.Errorf("the mose section: %w", err)
	}
	if len(cfg.Projectors) == 0 {
		return nil, nil, cfg, baseCfg, fmt.Errorf("%w: mose.inputs: no modality inputs to attach", ErrConfig)
	}
	return raw, newRaw, cfg, baseCfg, nil
}

// baseFiles checks the base's weights (complete for its config, no
// projectors yet) and returns the weight map of the attached dir (tensor
// -> file) and the links to make into the base (name -> target): its weight
// files, its tokenizer and the rest.
func baseFiles(base string, baseCfg Config) (weightMap, links map[string]string, err error) {
	ck, err := safetensors.OpenDir(base)
	if err != nil {
		return nil, nil, fmt.Errorf("base model %s: %w", base, err)
	}
	names := ck.Names()
	err = checkTensors(baseCfg, ck)
	ck.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("base model %s: %w", base, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "projectors.") {
			return nil, nil, fmt.Errorf("%w: base model %s already holds %s", ErrWeights, base, n)
		}
	}
	weightMap, links = map[string]string{}, map[string]string{}
	if _, err := os.Stat(filepath.Join(base, safetensors.SingleFileName(safetensors.DefaultPrefix))); err == nil {
		links[AttachedBaseWeights] = filepath.Join(base, safetensors.SingleFileName(safetensors.DefaultPrefix))
		for _, n := range names {
			weightMap[n] = AttachedBaseWeights
		}
	} else {
		b, err := os.ReadFile(filepath.Join(base, safetensors.IndexFileName(safetensors.DefaultPrefix)))
		if err != nil {
			return nil, nil, err
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrWeights, safetensors.IndexFileName(safetensors.DefaultPrefix), err)
		}
		for n, shard := range idx.WeightMap {
			if shard == AttachedProjectors || strings.ContainsAny(shard, `/\`) {
				return nil, nil, fmt.Errorf("%w: base index maps %s to %q, which attach cannot link", ErrWeights, n, shard)
			}
			weightMap[n] = shard
			links[shard] = filepath.Join(base, shard)
		}
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries { // tokenizer and the rest: linked too
		n := e.Name()
		if e.IsDir() || n == "config.json" || n == AttachRecord || n == AttachedProjectors || strings.HasSuffix(n, ".safetensors") ||
			n == safetensors.IndexFileName(safetensors.DefaultPrefix) || strings.HasPrefix(n, ".") {
			continue
		}
		links[n] = filepath.Join(base, n)
	}
	return weightMap, links, nil
}

// newProjectors initialises cfg's projectors as nn.Linear does
// (uniform in ±1/√fan_in, seeded per projector) and maps them in weightMap.
func newProjectors(cfg Config, seed uint64, weightMap map[string]string) []safetensors.Tensor {
	var proj []safetensors.Tensor
	D := int64(cfg.HiddenSize)
	for i, pc := range cfg.Projectors {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+0x70726f6a))
		for _, t := range pc.tensors(D) {
			fanIn := t.Shape[len(t.Shape)-1]
			if len(t.Shape) == 1 { // a bias: the fan-in of its weight
				fanIn = biasFanIn(pc, t.Name, D)
			}
			n := int64(1)
			for _, d := range t.Shape {
				n *= d
			}
			bound := 1 / math.Sqrt(float64(fanIn))
			v := make([]float32, n)
			for j := range v {
				v[j] = float32((2*rng.Float64() - 1) * bound)
			}
			proj = append(proj, safetensors.Tensor{Name: t.Name, DType: safetensors.F32, Shape: t.Shape, Data: safetensors.Float32sToBytes(v)})
			weightMap[t.Name] = AttachedProjectors
		}
	}
	return proj
}

// writeAttached writes the attached dir out through a temporary dir
// renamed at the end: the links, the projectors, the index, config.json
// (newRaw) and the attach record.
func writeAttached(out string, rec attachRecord, links map[string]string, proj []safetensors.Tensor, weightMap map[string]string, newRaw []byte) error {
	tmp := filepath.Clean(out) + fmt.Sprintf(".tmp-%d", os.Getpid())
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for name, target := range links {
		st, err := os.Stat(target)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, filepath.Join(tmp, name)); err != nil {
			return err
		}
		rec.Links[name] = attachLink{Target: target, Size: st.Size()}
	}
	if err := safetensors.WriteFile(filepath.Join(tmp, AttachedProjectors), proj, map[string]string{"format": "pt", "mose": "attach"}); err != nil {
		return err
	}
	idx, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"mose": "attach"}, "weight_map": weightMap}, "", "  ")
	if err != nil {
		return err
	}
	recB, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{safetensors.IndexFileName(safetensors.DefaultPrefix), idx}, {"config.json", newRaw}, {AttachRecord, recB}} {
		if err := os.WriteFile(filepath.Join(tmp, f.name), append(f.b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return err
	}
	os.Remove(out) // an empty dir
	return os.Rename(tmp, out)
}

// biasFanIn is the fan-in of the weight a projector bias belongs to.
func biasFanIn(pc ProjectorConfig, bias string, D int64) int64 {
	if pc.Kind == ProjectorMLP2 && strings.HasSuffix(bias, ".2.bias") {
		return D
	}
	return int64(pc.Dim)
}

// CheckAttached verifies an attached dir (one with AttachRecord): every link
// still points where attach made it point, at a file of the same size, and
// the base's config.json is unchanged. A dir without AttachRecord passes.
func CheckAttached(dir string) error {
	path := filepath.Join(dir, AttachRecord)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var rec attachRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if rec.FormatVersion != 1 || rec.Base == "" || len(rec.Links) == 0 {
		return fmt.Errorf("%w: %s: format_version 1 with base and links expected", ErrConfig, path)
	}
	redo := fmt.Sprintf("re-run mose attach --model %s", rec.Base)
	names := make([]string, 0, len(rec.Links))
	for n := range rec.Links {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l := rec.Links[n]
		p := filepath.Join(dir, n)
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("%w: %s: %v (attached dirs link the base's files; %s)", ErrWeights, p, err, redo)
		}
		if target != l.Target {
			return fmt.Errorf("%w: %s points to %s, %s recorded %s (%s)", ErrWeights, p, target, AttachRecord, l.Target, redo)
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %s: the base file is gone: %v (%s)", ErrWeights, p, err, redo)
		}
		if st.Size() != l.Size {
			return fmt.Errorf("%w: %s: the base file changed since mose attach (%d bytes, attached at %d; %s)", ErrWeights, l.Target, st.Size(), l.Size, redo)
		}
	}
	raw, err := os.ReadFile(filepath.Join(rec.Base, "config.json"))
	if err != nil {
		return fmt.Errorf("%w: the base's config.json: %v (%s)", ErrConfig, err, redo)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != rec.BaseConfigSHA256 {
		return fmt.Errorf("%w: %s changed since mose attach (%s)", ErrConfig, filepath.Join(rec.Base, "config.json"), redo)
	}
	return nil
}
