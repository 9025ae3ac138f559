// Package synth generates a synthetic CA-MER-like emotion-conflict dataset:
// nine labels, video-aligned / audio-aligned / consistent subsets, many
// visual tokens and one audio token, and a learnable cue that tells which
// modality carries the true emotion. It is the demo's default data; README.md
// in the data directory documents the construction.
package synth

import (
	"fmt"
	"sort"

	"github.com/mose-llm/mose/data"
)

// Labels are the nine CA-MER / Emotion-LLaMA emotion labels (data.EmotionLabels),
// in the order the prompt lists them.
var Labels = data.EmotionLabels

// Subsets are the three CA-MER subsets, generated in equal parts.
var Subsets = []string{data.SubsetVideoAligned, data.SubsetAudioAligned, data.SubsetConsistent}

// Template is the prompt of the synthetic models: Emotion-LLaMA's, with the
// visual input at <VideoHere> and the audio input at <FeatureHere>.
const Template = "<s>[INST] <video><VideoHere></video> <feature><FeatureHere></feature> The person in video says: {subtitle}. [emotion] Please determine which emotion label in the video represents: {labels}. [/INST]"

// Answer is the target template.
const Answer = "{label}</s>"

// Preset names the model a dataset is generated for: its visual and audio
// inputs (the visual input may have many tokens, the audio input has one).
type Preset struct {
	Name   string
	Visual data.Input
	Audio  data.Input
}

var presets = map[string]Preset{
	"tiny": {
		Name:   "tiny",
		Visual: data.Input{Name: "frames", Modality: data.ModalityVisual, Dim: 64, Tokens: 32, Projector: "linear", Placeholder: "<VideoHere>"},
		Audio:  data.Input{Name: "audio", Modality: data.ModalityAudio, Dim: 64, Tokens: 1, Projector: "linear", Placeholder: "<FeatureHere>"},
	},
	"small": {
		Name:   "small",
		Visual: data.Input{Name: "frames", Modality: data.ModalityVisual, Dim: 256, Tokens: 64, Projector: "linear", Placeholder: "<VideoHere>"},
		Audio:  data.Input{Name: "audio", Modality: data.ModalityAudio, Dim: 256, Tokens: 1, Projector: "linear", Placeholder: "<FeatureHere>"},
	},
}

// PresetNames lists the known presets.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupPreset returns the preset called name.
func LookupPreset(name string) (Preset, error) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, fmt.Errorf("synth: unknown preset %q (known: %v)", name, PresetNames())
	}
	return p, nil
}

// MaxVisualTokens bounds WithVisualTokens.
const MaxVisualTokens = 1024

// WithVisualTokens is p with n visual tokens per sample instead of the
// preset's (Emotion-LLaMA has 259 visual tokens to one audio token): the
// knob of the token imbalance. A model and its data must agree on it.
func (p Preset) WithVisualTokens(n int) (Preset, error) {
	if n < 1 || n > MaxVisualTokens {
		return p, fmt.Errorf("%w: visual tokens %d not in [1, %d]", ErrConfig, n, MaxVisualTokens)
	}
	p.Visual.Tokens = n
	return p, nil
}

// Spec is the "mose" section of a model made for preset p: its two inputs,
// Template, Answer and Labels.
func (p Preset) Spec() data.Spec {
	return data.Spec{
		Inputs: []data.Input{p.Visual, p.Audio},
		Prompt: data.Prompt{Template: Template, Answer: Answer},
		Labels: append([]string(nil), Labels...),
	}
}
