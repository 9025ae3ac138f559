package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
)

// checksummed are the files of a checkpoint whose SHA-256 trainer_state.json
// records (its "files" field); trainer_state.json covers itself with its
// "checksum" field.
var checksummed = []string{AdapterFile, OptimizerFile, RecipeFile}

// requiredKeys are the trainer_state.json keys that must be present: every
// field of State without omitempty.
var requiredKeys = func() []string {
	var keys []string
	t := reflect.TypeOf(State{})
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" && !strings.Contains(opts, "omitempty") {
			keys = append(keys, name)
		}
	}
	return keys
}()

// encodeState is the canonical form of st as written to trainer_state.json,
// with its checksum: the SHA-256 of the canonical form with checksum "".
func encodeState(st State) ([]byte, error) {
	sum, err := stateChecksum(st)
	if err != nil {
		return nil, err
	}
	st.Checksum = sum
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// stateChecksum is the SHA-256 of st's canonical JSON with checksum "".
func stateChecksum(st State) (string, error) {
	st.Checksum = ""
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	return Hash(b), nil
}

// WriteState writes st (with its checksum) to dir/trainer_state.json,
// atomically.
func WriteState(dir string, st State) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	return fsutil.WriteBytes(filepath.Join(dir, StateFile), b)
}

// FileSums computes the SHA-256 of each checksummed file in dir.
func FileSums(dir string) (map[string]string, error) {
	sums := map[string]string{}
	for _, name := range checksummed {
		h, err := SHA256File(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		sums[name] = h
	}
	return sums, nil
}

// SHA256File is the hex SHA-256 of a file's content, streamed.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Decode reads dir's trainer_state.json strictly — no unknown or
// repeated keys, no missing ones, a matching checksum — and checks the range
// and consistency of every field. It does not read the tensor files (see
// Read).
func Decode(dir string) (State, error) {
	var st State
	path := filepath.Join(dir, StateFile)
	if err := regularFile(path); err != nil {
		return st, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		return st, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCheckpoint, path, fmt.Sprintf(format, a...))
	}
	keys, err := topLevelKeys(b)
	if err != nil {
		return st, bad("%v", err)
	}
	if _, ok := keys["checksum"]; !ok {
		return st, bad(`no "checksum" field: written by a mose version before checkpoint checksums (or edited), so it cannot be verified; resume from a checkpoint written by this version, or start a new run`)
	}
	for _, k := range requiredKeys {
		if _, ok := keys[k]; !ok {
			return st, bad("required field %q is missing", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, bad("%v", err)
	}
	if dec.More() {
		return st, bad("trailing data after the JSON object")
	}
	if sum, err := stateChecksum(st); err != nil || sum != st.Checksum {
		return st, bad("checksum mismatch: the file was modified or damaged after it was written")
	}
	if err := st.check(filepath.Base(filepath.Clean(dir))); err != nil {
		return st, bad("%v", err)
	}
	return st, nil
}

// topLevelKeys returns the keys of a JSON object, refusing repeated ones.
func topLevelKeys(b []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		if keys[k] {
			return nil, fmt.Errorf("duplicate key %q (it appears twice)", k)
		}
		keys[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("key %q: %v", k, err)
		}
	}
	return keys, nil
}

// check tests the range and consistency of every field. name is the
// checkpoint directory's name: a step-NNNNNNN name must match step.
func (st State) check(name string) error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case st.Step < 0:
		return fmt.Errorf("step %d is negative", st.Step)
	case st.OptimizerSteps < 0 || st.OptimizerSteps > st.Step:
		return fmt.Errorf("optimizer_steps %d is outside [0, step=%d]", st.OptimizerSteps, st.Step)
	case st.SkippedSteps < 0 || st.OptimizerSteps+st.SkippedSteps != st.Step:
		return fmt.Errorf("skipped_steps %d + optimizer_steps %d != step %d", st.SkippedSteps, st.OptimizerSteps, st.Step)
	case st.NonFiniteInARow < 0 || st.NonFiniteInARow > st.SkippedSteps:
		return fmt.Errorf("nonfinite_in_a_row %d is outside [0, skipped_steps=%d]", st.NonFiniteInARow, st.SkippedSteps)
	case st.Epoch < 0 || st.Sampler.Epoch != st.Epoch:
		return fmt.Errorf("epoch %d is negative or differs from sampler.epoch %d", st.Epoch, st.Sampler.Epoch)
	case st.Sampler.Cursor < 0:
		return fmt.Errorf("sampler.cursor %d is negative", st.Sampler.Cursor)
	case st.Step > 0 && st.Sampler.Epoch == 0 && st.Sampler.Cursor == 0:
		return fmt.Errorf("sampler is at the start of epoch 0 after %d steps", st.Step)
	case st.RNG.Scheme != RNGScheme && !slices.Contains(OldRNGSchemes, st.RNG.Scheme):
		return fmt.Errorf("rng.scheme %q is not this version's %q nor an earlier version's", st.RNG.Scheme, RNGScheme)
	case uint64(st.RNG.Seed) != st.Sampler.Seed:
		return fmt.Errorf("rng.seed %d differs from sampler.seed %d", st.RNG.Seed, st.Sampler.Seed)
	case !finite(st.LR) || st.LR < 0:
		return fmt.Errorf("lr %v is not a finite non-negative number", st.LR)
	case st.BestMetric != nil && !finite(*st.BestMetric):
		return fmt.Errorf("best_metric %v is not finite", *st.BestMetric)
	case st.BestMetric != nil && st.BestKey == "":
		return errors.New("best_metric without best_key")
	case st.BestStep < 0 || st.BestStep > st.Step:
		return fmt.Errorf("best_step %d is outside [0, step=%d]", st.BestStep, st.Step)
	case st.EvalsNoImprove < 0:
		return fmt.Errorf("evals_without_improvement %d is negative", st.EvalsNoImprove)
	case st.LastEval < 0 || st.LastEval > st.Step:
		return fmt.Errorf("last_eval_step %d is outside [0, step=%d]", st.LastEval, st.Step)
	case st.TokensSeen < 0:
		return fmt.Errorf("tokens_seen %d is negative", st.TokensSeen)
	case st.Lineage == "":
		return errors.New("lineage is empty")
	}
	for i, w := range st.ModalityWeights {
		if !finite(w) || w <= 0 {
			return fmt.Errorf("modality_weights[%d] = %v is not a finite positive number", i, w)
		}
	}
	if err := st.Interval.check(st.Step); err != nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339, st.Time); err != nil {
		return fmt.Errorf("time %q: %v", st.Time, err)
	}
	if f := st.DataFingerprint; f != "" && len(f) != 64 {
		return fmt.Errorf("data_fingerprint %q is not a SHA-256", f)
	}
	if len(st.RecipeHash) != 64 {
		return fmt.Errorf("recipe_hash %q is not a SHA-256", st.RecipeHash)
	}
	for _, f := range checksummed {
		if len(st.Files[f]) != 64 {
			return fmt.Errorf("files[%q]: no SHA-256 recorded", f)
		}
	}
	for f := range st.Files {
		if !slices.Contains(checksummed, f) {
			return fmt.Errorf("files[%q]: not a checkpoint file", f)
		}
	}
	if s, ok := strings.CutPrefix(name, stepPrefix); ok {
		if n, err := strconv.Atoi(s); err == nil && n != st.Step {
			return fmt.Errorf("step %d does not match the directory name %s", st.Step, name)
		}
	}
	return nil
}

func (iv Interval) check(step int) error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case iv.Steps < 0 || iv.Steps > step || iv.Skipped < 0 || iv.Skipped > iv.Steps:
		return fmt.Errorf("log_interval: steps %d / skipped %d out of range", iv.Steps, iv.Skipped)
	case !finite(iv.Emotion) || !finite(iv.Balance) || !finite(iv.Z):
		return errors.New("log_interval: non-finite loss sums")
	case iv.Tokens < 0 || iv.DurNS < 0:
		return errors.New("log_interval: negative tokens or duration")
	}
	return nil
}

// Read validates a whole checkpoint before anything of it is used: the
// state (decodeState), the recorded SHA-256 of every file, and the
// finiteness of every tensor. Shapes are checked against the recipe when the
// tensors are copied in (copyInto).
func Read(dir string) (State, error) {
	st, err := Decode(dir)
	if err != nil {
		return st, err
	}
	if err := VerifyFiles(dir, st); err != nil {
		return st, err
	}
	for _, f := range []string{AdapterFile, OptimizerFile} {
		if err := finiteFile(filepath.Join(dir, f)); err != nil {
			return st, fmt.Errorf("%w: %v", ErrCheckpoint, err)
		}
	}
	return st, nil
}

// VerifyFiles checks each checksummed file of dir against st.Files.
func VerifyFiles(dir string, st State) error {
	for _, name := range checksummed {
		path := filepath.Join(dir, name)
		if err := regularFile(path); err != nil {
			return fmt.Errorf("%w: %v", ErrCheckpoint, err)
		}
		h, err := SHA256File(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCheckpoint, err)
		}
		if h != st.Files[name] {
			return fmt.Errorf("%w: %s: SHA-256 %s differs from %s recorded in %s: the file is damaged", ErrCheckpoint, path, h[:12], st.Files[name][:12], StateFile)
		}
	}
	return nil
}

// regularFile refuses a missing path or one that is not a regular file
// (a FIFO would block the read forever).
func regularFile(path string) error { return fsutil.CheckRegular(path) }

// finiteFile checks that every tensor of a float32 safetensors file is
// finite.
func finiteFile(path string) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, info := range f.Tensors() {
		if info.DType != safetensors.F32 {
			return fmt.Errorf("%s: tensor %q is %s, checkpoints hold F32", path, info.Name, info.DType)
		}
		b, err := f.Read(info.Name)
		if err != nil {
			return err
		}
		for i := 0; i+4 <= len(b); i += 4 {
			bits := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
			if bits&0x7f800000 == 0x7f800000 { // exponent all ones: Inf or NaN
				return fmt.Errorf("%s: tensor %q holds NaN or Inf (element %d)", path, info.Name, i/4)
			}
		}
	}
	return nil
}

// Hash is the hex SHA-256 of b.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
