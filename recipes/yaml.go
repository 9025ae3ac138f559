package recipes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML writes the resolved recipe: every key, in the struct's order, with no
// comments. Saved with each run, it is read back by Load or Parse into an
// equal Config.
func (c *Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Hash is the hex sha256 of c's canonical YAML (see YAML): equal Configs
// have equal hashes, and changing any key changes it.
func (c *Config) Hash() string {
	b, err := c.YAML()
	if err != nil {
		return "" // not reached: a Config always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// exactKeys are the keys whose change breaks exact resume: they change the
// model, the trainable parameters, the data stream or the optimizer's
// trajectory. Everything else (intervals, rotation, output_dir, workers,
// eval.*, device, threads, train.activation_checkpointing: same gradients) may
// change between a checkpoint and its resume.
var exactKeys = []string{
	"run.seed", "run.world_size",
	"model.path", "model.dtype", "model.train_projectors", "model.quantize",
	"adapters.", "loss.", // every key of these sections
	"data.train", "data.root", "data.max_len", "data.fps", "data.use_audio_in_video",
	"train.batch_size", "train.grad_accum", "train.lr", "train.schedule",
	"train.warmup_steps", "train.min_lr", "train.weight_decay", "train.betas",
	"train.eps", "train.max_grad_norm",
}

func isExactKey(key string) bool {
	for _, e := range exactKeys {
		if key == e || (strings.HasSuffix(e, ".") && strings.HasPrefix(key, e)) {
			return true
		}
	}
	return false
}

// ExactnessDiff returns the keys, in recipe order, whose values differ
// between old (the recipe a checkpoint was written with) and cur (the one
// resuming it) in a way that breaks exact resume; the trainer refuses to
// resume unless --allow-recipe-change. A nil Config counts as all zero. train.max_steps and train.epochs count only when
// they change the length of a decaying schedule (the cosine or linear
// horizon): with max_steps > 0 the horizon is max_steps, with max_steps 0 it
// is epochs times the steps of an epoch, and a switch between the two is
// reported as a change since an epoch's length is not known here.
func ExactnessDiff(old, cur *Config) []string {
	if old == nil {
		old = &Config{}
	}
	if cur == nil {
		cur = &Config{}
	}
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem()
	changed := func(k *keyInfo) bool {
		a, b := ov.FieldByIndex(k.index).Interface(), nv.FieldByIndex(k.index).Interface()
		return !reflect.DeepEqual(a, b)
	}
	horizon := horizonChanges(&old.Train, &cur.Train)
	var out []string
	for i := range keyTable {
		k := &keyTable[i]
		switch {
		case k.key == "train.max_steps" || k.key == "train.epochs":
			if horizon[k.key] {
				out = append(out, k.key)
			}
		case isExactKey(k.key) && changed(k):
			out = append(out, k.key)
		}
	}
	return out
}

// horizonChanges says which of train.max_steps and train.epochs changed the
// schedule's horizon.
func horizonChanges(o, n *Train) map[string]bool {
	decays := func(s string) bool { return s != "constant" }
	if !decays(o.Schedule) && !decays(n.Schedule) {
		return nil // a constant LR (after warmup) has no horizon
	}
	out := map[string]bool{}
	switch {
	case o.MaxSteps > 0 && n.MaxSteps > 0:
		out["train.max_steps"] = o.MaxSteps != n.MaxSteps
	case o.MaxSteps == 0 && n.MaxSteps == 0:
		out["train.epochs"] = o.Epochs != n.Epochs
	default: // steps <-> epochs: assume the horizon moved
		out["train.max_steps"] = true
		out["train.epochs"] = o.Epochs != n.Epochs
	}
	return out
}
