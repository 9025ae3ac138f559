package trainer

import (
	"context"
	"strings"
	"unicode"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/model"
)

// synonyms map answer words to labels (lower case), on top of each label
// itself and its prefix forms ("worried" for "worry").
var synonyms = map[string]string{
	"anger": "angry", "mad": "angry", "furious": "angry",
	"happiness": "happy", "joy": "happy", "joyful": "happy", "glad": "happy",
	"sadness": "sad", "unhappy": "sad",
	"worried": "worry", "anxious": "worry", "anxiety": "worry",
	"surprised": "surprise", "shocked": "surprise",
	"fearful": "fear", "afraid": "fear", "scared": "fear",
	"contemptuous": "contempt", "disdain": "contempt",
	"doubtful": "doubt", "skeptical": "doubt", "confused": "doubt",
	"calm": "neutral",
}

// mapLabel finds the label an answer names: the first word that is a label,
// a synonym of one, or shares a stem (the first four letters) with one, e.g.
// "worry" for "worried". -1 if none.
func mapLabel(answer string, labels []string) int {
	find := func(w string) int {
		for i, l := range labels {
			if l = strings.ToLower(l); l == w {
				return i
			}
		}
		for i, l := range labels {
			if l = strings.ToLower(l); len(w) >= 4 && len(l) >= 4 && w[:4] == l[:4] {
				return i
			}
		}
		return -1
	}
	for _, w := range strings.FieldsFunc(strings.ToLower(answer), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if i := find(w); i >= 0 {
			return i
		}
		if syn, ok := synonyms[w]; ok {
			if i := find(syn); i >= 0 {
				return i
			}
		}
	}
	return -1
}

// generateEval decodes greedily from every eval prompt (no KV cache: each new
// token reruns the sequence) and maps each answer to a label.
func generateEval(ctx context.Context, c *components) (*metrics.Report, error) {
	eos, _ := c.tok.EOS()
	var preds []metrics.Prediction
	err := forEachBatch(ctx, c, c.eval, data.ModePrompt, func(b *data.Batch) error {
		answers, err := greedy(c, b, c.cfg.Eval.MaxNewTokens, int64(eos))
		if err != nil {
			return err
		}
		for r := range b.B {
			preds = append(preds, metrics.Prediction{ID: b.SampleIDs[r], Subset: b.Subsets[r], Label: b.Labels[r],
				Pred: mapLabel(c.tok.Decode(answers[r]), c.spec.Labels)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := metrics.Compute(preds, c.spec.Labels)
	return &rep, nil
}

// greedy extends every prompt of a prompt-mode batch by up to n tokens.
func greedy(c *components, b *data.Batch, n int, eos int64) ([][]int32, error) {
	B, T := b.B, b.T
	W := T + n // room for the answers, right-padded
	ids := make([]int64, B*W)
	mods := make([]int64, B*W)
	for r := range B {
		for t := range W {
			ids[r*W+t], mods[r*W+t] = b.IDs[0], int64(data.Pad)
			if t < T {
				ids[r*W+t], mods[r*W+t] = b.IDs[r*T+t], int64(b.Modality[r*T+t])
			}
		}
	}
	feats := torch.NewScope() // the features, with positions moved to the (B,W) layout
	defer feats.Close()
	var fs []model.Features
	for _, f := range b.Features {
		pos := make([]int64, len(f.Positions))
		for i, p := range f.Positions {
			pos[i] = p/int64(T)*int64(W) + p%int64(T)
		}
		fs = append(fs, model.Features{
			Data:      feats.ToDevice(feats.FromFloat32(f.Data, int64(B), int64(f.Tokens), int64(f.Dim)), c.dev),
			Positions: feats.ToDevice(feats.FromInt64(pos, int64(len(pos))), c.dev)})
	}
	if err := feats.Err(); err != nil {
		return nil, err
	}
	lengths := append([]int(nil), b.Lengths...)
	done := make([]bool, B)
	answers := make([][]int32, B)
	for range n {
		s := torch.NewScope()
		in := &model.Inputs{IDs: s.ToDevice(s.FromInt64(ids, int64(B), int64(W)), c.dev),
			Modality: s.ToDevice(s.FromInt64(mods, int64(B), int64(W)), c.dev), Features: fs}
		last := make([]int64, B)
		for r := range B {
			last[r] = int64(r*W + lengths[r] - 1)
		}
		pos := s.ToDevice(s.FromInt64(last, int64(B)), c.dev)
		next := s.Argmax(c.model.Logits(s, c.model.Forward(s, in, false), pos), -1, false) // (B)
		if err := s.Err(); err != nil {
			s.Close()
			return nil, err
		}
		tok, err := next.Int64s()
		s.Close()
		if err != nil {
			return nil, err
		}
		all := true
		for r := range B {
			if done[r] {
				continue
			}
			if tok[r] == eos || lengths[r] >= W {
				done[r] = true
				continue
			}
			ids[r*W+lengths[r]], mods[r*W+lengths[r]] = tok[r], int64(data.Text)
			answers[r] = append(answers[r], int32(tok[r]))
			lengths[r]++
			all = false
		}
		if all {
			break
		}
	}
	return answers, nil
}

// promptInputs turns a prompt-mode batch into model inputs on dev, and says
// which positions are real tokens (not padding).
func promptInputs(s *torch.Scope, b *data.Batch, dev torch.Device) (*model.Inputs, []bool) {
	B, T := int64(b.B), int64(b.T)
	mods := make([]int64, len(b.Modality))
	valid := make([]bool, len(b.Modality))
	for i, m := range b.Modality {
		mods[i], valid[i] = int64(m), m != data.Pad
	}
	in := &model.Inputs{IDs: toDev(s, s.FromInt64(b.IDs, B, T), dev), Modality: toDev(s, s.FromInt64(mods, B, T), dev)}
	for _, f := range b.Features {
		in.Features = append(in.Features, model.Features{
			Data:      toDev(s, s.FromFloat32(f.Data, B, int64(f.Tokens), int64(f.Dim)), dev),
			Positions: toDev(s, s.FromInt64(f.Positions, int64(len(f.Positions))), dev),
		})
	}
	return in, valid
}
