package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/modality"
)

// Modality names used in Input.Modality (package modality's).
const (
	ModalityVisual = modality.VisualName
	ModalityAudio  = modality.AudioName
)

// Bounds on a modality input's sizes (config.json's "mose" section), checked
// before any feature buffer is sized from them.
const (
	MaxFeatureDim    = 1 << 16 // feature_dim
	MaxFeatureTokens = 1 << 16 // tokens per sample
)

// IgnoreIndex marks target positions that carry no loss.
const IgnoreIndex = -100

// Input describes one modality input of the model: a feature file per sample
// of shape [Tokens, Dim] (or [Dim] when Tokens is 1) whose projected tokens
// are spliced into the prompt at Placeholder.
type Input struct {
	Name        string `json:"name"`
	Modality    string `json:"modality"` // "visual" or "audio"
	Dim         int    `json:"feature_dim"`
	Tokens      int    `json:"tokens"`
	Projector   string `json:"projector,omitempty"` // the model's business; kept for completeness
	Placeholder string `json:"placeholder"`
}

// ModalityID is the per-token modality id of the input's tokens.
func (in Input) ModalityID() int8 {
	if in.Modality == ModalityAudio {
		return modality.Audio
	}
	return modality.Visual
}

// Prompt is the instruction template and the answer templates.
//
// Template may contain each input placeholder once, {subtitle} at most once
// and {labels} (the comma-joined label list). Answer is the target for label
// data and must contain {label}; ReasonAnswer is the target for samples with a
// reason and must contain {reason} (default "{reason}</s>").
type Prompt struct {
	Template     string `json:"template"`
	Answer       string `json:"answer"`
	ReasonAnswer string `json:"reason_answer,omitempty"`
}

// DefaultReasonAnswer is the reason target used when the spec names none.
const DefaultReasonAnswer = "{reason}</s>"

// Spec is what data needs to know about the model: its modality inputs, its
// prompt and its labels. It is the "mose" section of the model's config.json.
type Spec struct {
	Inputs []Input  `json:"inputs"`
	Prompt Prompt   `json:"prompt"`
	Labels []string `json:"labels"`
}

// LabelIndex returns the index of label, or -1.
func (s Spec) LabelIndex(label string) int { return slices.Index(s.Labels, label) }

// InputIndex returns the index of the input called name, or -1.
func (s Spec) InputIndex(name string) int {
	return slices.IndexFunc(s.Inputs, func(in Input) bool { return in.Name == name })
}

// FeatureTokens is the number of feature slots per sample (all inputs).
func (s Spec) FeatureTokens() int {
	n := 0
	for _, in := range s.Inputs {
		n += in.Tokens
	}
	return n
}

// Validate checks the spec; errors name the offending field as
// "mose.inputs[1].feature_dim" and wrap ErrSpec.
func (s Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: mose.%s: %s", ErrSpec, field, fmt.Sprintf(format, args...))
	}
	if len(s.Inputs) == 0 {
		return bad("inputs", "no modality inputs")
	}
	if s.Prompt.Template == "" {
		return bad("prompt.template", "missing")
	}
	seen := map[string]bool{}
	for i, in := range s.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Name == "":
			return bad(f+".name", "missing")
		case seen[in.Name]:
			return bad(f+".name", "duplicate input %q", in.Name)
		case in.Modality != ModalityVisual && in.Modality != ModalityAudio:
			return bad(f+".modality", "%q, want %q or %q", in.Modality, ModalityVisual, ModalityAudio)
		case in.Dim <= 0 || in.Dim > MaxFeatureDim:
			return bad(f+".feature_dim", "%d, must be in [1, %d]", in.Dim, MaxFeatureDim)
		case in.Tokens <= 0 || in.Tokens > MaxFeatureTokens:
			return bad(f+".tokens", "%d, must be in [1, %d]", in.Tokens, MaxFeatureTokens)
		case in.Placeholder == "":
			return bad(f+".placeholder", "missing")
		}
		seen[in.Name] = true
		if n := strings.Count(s.Prompt.Template, in.Placeholder); n != 1 {
			return bad(f+".placeholder", "%q occurs %d times in prompt.template, want once", in.Placeholder, n)
		}
	}
	if n := strings.Count(s.Prompt.Template, "{subtitle}"); n > 1 {
		return bad("prompt.template", "{subtitle} occurs %d times, want at most once", n)
	}
	return checkAnswers(s.Prompt.Answer, s.Prompt.ReasonAnswer, s.Labels, bad)
}

// checkAnswers checks what a feature spec and an omni spec share: the
// answer templates hold their placeholders, and the labels are there, none
// empty or repeated. bad builds the error of a field.
func checkAnswers(answer, reasonAnswer string, labels []string, bad func(field, format string, args ...any) error) error {
	if !strings.Contains(answer, "{label}") {
		return bad("prompt.answer", "%q lacks {label}", answer)
	}
	if reasonAnswer != "" && !strings.Contains(reasonAnswer, "{reason}") {
		return bad("prompt.reason_answer", "%q lacks {reason}", reasonAnswer)
	}
	if len(labels) == 0 {
		return bad("labels", "no labels")
	}
	seen := map[string]bool{}
	for i, l := range labels {
		if strings.TrimSpace(l) == "" || seen[l] {
			return bad(fmt.Sprintf("labels[%d]", i), "empty or duplicate label %q", l)
		}
		seen[l] = true
	}
	return nil
}

// ReadModelSpec reads the "mose" section of <modelDir>/config.json (and
// nothing else of it) and validates it. It lets data tools work without the
// model package.
func ReadModelSpec(modelDir string) (Spec, error) {
	path := filepath.Join(modelDir, "config.json")
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Spec{}, fmt.Errorf("%w: %s", ErrMissingFile, path)
		}
		return Spec{}, err
	}
	if err := strictjson.CheckKeys(b, path, strictjson.All); err != nil {
		return Spec{}, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	var cfg struct {
		Mose *Spec `json:"mose"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Spec{}, fmt.Errorf("%s: %w: %v", path, ErrSpec, err)
	}
	if cfg.Mose == nil {
		return Spec{}, fmt.Errorf("%s: %w: no \"mose\" section: a plain HF model needs its modality inputs and projectors first: "+
			"mose attach --model %s --input name=...,modality=visual|audio,dim=... --out NEW_DIR (README: Bring your own base LLM)", path, ErrSpec, modelDir)
	}
	if err := cfg.Mose.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return *cfg.Mose, nil
}
