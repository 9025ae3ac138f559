// Package plots draws the PNG plots of a training or evaluation run with
// gonum.org/v1/plot (pure Go): the loss and learning-rate curves and eval
// accuracies from metrics.jsonl, the expert load per router group, and the
// confusion matrix. Every PNG is written atomically (temporary file, fsync, rename).
package plots

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Record kinds.
const (
	KindTrain = "train" // a training log line (also the meaning of an empty Kind)
	KindEval  = "eval"  // an evaluation-only line: only Step, Epoch and Eval are meaningful
)

// Record is one line of metrics.jsonl, as written by the trainer every log
// interval. All float fields must be finite: encoding/json cannot encode NaN or
// Inf, so a value that is not finite (e.g. the loss of a skipped step) must be left
// out of the averages and counted in Skipped instead.
type Record struct {
	// Kind is KindTrain (or "") for a training line and KindEval for a line that
	// only carries evaluation metrics. Loss curves use training lines only;
	// eval points are taken from every line with a non-empty Eval.
	Kind string `json:"kind,omitempty"`
	// Step is the global optimizer step reached when the line is written
	// (1-based: the number of optimizer updates applied so far).
	Step int `json:"step"`
	// Epoch is the fractional epoch at Step (samples seen / dataset size).
	Epoch float64 `json:"epoch"`
	// EmotionLoss is the answer cross-entropy (mean per answer token), averaged
	// over the optimizer steps of the log interval.
	EmotionLoss float64 `json:"emotion_loss"`
	// LBLoss is the load-balancing loss before its λ_lb factor, averaged like
	// EmotionLoss; 0 when no router runs (LoRA).
	LBLoss float64 `json:"lb_loss"`
	// ZLoss is the router z-loss before its λ_z factor, averaged like
	// EmotionLoss; 0 when no router runs (LoRA).
	ZLoss float64 `json:"z_loss"`
	// TotalLoss is the optimized loss EmotionLoss + λ_lb·LBLoss + λ_z·ZLoss.
	TotalLoss float64 `json:"total_loss"`
	// LR is the learning rate of the last optimizer step of the interval.
	LR float64 `json:"lr"`
	// GradNorm is the global gradient L2 norm before clipping, of the last
	// optimizer step of the interval.
	GradNorm float64 `json:"grad_norm"`
	// TokensPerS is the throughput of the interval: input tokens (prompt and
	// answer, padding excluded) processed per wall-clock second.
	TokensPerS float64 `json:"tokens_per_s"`
	// StepTime is the mean wall-clock seconds per optimizer step of the interval.
	StepTime float64 `json:"step_time_s,omitempty"`
	// CommTime is the mean wall-clock seconds per optimizer step spent in
	// data-parallel collectives (all-reduces), absent in a single process.
	CommTime float64 `json:"comm_time_s,omitempty"`
	// GPUPeakMiB is the peak memory allocated to tensors by libtorch's CUDA
	// caching allocator on run.device since the run started, in MiB (what
	// torch.cuda.max_memory_allocated reports); omitted on the CPU.
	GPUPeakMiB float64 `json:"gpu_peak_mib,omitempty"`
	// Skipped is the number of optimizer steps skipped so far because of a
	// non-finite loss or gradient (cumulative over the run, resumes included).
	Skipped int `json:"skipped"`
	// ModalityWeights are the visual / non-visual adapter scales in use at Step;
	// nil when the adapters have none (LoRA).
	ModalityWeights *ModalityWeights `json:"modality_weights,omitempty"`
	// Router maps a router group name (e.g. "visual", "audio") to its telemetry,
	// averaged over the layers and targets where it routed tokens; empty for LoRA.
	Router map[string]RouterStats `json:"router,omitempty"`
	// Eval holds the evaluation metrics computed at Step, keyed
	// "<subset>.<metric>" as metrics.Report.Lookup accepts them (e.g.
	// "all.accuracy", "video-aligned.uar", "conflict_gap"); nil when no
	// evaluation ran at this step.
	Eval map[string]float64 `json:"eval,omitempty"`
	// Time is the wall-clock time the line was written, RFC 3339 (optional).
	Time string `json:"time,omitempty"`
}

// ModalityWeights are the scales applied to the visual and non-visual adapter
// outputs (gating.ModalityWeights).
type ModalityWeights struct {
	Visual    float64 `json:"visual"`
	NonVisual float64 `json:"nonvisual"`
}

// RouterStats is the telemetry of one router group (gating.GroupStats).
type RouterStats struct {
	// Load is f_k, the fraction of routing slots sent to expert k.
	Load []float64 `json:"load"`
	// Prob is P_k, the mean gate probability of expert k.
	Prob []float64 `json:"prob"`
	// Entropy is the mean gate entropy in nats.
	Entropy float64 `json:"entropy"`
	// Z is the mean squared logsumexp of the gate logits.
	Z float64 `json:"z"`
	// Balance is K·Σ_k f_k·P_k (1 when uniform).
	Balance float64 `json:"balance"`
	// Tokens is the mean number of member tokens per routed instance (optional).
	Tokens float64 `json:"tokens,omitempty"`
}

// MarshalJSON writes a training line with every field, and an evaluation
// line (IsEval) with its own fields only: kind, step, epoch, modality
// weights, eval and time, so that no zero loss, learning rate or gradient
// norm appears at an evaluation's step for a plot to draw.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	if !r.IsEval() {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		Kind            string             `json:"kind,omitempty"`
		Step            int                `json:"step"`
		Epoch           float64            `json:"epoch"`
		ModalityWeights *ModalityWeights   `json:"modality_weights,omitempty"`
		Eval            map[string]float64 `json:"eval,omitempty"`
		Time            string             `json:"time,omitempty"`
	}{r.Kind, r.Step, r.Epoch, r.ModalityWeights, r.Eval, r.Time})
}

// IsEval reports whether r is an evaluation-only record: Kind is KindEval, or
// Kind is empty and r carries eval metrics but no training values (EmotionLoss,
// TotalLoss and LR all 0), as written by a trainer that does not set Kind.
func (r Record) IsEval() bool {
	switch r.Kind {
	case KindEval:
		return true
	case "":
		return len(r.Eval) > 0 && r.EmotionLoss == 0 && r.TotalLoss == 0 && r.LR == 0
	}
	return false
}

// ReadRecords reads a metrics.jsonl file: one JSON Record per line, blank lines
// ignored. A last line that does not end in a newline and does not parse is
// treated as cut short by a killed run and dropped; any other malformed line is an
// error naming its line number. An empty file gives no records and no error.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plots: read records: %w", err)
	}
	defer f.Close()
	recs, err := DecodeRecords(f)
	if err != nil {
		return nil, fmt.Errorf("plots: read records %s: %w", path, err)
	}
	return recs, nil
}

// DecodeRecords reads metrics.jsonl content from r, with the rules of ReadRecords.
func DecodeRecords(r io.Reader) ([]Record, error) {
	br := bufio.NewReader(r)
	var recs []Record
	for lineNo := 1; ; lineNo++ {
		line, readErr := br.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return recs, fmt.Errorf("line %d: %w", lineNo, readErr)
		}
		complete := readErr == nil // ended with '\n'
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			var rec Record
			if err := json.Unmarshal(trimmed, &rec); err != nil {
				if !complete {
					return recs, nil // truncated last line
				}
				return recs, fmt.Errorf("line %d: %w", lineNo, err)
			}
			recs = append(recs, rec)
		}
		if !complete {
			return recs, nil
		}
	}
}
