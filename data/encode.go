package data

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Example is an encoded sample: the token ids of prompt and answer, where the
// feature slots are, and where the answer starts.
type Example struct {
	Index  int // position of the sample in its dataset
	ID     string
	Subset string
	Label  int // index into Spec.Labels

	// IDs holds prompt then answer. Feature slots hold the pad id.
	IDs []int32
	// Offsets[i] is the first slot of Spec.Inputs[i]; its Tokens slots are
	// contiguous. Inputs sharing a placeholder follow each other in spec order.
	Offsets []int
	// AnswerStart is the index of the first answer token: IDs[AnswerStart:]
	// is the answer, the only part that carries loss.
	AnswerStart int
	// Truncated reports that the subtitle was shortened to fit MaxLen.
	Truncated bool
}

// Len is the sequence length.
func (e *Example) Len() int { return len(e.IDs) }

// Encoder turns samples into Examples with a model's prompt and a tokenizer.
// Encode is not safe for concurrent use (tokenizers need not be); Collate is.
type Encoder struct {
	spec   Spec
	tok    Tokenizer
	maxLen int
	padID  int32

	parts         []part    // template split at placeholders, in order
	labelAnswers  [][]int32 // answer ids for each label, for scoring
	maxLabelAns   int
	reasonPrefix  string
	reasonSuffix  string
	constEncoding [][]int32 // ids of text parts without {subtitle}
}

// part is a piece of the template: text, or a placeholder with the inputs
// (indices into spec.Inputs) spliced there.
type part struct {
	text   string
	inputs []int
}

// EncoderOptions tunes an Encoder.
type EncoderOptions struct {
	// MaxLen bounds the sequence length (feature slots included); 0 means no
	// bound. Longer samples lose subtitle text, never features or answer.
	MaxLen int
	// PadID fills feature slots and padding.
	PadID int32
}

// NewEncoder prepares the template of spec for tok.
func NewEncoder(spec Spec, tok Tokenizer, opt EncoderOptions) (*Encoder, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, fmt.Errorf("data: NewEncoder: nil tokenizer")
	}
	e := &Encoder{spec: spec, tok: tok, maxLen: opt.MaxLen, padID: opt.PadID}
	text := strings.ReplaceAll(spec.Prompt.Template, "{labels}", strings.Join(spec.Labels, ", "))

	// Split the template at the placeholders, in order of appearance.
	type hit struct {
		pos int
		ph  string
	}
	var hits []hit
	for _, in := range spec.Inputs {
		if !slices.ContainsFunc(hits, func(h hit) bool { return h.ph == in.Placeholder }) {
			hits = append(hits, hit{strings.Index(text, in.Placeholder), in.Placeholder})
		}
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].pos < hits[j].pos })
	at := 0
	for _, h := range hits {
		if h.pos < at {
			return nil, fmt.Errorf("%w: placeholders %q overlap", ErrSpec, h.ph)
		}
		e.parts = append(e.parts, part{text: text[at:h.pos]})
		var ins []int
		for i, in := range spec.Inputs {
			if in.Placeholder == h.ph {
				ins = append(ins, i)
			}
		}
		e.parts = append(e.parts, part{inputs: ins})
		at = h.pos + len(h.ph)
	}
	e.parts = append(e.parts, part{text: text[at:]})

	e.constEncoding = make([][]int32, len(e.parts))
	for i, p := range e.parts {
		if p.inputs != nil || strings.Contains(p.text, "{subtitle}") || p.text == "" {
			continue
		}
		ids, err := tok.Encode(p.text)
		if err != nil {
			return nil, fmt.Errorf("encoding prompt template: %w", err)
		}
		e.constEncoding[i] = ids
	}
	for _, l := range spec.Labels {
		ids, err := tok.Encode(strings.ReplaceAll(spec.Prompt.Answer, "{label}", l))
		if err != nil {
			return nil, fmt.Errorf("encoding answer for label %q: %w", l, err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: answer for label %q encodes to no tokens", ErrSpec, l)
		}
		e.labelAnswers = append(e.labelAnswers, ids)
		e.maxLabelAns = max(e.maxLabelAns, len(ids))
	}
	ra := spec.Prompt.ReasonAnswer
	if ra == "" {
		ra = DefaultReasonAnswer
	}
	e.reasonPrefix, e.reasonSuffix, _ = strings.Cut(ra, "{reason}")
	return e, nil
}

// Spec is the spec the encoder was built with.
func (e *Encoder) Spec() Spec { return e.spec }

// LabelAnswer returns the answer ids for label index k (shared; do not modify).
func (e *Encoder) LabelAnswer(k int) []int32 { return e.labelAnswers[k] }

// Encode turns s into an Example. The label must be one of the spec's labels.
// Samples with a reason are trained on the reason answer, others on the
// label answer. If the sequence exceeds MaxLen, the subtitle is shortened
// (at a word boundary where possible) until prompt plus the longest possible
// answer fits; if even an empty subtitle does not fit, it fails with ErrTooLong.
func (e *Encoder) Encode(s Sample, index int) (Example, error) {
	ex := Example{Index: index, ID: s.ID, Subset: s.Subset, Label: e.spec.LabelIndex(s.Label)}
	if ex.Label < 0 {
		return ex, fmt.Errorf("%w %q", ErrUnknownLabel, s.Label)
	}
	answer := e.labelAnswers[ex.Label]
	if s.Reason != "" {
		ids, err := e.encodeReason(s)
		if err != nil {
			return ex, err
		}
		answer = ids
	}
	reserve := max(len(answer), e.maxLabelAns)

	ids, off, err := e.prompt(s.Subtitle)
	if err != nil {
		return ex, err
	}
	if e.maxLen > 0 && len(ids)+reserve > e.maxLen {
		ids, off, err = e.truncate(s.Subtitle, e.maxLen-reserve)
		if err != nil {
			return ex, err
		}
		ex.Truncated = true
	}
	ex.AnswerStart = len(ids)
	ex.IDs = append(ids, answer...)
	ex.Offsets = off
	return ex, nil
}

func (e *Encoder) encodeReason(s Sample) ([]int32, error) {
	text := e.reasonPrefix + s.Reason + e.reasonSuffix
	text = strings.ReplaceAll(text, "{label}", s.Label)
	ids, err := e.tok.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("encoding reason: %w", err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w %q (reason encodes to no tokens)", ErrMissingField, "reason")
	}
	return ids, nil
}

// prompt encodes the prompt with subtitle filled in and feature slots as pad
// ids; it returns the ids and the first slot of each input.
func (e *Encoder) prompt(subtitle string) ([]int32, []int, error) {
	ids := make([]int32, 0, 64+e.spec.FeatureTokens())
	off := make([]int, len(e.spec.Inputs))
	for i, p := range e.parts {
		switch {
		case p.inputs != nil:
			for _, in := range p.inputs {
				off[in] = len(ids)
				for range e.spec.Inputs[in].Tokens {
					ids = append(ids, e.padID)
				}
			}
		case e.constEncoding[i] != nil:
			ids = append(ids, e.constEncoding[i]...)
		case p.text != "":
			t, err := e.tok.Encode(strings.Replace(p.text, "{subtitle}", subtitle, 1))
			if err != nil {
				return nil, nil, fmt.Errorf("encoding prompt: %w", err)
			}
			ids = append(ids, t...)
		}
	}
	return ids, off, nil
}

// truncate finds the longest subtitle prefix whose prompt fits in budget.
func (e *Encoder) truncate(subtitle string, budget int) ([]int32, []int, error) {
	runes := []rune(subtitle)
	best, bestOff, err := e.prompt("")
	if err != nil {
		return nil, nil, err
	}
	if len(best) > budget {
		return nil, nil, fmt.Errorf("%w: %d tokens with an empty subtitle and the longest answer, maximum %d",
			ErrTooLong, len(best)+e.maxLen-budget, e.maxLen)
	}
	lo, hi := 0, len(runes) // invariant: lo fits, hi does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		ids, off, err := e.prompt(cut(runes, mid))
		if err != nil {
			return nil, nil, err
		}
		if len(ids) <= budget {
			lo, best, bestOff = mid, ids, off
		} else {
			hi = mid
		}
	}
	return best, bestOff, nil
}

// cut returns the first n runes, backed off to the last word boundary if the
// cut falls inside a word and an earlier boundary exists.
func cut(runes []rune, n int) string {
	if n >= len(runes) {
		return string(runes)
	}
	if n > 0 && !unicode.IsSpace(runes[n]) && !unicode.IsSpace(runes[n-1]) {
		for i := n - 1; i > 0; i-- {
			if unicode.IsSpace(runes[i]) {
				n = i
				break
			}
		}
	}
	return strings.TrimRightFunc(string(runes[:n]), unicode.IsSpace)
}
