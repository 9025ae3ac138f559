package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/recipes"
)

// State is trainer_state.json: everything besides tensors that resume needs.
// Every field without omitempty is required; Read validates them all
// before a checkpoint is used.
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
	LastEval        int               `json:"last_eval_step"`   // step of the last evaluation counted in best_*, 0 if none
	ModalityWeights [2]float64        `json:"modality_weights"` // visual, nonvisual
	NonFiniteInARow int               `json:"nonfinite_in_a_row"`
	SkippedSteps    int               `json:"skipped_steps"`
	TokensSeen      int64             `json:"tokens_seen"`
	Interval        Interval          `json:"log_interval"` // running sums since the last log line
	Lineage         string            `json:"lineage"`      // id of the run history this checkpoint belongs to
	// DataFingerprint is the SHA-256 of the data.train manifest the run
	// trained on (absent in checkpoints of earlier versions): a resume on a
	// changed manifest (relabelled, resampled) is refused.
	DataFingerprint string            `json:"data_fingerprint,omitempty"`
	RecipeHash      string            `json:"recipe_hash"`
	Version         string            `json:"mose_version"`
	Time            string            `json:"time"`
	Files           map[string]string `json:"files"`    // SHA-256 of adapter, optimizer and recipe files
	Checksum        string            `json:"checksum"` // SHA-256 of this JSON with checksum ""
}

// Interval is the metrics log's running interval (see interval), saved
// so that a resume between two log lines writes the same next line.
type Interval struct {
	Steps   int     `json:"steps"`
	Skipped int     `json:"skipped"`
	Emotion float64 `json:"emotion"`
	Balance float64 `json:"balance"`
	Z       float64 `json:"z"`
	Tokens  int     `json:"tokens"`
	DurNS   int64   `json:"duration_ns"`
}

// RNGState records the seeding scheme. libtorch's generator state is not
// saved: instead the generator is reseeded from (seed, step, micro-batch)
// before every micro-batch and from that and the layer index before every
// decoder layer (SeedFor, SeedForLayer), so dropout and gate noise after a
// resume are the ones an uninterrupted run draws, and a layer recomputed
// alone (activation checkpointing) draws what the full forward drew.
type RNGState struct {
	Seed   int64  `json:"seed"`
	Scheme string `json:"scheme"`
}

// RNGScheme is this version's seeding scheme (SeedFor, SeedForLayer), as
// trainer_state.json records it.
const RNGScheme = "manual_seed(seed*1000003 + step*131 + micro) before each micro-batch, " +
	"manual_seed(splitmix64(that + (layer+1)*0x9e3779b97f4a7c15) >> 1) before each decoder layer"

// OldRNGSchemes are the schemes of earlier mose versions. Their checkpoints
// pass validation (eval and export do not draw random numbers), but a
// resume from one is refused unless --allow-recipe-change (checkRNGScheme).
var OldRNGSchemes = []string{
	"manual_seed(seed*1000003 + step*131 + micro) before each micro-batch",
}

// Checkpoint file names.
const (
	AdapterFile   = "adapter.safetensors"
	OptimizerFile = "optimizer.safetensors"
	StateFile     = "trainer_state.json"
	RecipeFile    = "recipe.yaml"
	LatestFile    = "latest"
	BestFile      = "best" // the best checkpoint's name, as latest names the newest
	stepPrefix    = "step-"
	tmpPrefix     = ".tmp-"
)

// StepDir is the name of step's checkpoint directory.
func StepDir(step int) string { return fmt.Sprintf("%s%07d", stepPrefix, step) }

// Write writes a complete checkpoint atomically: every file into
// a temporary directory (each fsynced), trainer_state.json last with the
// SHA-256 of the others, the directory renamed to step-NNNNNNN, then
// `latest` updated. fill writes the tensor files. It returns the directory
// and the state as written.
func Write(root string, st State, recipe []byte, fill func(dir string) error) (string, State, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", st, err
	}
	final := filepath.Join(root, StepDir(st.Step))
	tmp, err := os.MkdirTemp(root, tmpPrefix+StepDir(st.Step)+"-")
	if err != nil {
		return "", st, err
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	st.Time = time.Now().UTC().Format(time.RFC3339)
	if err := fill(tmp); err != nil {
		return "", st, err
	}
	if err := fsutil.WriteBytes(filepath.Join(tmp, RecipeFile), recipe); err != nil {
		return "", st, err
	}
	if st.Files, err = FileSums(tmp); err != nil {
		return "", st, err
	}
	if err := WriteState(tmp, st); err != nil {
		return "", st, err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return "", st, err
	}
	if _, err := os.Stat(final); err == nil { // a stale copy of the same step: rename it away first
		if err := os.Rename(final, filepath.Join(root, tmpPrefix+"removed-"+StepDir(st.Step))); err != nil {
			return "", st, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", st, err
	}
	if err := fsutil.SyncDir(root); err != nil {
		return "", st, err
	}
	return final, st, WriteLatest(root, StepDir(st.Step))
}

// WriteBest points `best` (in the checkpoints folder root) at the
// checkpoint name, atomically: the best checkpoint by train.keep_best_by,
// which rotation keeps.
func WriteBest(root, name string) error {
	return fsutil.WriteBytes(filepath.Join(root, BestFile), []byte(name+"\n"))
}

// WriteLatest points `latest` at name, atomically.
func WriteLatest(root, name string) error {
	return fsutil.WriteBytes(filepath.Join(root, LatestFile), []byte(name+"\n"))
}

// List lists the step-NNNNNNN directories under root by step, oldest
// first, complete or not (a damaged one must be seen, not skipped).
// Temporary directories of interrupted writes are not listed.
func List(root string) ([]int, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var steps []int
	for _, e := range entries {
		if n, ok := parseStepDir(e.Name()); ok && e.IsDir() {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// parseStepDir parses a step-NNNNNNN name.
func parseStepDir(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, stepPrefix)
	if !ok || len(s) < 7 {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Rotate deletes all but the keep newest checkpoints, and the best one. It
// never deletes the newest checkpoint that passes validation (if the newer
// ones fail, that one is kept too), nor a checkpoint of another lineage (a
// run history this run does not continue) or one it cannot identify: those
// are kept and reported. A checkpoint is first renamed to a temporary name,
// then removed, so that a crash mid-removal never leaves a partial
// step-NNNNNNN directory. Leftover temporary directories (of interrupted
// writes or removals) go too.
func Rotate(root string, keep, best int, lineage string, log logrus.FieldLogger) error {
	steps, err := List(root)
	if err != nil {
		return err
	}
	protected := map[int]bool{best: true}
	for i := len(steps) - 1; i >= 0; i-- {
		dir := filepath.Join(root, StepDir(steps[i]))
		st, err := Decode(dir)
		if err == nil {
			err = VerifyFiles(dir, st)
		}
		if err == nil {
			protected[steps[i]] = true
			break
		}
		log.WithError(err).Warn("rotation: checkpoint fails validation; keeping it and the newest one that passes")
	}
	var errs []error
	for i, step := range steps {
		if i >= len(steps)-keep || protected[step] {
			continue
		}
		dir := filepath.Join(root, StepDir(step))
		st, err := Decode(dir)
		if err != nil || st.Lineage != lineage {
			why := "it cannot be identified"
			if err == nil {
				why = "it belongs to another run history (lineage " + st.Lineage + ")"
			}
			log.WithFields(logrus.Fields{"checkpoint": dir}).Warn("rotation: not deleting a checkpoint: " + why)
			continue
		}
		doomed := filepath.Join(root, tmpPrefix+"removed-"+StepDir(step))
		if err := os.Rename(dir, doomed); err != nil {
			errs = append(errs, err)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && isOwnTmpDir(e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(root, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// Open reads a checkpoint's recipe (as saved, without MOSE_*
// variables) and state.
func Open(dir string) (*recipes.Config, State, error) {
	for _, f := range []string{AdapterFile, RecipeFile, StateFile} {
		if err := fsutil.CheckRegular(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			return nil, State{}, fmt.Errorf("%w: %s is not a mose checkpoint (no %s)", ErrCheckpoint, dir, f)
		} else if err != nil {
			return nil, State{}, fmt.Errorf("%w: %w", ErrCheckpoint, err)
		}
	}
	path := filepath.Join(dir, RecipeFile)
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		return nil, State{}, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	cfg, err := recipes.Parse(b, path)
	if err != nil {
		return nil, State{}, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	st, err := Read(dir)
	if err != nil {
		return nil, State{}, err
	}
	return cfg, st, nil
}
