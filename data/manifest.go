package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// Subset names. Conflict subsets follow CA-MER; General is for data without
// conflict annotation (such as imported MER2023 clips).
const (
	SubsetVideoAligned = "video-aligned"
	SubsetAudioAligned = "audio-aligned"
	SubsetConsistent   = "consistent"
	SubsetGeneral      = "general"
)

// EmotionLabels are the nine CA-MER / Emotion-LLaMA emotion labels, in the
// order Emotion-LLaMA's prompt lists them.
var EmotionLabels = []string{"angry", "happy", "surprise", "fear", "sad", "worry", "neutral", "doubt", "contempt"}

// DefaultSubsets are the subset names a manifest may use unless the caller
// says otherwise.
var DefaultSubsets = []string{SubsetVideoAligned, SubsetAudioAligned, SubsetConsistent, SubsetGeneral}

// Sample is one manifest line:
//
//	{"id", "subset", "label", "subtitle", "reason"?, "features": {"<input>": "rel/path.npy"}, "meta"?}
//
// Feature paths are relative to the data root, with forward slashes.
type Sample struct {
	ID       string            `json:"id"`
	Subset   string            `json:"subset"`
	Label    string            `json:"label"`
	Subtitle string            `json:"subtitle"`
	Reason   string            `json:"reason,omitempty"`
	Features map[string]string `json:"features"`
	// Inputs is an omni sample's processor-outputs file (ManifestOptions.Omni),
	// relative to the data root like a feature path; "" otherwise.
	Inputs string `json:"inputs,omitempty"`
	// Video, Audio and Image are an omni media sample's files, relative to
	// the data root ("" when absent); its processor outputs are made from
	// them (and its Subtitle) into the data cache.
	Video string `json:"video,omitempty"`
	Audio string `json:"audio,omitempty"`
	Image string `json:"image,omitempty"`
	// Meta holds free-form extras (e.g. valence from an importer); data ignores it.
	Meta map[string]any `json:"meta,omitempty"`

	// Line is the 1-based manifest line the sample came from (0 if built in memory).
	Line int `json:"-"`
}

// ManifestOptions says what a manifest may contain. Nil fields skip the check.
type ManifestOptions struct {
	Labels  []string // allowed labels
	Subsets []string // allowed subsets; nil means DefaultSubsets
	Inputs  []string // input names every sample must have a feature for
	// Omni reads the omni form of a line (a Qwen2.5-Omni thinker's samples):
	//
	//	{"id", "subset", "label", "reason"?, "inputs": "rel/path.safetensors", "meta"?}
	//
	// where inputs is the sample's processor-outputs file (its prompt, subtitle
	// included, and its media); "features" and "subtitle" are refused.
	Omni bool
}

// maxLine bounds a manifest line (a reason text can be long, not this long).
const maxLine = 16 << 20

// ParseManifest reads JSONL samples from r; name is used in error messages.
// It checks every line and returns all problems at once as a *Problems error
// (each a *SampleError naming file, line and id) together with the samples
// that were valid. Blank lines are skipped. An empty manifest is ErrEmpty.
func ParseManifest(r io.Reader, name string, opt ManifestOptions) ([]Sample, error) {
	subsets := opt.Subsets
	if subsets == nil {
		subsets = DefaultSubsets
	}
	var (
		probs   Problems
		samples []Sample
		seen    = map[string]int{} // id -> line
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		parse := parseSample
		if opt.Omni {
			parse = func(line []byte, _ []string) (Sample, error) { return parseOmniSample(line) }
		}
		s, err := parse(text, opt.Inputs)
		s.Line = line
		if err == nil {
			switch {
			case opt.Labels != nil && !slices.Contains(opt.Labels, s.Label):
				err = fmt.Errorf("%w %q (known: %s)", ErrUnknownLabel, s.Label, strings.Join(opt.Labels, ", "))
			case !slices.Contains(subsets, s.Subset):
				err = fmt.Errorf("%w %q (known: %s)", ErrUnknownSubset, s.Subset, strings.Join(subsets, ", "))
			case seen[s.ID] > 0:
				err = fmt.Errorf("%w (first on line %d)", ErrDuplicateID, seen[s.ID])
			}
		}
		if err != nil {
			probs.Add(&SampleError{File: name, Line: line, ID: s.ID, Err: err})
			continue
		}
		seen[s.ID] = line
		samples = append(samples, s)
	}
	if err := sc.Err(); err != nil {
		probs.Add(&SampleError{File: name, Line: line + 1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)})
	}
	if line == 0 || (len(samples) == 0 && probs.Len() == 0) {
		probs.Add(&SampleError{File: name, Err: fmt.Errorf("%w: no samples", ErrEmpty)})
	}
	return samples, probs.Err()
}

// parseSample decodes one line strictly: known keys only, required keys
// present, string values where strings are expected. It returns the id it
// could read even on error, for the message.
func parseSample(line []byte, inputs []string) (Sample, error) {
	raw, s, err := decodeSampleLine(line)
	if err != nil {
		return s, err
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		switch k {
		case "id", "subset", "label", "subtitle", "reason", "features", "meta":
		default:
			return s, fmt.Errorf("%w %q", ErrUnknownField, k)
		}
	}
	for _, f := range []struct {
		key      string
		dst      *string
		required bool
	}{{"subset", &s.Subset, true}, {"label", &s.Label, true}, {"subtitle", &s.Subtitle, true}, {"reason", &s.Reason, false}} {
		if err := raw.str(f.key, f.dst, f.required); err != nil {
			return s, err
		}
	}
	if v, ok := raw["features"]; !ok || string(v) == "null" {
		return s, fmt.Errorf("%w %q", ErrMissingField, "features")
	} else if err := json.Unmarshal(v, &s.Features); err != nil {
		return s, fmt.Errorf("%w: field \"features\" must map input names to path strings", ErrMalformed)
	}
	for _, in := range inputs {
		if s.Features[in] == "" {
			return s, fmt.Errorf("%w \"features.%s\"", ErrMissingField, in)
		}
	}
	if len(s.Features) == 0 {
		return s, fmt.Errorf("%w \"features\" (empty)", ErrMissingField)
	}
	return s, raw.meta(&s)
}

// sampleLine is one manifest line's fields, undecoded (both manifest forms,
// feature files and omni processor outputs, read their lines with it).
type sampleLine map[string]json.RawMessage

// decodeSampleLine decodes line strictly (duplicate keys refused) and reads
// its id, which it returns even with an error about the rest, for the
// message.
func decodeSampleLine(line []byte) (sampleLine, Sample, error) {
	if err := strictjson.CheckKeys(line, "", strictjson.All); err != nil {
		return nil, Sample{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var raw sampleLine
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, Sample{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var s Sample
	if err := raw.str("id", &s.ID, true); err != nil {
		return raw, s, err
	}
	if strings.TrimSpace(s.ID) == "" {
		return raw, s, fmt.Errorf("%w %q (empty)", ErrMissingField, "id")
	}
	return raw, s, nil
}

// str reads the string field key into dst; absent or null is an error when
// required.
func (l sampleLine) str(key string, dst *string, required bool) error {
	v, ok := l[key]
	if !ok || string(v) == "null" {
		if required {
			return fmt.Errorf("%w %q", ErrMissingField, key)
		}
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%w: field %q must be a string", ErrMalformed, key)
	}
	return nil
}

// meta reads the optional "meta" object into s.Meta.
func (l sampleLine) meta(s *Sample) error {
	if v, ok := l["meta"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &s.Meta); err != nil {
			return fmt.Errorf("%w: field \"meta\" must be an object", ErrMalformed)
		}
	}
	return nil
}

// ReadManifest opens and parses a manifest file (see ParseManifest).
func ReadManifest(path string, opt ManifestOptions) ([]Sample, error) {
	f, err := fsutil.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &SampleError{File: path, Err: fmt.Errorf("%w: %v", ErrMissingFile, err)}
	} else if err != nil {
		return nil, &SampleError{File: path, Err: err}
	}
	defer f.Close()
	return ParseManifest(f, path, opt)
}

// WriteManifest writes samples as JSONL to path atomically (temp file and
// rename), one line per sample, features sorted by name.
func WriteManifest(path string, samples []Sample) error {
	return fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		return EncodeManifest(w, samples)
	})
}

// EncodeManifest writes samples as JSONL to w.
func EncodeManifest(w io.Writer, samples []Sample) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range samples {
		if err := enc.Encode(&samples[i]); err != nil {
			return fmt.Errorf("sample %q: %w", samples[i].ID, err)
		}
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MediaFiles are a media sample's files, resolved under the data root (""
// when absent), and its subtitle (the text of the user turn). With
// use_audio_in_video and no Audio, the video's own audio track is used.
type MediaFiles struct {
	Video, Audio, Image string
	Subtitle            string
}

// MediaResult is a media sample's processor-outputs file, made from its
// media (or found in the data cache), and its content key; or why not.
type MediaResult struct {
	Path, Key string
	Err       error
}

// MediaPrep turns media samples into processor-outputs files (package
// omniprep's Cache): an omni dataset with media samples needs one.
type MediaPrep interface {
	// Prepare returns one result per item, in order.
	Prepare(items []MediaFiles) []MediaResult
}
