package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// State is trainer_state.json: everything besides tensors that resume needs.
type State struct {
	Step            int               `json:"step"`            // optimizer steps done
	Epoch           int               `json:"epoch"`           // sampler epoch of the next batch
	Sampler         data.SamplerState `json:"sampler"`         // position of the next batch
	RNG             RNGState          `json:"rng"`             // how dropout and gate noise are seeded
	LR              float64           `json:"lr"`              // learning rate of the last step
	OptimizerSteps  int               `json:"optimizer_steps"` // AdamW updates done (skipped steps excluded)
	BestKey         string            `json:"best_key,omitempty"`
	BestMetric      *float64          `json:"best_metric,omitempty"`
	BestStep        int               `json:"best_step,omitempty"`
	EvalsNoImprove  int               `json:"evals_without_improvement"`
	ModalityWeights [2]float64        `json:"modality_weights"` // visual, nonvisual
	NonFiniteInARow int               `json:"nonfinite_in_a_row"`
	SkippedSteps    int               `json:"skipped_steps"`
	TokensSeen      int64             `json:"tokens_seen"`
	RecipeHash      string            `json:"recipe_hash"`
	Version         string            `json:"mose_version"`
	Time            string            `json:"time"`
}

// RNGState records the seeding scheme. libtorch's generator state is not
// saved: instead the generator is reseeded from (seed, step, micro-batch)
// before every micro-batch, so dropout and gate noise after a resume are
// the ones an uninterrupted run draws.
type RNGState struct {
	Seed   int64  `json:"seed"`
	Scheme string `json:"scheme"`
}

const rngScheme = "manual_seed(seed*1000003 + step*131 + micro) before each micro-batch"

// Checkpoint file names.
const (
	adapterFile   = "adapter.safetensors"
	optimizerFile = "optimizer.safetensors"
	stateFile     = "trainer_state.json"
	recipeFile    = "recipe.yaml"
	latestFile    = "latest"
	stepPrefix    = "step-"
	tmpPrefix     = ".tmp-"
)

// stepDir is the name of step's checkpoint directory.
func stepDir(step int) string { return fmt.Sprintf("%s%07d", stepPrefix, step) }

// writeCheckpoint writes a complete checkpoint atomically: every file into
// a temporary directory (each fsynced), the directory renamed to
// step-NNNNNNN, then `latest` updated. fill writes the tensor files.
func writeCheckpoint(root string, st State, recipe []byte, fill func(dir string) error) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	final := filepath.Join(root, stepDir(st.Step))
	tmp, err := os.MkdirTemp(root, tmpPrefix+stepDir(st.Step)+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	st.Time = time.Now().UTC().Format(time.RFC3339)
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := fill(tmp); err != nil {
		return "", err
	}
	if err := fsutil.WriteBytes(filepath.Join(tmp, recipeFile), recipe); err != nil {
		return "", err
	}
	if err := fsutil.WriteBytes(filepath.Join(tmp, stateFile), append(js, '\n')); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return "", err
	}
	if err := os.RemoveAll(final); err != nil { // a stale copy of the same step
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(root); err != nil {
		return "", err
	}
	return final, writeLatest(root, stepDir(st.Step))
}

// writeLatest points `latest` at name, atomically.
func writeLatest(root, name string) error {
	return fsutil.WriteBytes(filepath.Join(root, latestFile), []byte(name+"\n"))
}

// checkpoints lists the complete checkpoints under root by step, oldest
// first. Temporary directories of interrupted writes are not listed.
func checkpoints(root string) ([]int, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, stepPrefix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, stepPrefix))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, name, stateFile)); err == nil {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// findResume resolves --resume: "" starts fresh; "auto" picks the newest
// complete checkpoint under root (fresh if there is none); anything else is
// a checkpoint directory that must exist and be complete.
func findResume(root, resume string) (string, error) {
	switch resume {
	case "":
		return "", nil
	case "auto":
		steps, err := checkpoints(root)
		if err != nil || len(steps) == 0 {
			return "", err
		}
		return filepath.Join(root, stepDir(steps[len(steps)-1])), nil
	}
	if _, err := os.Stat(filepath.Join(resume, stateFile)); err != nil {
		return "", fmt.Errorf("%w: %s is not a complete checkpoint (no %s)", ErrResume, resume, stateFile)
	}
	return resume, nil
}

// readState reads a checkpoint's trainer_state.json.
func readState(dir string) (State, error) {
	var st State
	b, err := fsutil.ReadRegularLimit(filepath.Join(dir, stateFile), fsutil.MaxConfigSize)
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrResume, err)
	}
	if err := strictjson.Unmarshal(b, &st, filepath.Join(dir, stateFile)); err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrResume, filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// rotate deletes all but the keep newest checkpoints, and the best one. A
// checkpoint is first renamed to a temporary name, then removed, so that a
// crash mid-removal never leaves a partial step-NNNNNNN directory. Leftover
// temporary directories (of interrupted writes or removals) go too.
func rotate(root string, keep, best int) error {
	steps, err := checkpoints(root)
	if err != nil {
		return err
	}
	var errs []error
	for i, step := range steps {
		if i >= len(steps)-keep || step == best {
			continue
		}
		doomed := filepath.Join(root, tmpPrefix+"removed-"+stepDir(step))
		if err := os.Rename(filepath.Join(root, stepDir(step)), doomed); err != nil {
			errs = append(errs, err)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(root, e.Name())))
		}
	}
	return errors.Join(errs...)
}
