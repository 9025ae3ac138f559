package data

import (
	"fmt"
	"slices"

	"github.com/mose-llm/mose/modality"
)

// Mode says what the rows of a batch hold.
type Mode int

const (
	// ModeTrain: one row per example, prompt and gold answer, loss on the answer.
	ModeTrain Mode = iota
	// ModeScore: one row per (example, label), prompt and that label's answer,
	// so that labels can be ranked by answer log-likelihood.
	ModeScore
	// ModePrompt: one row per example, prompt only (for greedy generation).
	ModePrompt
)

func (m Mode) String() string {
	switch m {
	case ModeTrain:
		return "train"
	case ModeScore:
		return "score"
	case ModePrompt:
		return "prompt"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Features is one modality input of a batch.
type Features struct {
	Name     string
	Modality int8 // Visual or Audio
	Tokens   int
	Dim      int
	// Data is [B, Tokens, Dim] row-major.
	Data []float32
	// Positions[b*Tokens+k] is the flattened index (into B*T) of the
	// sequence position that feature token k of row b replaces.
	Positions []int64
}

// Batch is a right-padded batch of rows as plain slices; the trainer turns it
// into tensors. All [B*T] slices are row-major.
type Batch struct {
	Mode Mode
	B, T int

	// IDs are the token ids; feature slots and padding hold the pad id.
	IDs []int64
	// Targets[t] is the token the logits at position t must predict, or
	// IgnoreIndex. Only answer tokens are targets: for an answer starting at
	// a, positions a-1 .. len-2 of the row carry targets.
	Targets []int64
	// Modality is Text, Visual, Audio or Pad per position.
	Modality []int8
	// Features holds one entry per spec input, in spec order.
	Features []Features
	// Media are the processor outputs of an omni dataset's batch (its
	// backbone encodes them itself); nil otherwise.
	Media *Media
	// TargetPos lists the flattened positions whose Targets are not
	// IgnoreIndex, in order (logits are needed only there).
	TargetPos []int64

	Lengths   []int    // real length per row
	Labels    []int    // gold label per row
	Subsets   []string // per row
	SampleIDs []string // per row
	Index     []int    // dataset index of each row's sample

	// Score batches: Candidates[r] is the label row r scores and Group[r] the
	// example (0..Examples-1) it belongs to. Nil in other modes.
	Candidates []int
	Group      []int
	Examples   int // number of distinct examples (== B except in score mode)

	AnswerTokens int // number of target positions (normalises grad accumulation)
	PadTokens    int // B*T minus the sum of Lengths
	Truncated    int // rows whose subtitle was shortened

	// State is the sampler state after this batch: saving it with a
	// checkpoint resumes with the next batch. Set by Loader.
	State SamplerState
}

// Waste is the fraction of positions that are padding.
func (b *Batch) Waste() float64 {
	if b.B*b.T == 0 {
		return 0
	}
	return float64(b.PadTokens) / float64(b.B*b.T)
}

// Feature returns the features of the input called name, or nil.
func (b *Batch) Feature(name string) *Features {
	for i := range b.Features {
		if b.Features[i].Name == name {
			return &b.Features[i]
		}
	}
	return nil
}

// FeatureFunc fills dst (Tokens*Dim values, [Tokens, Dim] row-major) with
// the features of input j (spec order) of examples[i].
type FeatureFunc func(i, j int, dst []float32) error

// row is one sequence of a batch before padding.
type row struct {
	ex        *Example
	group     int
	candidate int // -1 unless scoring
	ids       []int32
	ansStart  int
}

// rows expands examples into batch rows for mode.
func (e *Encoder) rows(examples []*Example, mode Mode) []row {
	var rs []row
	for g, ex := range examples {
		switch mode {
		case ModeScore:
			prompt := ex.IDs[:ex.AnswerStart]
			for k := range e.labelAnswers {
				ids := slices.Concat(prompt, e.labelAnswers[k])
				rs = append(rs, row{ex: ex, group: g, candidate: k, ids: ids, ansStart: ex.AnswerStart})
			}
		case ModePrompt:
			rs = append(rs, row{ex: ex, group: g, candidate: -1, ids: ex.IDs[:ex.AnswerStart], ansStart: ex.AnswerStart})
		default:
			rs = append(rs, row{ex: ex, group: g, candidate: -1, ids: ex.IDs, ansStart: ex.AnswerStart})
		}
	}
	return rs
}

// Collate pads examples into a Batch for mode, filling features with feats.
// In score mode each example yields one row per label; its features are
// read once and copied.
func (e *Encoder) Collate(examples []*Example, mode Mode, feats FeatureFunc) (*Batch, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("data: Collate: %w: no examples", ErrEmpty)
	}
	rs := e.rows(examples, mode)
	B := len(rs)
	T := 0
	for _, r := range rs {
		T = max(T, len(r.ids))
	}
	pad := int64(e.padID)
	b := &Batch{
		Mode: mode, B: B, T: T,
		IDs:       make([]int64, B*T),
		Targets:   make([]int64, B*T),
		Modality:  make([]int8, B*T),
		Lengths:   make([]int, B),
		Labels:    make([]int, B),
		Subsets:   make([]string, B),
		SampleIDs: make([]string, B),
		Index:     make([]int, B),
		Examples:  len(examples),
	}
	if mode == ModeScore {
		b.Candidates = make([]int, B)
		b.Group = make([]int, B)
	}
	for r, rw := range rs {
		base := r * T
		n := len(rw.ids)
		for t := range T {
			b.Targets[base+t] = IgnoreIndex
			if t < n {
				b.IDs[base+t] = int64(rw.ids[t])
				b.Modality[base+t] = modality.Text
			} else {
				b.IDs[base+t] = pad
				b.Modality[base+t] = modality.Pad
			}
		}
		if mode != ModePrompt {
			for t := max(rw.ansStart-1, 0); t < n-1; t++ {
				b.Targets[base+t] = int64(rw.ids[t+1])
				b.TargetPos = append(b.TargetPos, int64(base+t))
				b.AnswerTokens++
			}
		}
		b.Lengths[r] = n
		b.PadTokens += T - n
		b.Labels[r] = rw.ex.Label
		b.Subsets[r] = rw.ex.Subset
		b.SampleIDs[r] = rw.ex.ID
		b.Index[r] = rw.ex.Index
		if rw.ex.Truncated {
			b.Truncated++
		}
		if b.Candidates != nil {
			b.Candidates[r] = rw.candidate
			b.Group[r] = rw.group
		}
	}

	b.Features = make([]Features, len(e.spec.Inputs))
	for j, in := range e.spec.Inputs {
		per := in.Tokens * in.Dim
		f := Features{
			Name: in.Name, Modality: in.ModalityID(), Tokens: in.Tokens, Dim: in.Dim,
			Data:      make([]float32, B*per),
			Positions: make([]int64, B*in.Tokens),
		}
		for r, rw := range rs {
			dst := f.Data[r*per : (r+1)*per]
			if r > 0 && rs[r-1].group == rw.group {
				copy(dst, f.Data[(r-1)*per:r*per])
			} else if err := feats(rw.group, j, dst); err != nil {
				return nil, err
			}
			off := rw.ex.Offsets[j]
			for k := range in.Tokens {
				pos := r*T + off + k
				f.Positions[r*in.Tokens+k] = int64(pos)
				b.Modality[pos] = f.Modality
			}
		}
		b.Features[j] = f
	}
	return b, nil
}
