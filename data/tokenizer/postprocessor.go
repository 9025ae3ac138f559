package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
)

// postProcessor adds special tokens around a single encoded sequence (what HF does
// with add_special_tokens=True).
type postProcessor interface {
	process(ids []int32) []int32
	// bosEOS returns the special tokens placed before and after the sequence, if any.
	bosEOS() (before, after []int32)
}

// parsePostProcessor builds the "post_processor" component (nil for null).
func parsePostProcessor(raw json.RawMessage) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, "post_processor")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := decodeComponent(raw, "post_processor Sequence", &v); err != nil {
			return nil, err
		}
		seq := make(processorSeq, 0, len(v.Processors))
		for _, r := range v.Processors {
			p, err := parsePostProcessor(r)
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "ByteLevel":
		// Only trims offsets: ids are unchanged.
		return template{}, nil
	case "TemplateProcessing":
		return parseTemplate(raw)
	case "BertProcessing", "RobertaProcessing":
		var v struct {
			Sep []json.RawMessage `json:"sep"`
			Cls []json.RawMessage `json:"cls"`
		}
		if err := decodeComponent(raw, "post_processor "+typ, &v); err != nil {
			return nil, err
		}
		cls, err := tokenIDPair(v.Cls, typ+" cls")
		if err != nil {
			return nil, err
		}
		sep, err := tokenIDPair(v.Sep, typ+" sep")
		if err != nil {
			return nil, err
		}
		return template{before: []int32{cls}, after: []int32{sep}}, nil
	default:
		return nil, unsupported("post_processor %q (supported: Sequence, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing)", typ)
	}
}

// tokenIDPair reads BertProcessing's ["[CLS]", 101] pairs.
func tokenIDPair(v []json.RawMessage, what string) (int32, error) {
	var id int64
	if len(v) != 2 || json.Unmarshal(v[1], &id) != nil || id < 0 || id > math.MaxInt32 {
		return 0, invalid("post_processor %s: want [token, id]", what)
	}
	return int32(id), nil
}

type processorSeq []postProcessor

func (q processorSeq) process(ids []int32) []int32 {
	for _, p := range q {
		ids = p.process(ids)
	}
	return ids
}

func (q processorSeq) bosEOS() (before, after []int32) {
	for _, p := range q {
		b, a := p.bosEOS()
		before = append(append([]int32(nil), b...), before...)
		after = append(after, a...)
	}
	return before, after
}

// template is a single-sequence template: fixed ids before and after the sequence.
type template struct {
	before, after []int32
}

func (t template) process(ids []int32) []int32 {
	out := make([]int32, 0, len(t.before)+len(ids)+len(t.after))
	out = append(out, t.before...)
	out = append(out, ids...)
	return append(out, t.after...)
}

func (t template) bosEOS() (before, after []int32) { return t.before, t.after }

// parseTemplate reads TemplateProcessing's "single" template and special_tokens map.
func parseTemplate(raw json.RawMessage) (postProcessor, error) {
	var v struct {
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			ID  string  `json:"id"`
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := decodeComponent(raw, "post_processor TemplateProcessing", &v); err != nil {
		return nil, err
	}
	var t template
	seen := false
	for i, p := range v.Single {
		switch {
		case p.Sequence != nil && p.SpecialToken == nil:
			if p.Sequence.ID != "A" || seen {
				return nil, invalid("TemplateProcessing single template: piece %d must be the one $A", i)
			}
			seen = true
		case p.SpecialToken != nil && p.Sequence == nil:
			st, ok := v.SpecialTokens[p.SpecialToken.ID]
			if !ok {
				return nil, invalid("TemplateProcessing: special token %q is not in special_tokens", p.SpecialToken.ID)
			}
			ids := make([]int32, 0, len(st.IDs))
			for _, id := range st.IDs {
				if id < 0 || id > math.MaxInt32 {
					return nil, invalid("TemplateProcessing: id %d of %q out of range", id, p.SpecialToken.ID)
				}
				ids = append(ids, int32(id))
			}
			if seen {
				t.after = append(t.after, ids...)
			} else {
				t.before = append(t.before, ids...)
			}
		default:
			return nil, invalid("TemplateProcessing single template: piece %d is neither SpecialToken nor Sequence", i)
		}
	}
	if !seen {
		return nil, invalid("TemplateProcessing single template has no $A: %s", fmt.Sprint(v.Single))
	}
	return t, nil
}
